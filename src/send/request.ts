import type { ExtractedCaption } from "../answer/extract.js";
import type { ImageTask, PreparedImage } from "../types.js";

export interface CaptionRequestOptions {
  model: string;
  prompt: string;
  maxTokens: number;
  temperature?: number | undefined;
  frequencyPenalty?: number | undefined;
  /** Sent as is: the structured-output request (prompts/structured.ts). */
  responseFormat?: object | undefined;
}

/** The chat-completions body for one image: one user message holding the prompt and the image. */
export function buildCaptionRequest(dataUrl: string, options: CaptionRequestOptions): object {
  return {
    model: options.model,
    messages: [
      {
        role: "user",
        content: [
          { type: "text", text: options.prompt },
          { type: "image_url", image_url: { url: dataUrl } },
        ],
      },
    ],
    max_tokens: options.maxTokens,
    ...(options.temperature === undefined ? {} : { temperature: options.temperature }),
    ...(options.frequencyPenalty === undefined
      ? {}
      : { frequency_penalty: options.frequencyPenalty }),
    ...(options.responseFormat === undefined ? {} : { response_format: options.responseFormat }),
  };
}

const DATA_URL_SLOT = "\u0000image\u0000";
/**
 * Bytes of the image turned into base64 at a time: a multiple of 3, so no padding falls between
 * two slices, and small enough that each slice's string dies young, where one string for the whole
 * image would be a large object that only a full collection frees.
 */
const BASE64_SLICE = 3 * 16_384;

/**
 * The same body as buildCaptionRequest with the image's data URL, serialised to bytes without
 * running the image through JSON.stringify: base64 needs no escaping, so it is written into place
 * once instead of being built as a string, scanned, escaped and re-encoded.
 */
export function encodeCaptionRequest(image: ImageToSend, options: CaptionRequestOptions): Buffer {
  const json = JSON.stringify(buildCaptionRequest(DATA_URL_SLOT, options));
  const slot = json.indexOf(JSON.stringify(DATA_URL_SLOT));
  const head = Buffer.from(`${json.slice(0, slot + 1)}data:${image.mime};base64,`, "utf8");
  const tail = Buffer.from(json.slice(slot + JSON.stringify(DATA_URL_SLOT).length - 1), "utf8");
  const data = bytesOf(image);
  const body = Buffer.allocUnsafe(head.length + 4 * Math.ceil(data.length / 3) + tail.length);
  let at = head.copy(body, 0);
  for (let start = 0; start < data.length; start += BASE64_SLICE) {
    const slice = data.toString("base64", start, Math.min(data.length, start + BASE64_SLICE));
    // Base64 is ASCII, so latin1 writes it byte for byte.
    at += body.write(slice, at, "latin1");
  }
  tail.copy(body, at);
  return body;
}

/** An image as a request needs it: its type, and its bytes or a data URL holding them. */
export interface ImageToSend {
  mime: PreparedImage["mime"];
  data?: Uint8Array | undefined;
  dataUrl?: string;
}

/** The image's bytes: prepareImage's own, or those of a data URL a program built. */
function bytesOf(image: ImageToSend): Buffer {
  const { data } = image;
  if (data) return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  const url = image.dataUrl ?? "";
  return Buffer.from(url.slice(url.indexOf(",") + 1), "base64");
}

/** How one request for an image differs from the first one sent for it. */
export interface RequestVariant {
  /** A retry of a degenerate caption: penalise repetition, a little more randomness. */
  penalize: boolean;
  /** Without response_format: a probe after a 400 that may be the server refusing it. */
  plain: boolean;
}

/**
 * The one seam between a prepared image and the endpoint's protocol: how the request for an image
 * is built, and how a reply becomes a caption or an error (an ApiError subclass, retried when it
 * may be transient). Prompts and structured output plug in here, not in the retry loop.
 */
export interface CaptionProtocol {
  /** `answers`: the answers of the other prompts this one uses (`{answer.NAME}`), by key. */
  request(
    image: PreparedImage,
    task: ImageTask,
    variant: RequestVariant,
    answers?: Readonly<Record<string, string>>,
  ): Promise<Uint8Array>;
  read(body: unknown, variant: RequestVariant): ExtractedCaption;
  /**
   * Whether `request` (the bytes `request()` built) carried response_format, so that its 400 may
   * be the server refusing it. Asked of the request itself: one built before the run stopped
   * sending the format still carries it when its refusal comes back.
   */
  mayRefuseFormat(error: unknown, request: Uint8Array | null): boolean;
  /** The same request without response_format was answered: the run stops sending it. */
  formatRefused(error: unknown): void;
}

/** A text-only request, used by `caption check`. */
export function buildTextRequest(
  text: string,
  options: Omit<CaptionRequestOptions, "prompt">,
): object {
  return {
    model: options.model,
    messages: [{ role: "user", content: text }],
    max_tokens: options.maxTokens,
    ...(options.temperature === undefined ? {} : { temperature: options.temperature }),
  };
}
