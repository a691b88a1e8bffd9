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

/** A part of the message that carries media: an image, or a clip (`video_url`). */
export type MediaKind = "image_url" | "video_url";

/**
 * The chat-completions body for one image: one user message holding the prompt and the image
 * (or a clip's frames, in order, or the clip itself, each a data URL of `dataUrls`).
 */
export function buildCaptionRequest(
  dataUrls: string | readonly string[],
  options: CaptionRequestOptions,
  kind: MediaKind = "image_url",
): object {
  const urls = typeof dataUrls === "string" ? [dataUrls] : dataUrls;
  return {
    model: options.model,
    messages: [
      {
        role: "user",
        content: [
          { type: "text", text: options.prompt },
          ...urls.map((url) =>
            kind === "video_url"
              ? { type: kind, video_url: { url } }
              : { type: kind, image_url: { url } },
          ),
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

const slotOf = (index: number) => `\u0000media${index}\u0000`;
/**
 * Bytes of the image turned into base64 at a time: a multiple of 3, so no padding falls between
 * two slices, and small enough that each slice's string dies young, where one string for the whole
 * image would be a large object that only a full collection frees.
 */
const BASE64_SLICE = 3 * 16_384;

/**
 * The same body as buildCaptionRequest with the image's data URL (or its clip's, or each of its
 * frames'), serialised to bytes without running the media through JSON.stringify: base64 needs
 * no escaping, so it is written into place once instead of being built as a string, scanned,
 * escaped and re-encoded.
 */
export function encodeCaptionRequest(image: ImageToSend, options: CaptionRequestOptions): Buffer {
  const parts = partsOf(image);
  const kind: MediaKind = image.mime === "video/mp4" ? "video_url" : "image_url";
  const json = JSON.stringify(
    buildCaptionRequest(
      parts.map((_, index) => slotOf(index)),
      options,
      kind,
    ),
  );
  const pieces: Buffer[] = [];
  let size = 0;
  let from = 0;
  parts.forEach((part, index) => {
    const quoted = JSON.stringify(slotOf(index));
    const slot = json.indexOf(quoted, from);
    const head = Buffer.from(`${json.slice(from, slot + 1)}data:${part.mime};base64,`, "utf8");
    pieces.push(head, part.data);
    size += head.length + 4 * Math.ceil(part.data.length / 3);
    from = slot + quoted.length - 1;
  });
  const tail = Buffer.from(json.slice(from), "utf8");
  const body = Buffer.allocUnsafe(size + tail.length);
  let at = 0;
  for (const [index, piece] of pieces.entries()) {
    if (index % 2 === 0) {
      at += piece.copy(body, at);
      continue;
    }
    for (let start = 0; start < piece.length; start += BASE64_SLICE) {
      const slice = piece.toString("base64", start, Math.min(piece.length, start + BASE64_SLICE));
      // Base64 is ASCII, so latin1 writes it byte for byte.
      at += body.write(slice, at, "latin1");
    }
  }
  tail.copy(body, at);
  return body;
}

/** An image as a request needs it: its type, and its bytes or a data URL holding them. */
export interface ImageToSend {
  mime: PreparedImage["mime"];
  data?: Uint8Array | undefined;
  dataUrl?: string;
  /** A clip sent as frames: each frame's JPEG, sent in place of `data`. */
  frames?: readonly Uint8Array[] | undefined;
}

/** Each piece of media the request carries, with its type. */
function partsOf(image: ImageToSend): { mime: string; data: Buffer }[] {
  if (image.frames && image.frames.length > 0) {
    return image.frames.map((frame) => ({ mime: "image/jpeg", data: asBuffer(frame) }));
  }
  return [{ mime: image.mime, data: bytesOf(image) }];
}

function asBuffer(data: Uint8Array): Buffer {
  return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
}

/** The image's bytes: prepareImage's own, or those of a data URL a program built. */
function bytesOf(image: ImageToSend): Buffer {
  const { data } = image;
  if (data) return asBuffer(data);
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
