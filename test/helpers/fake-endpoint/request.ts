/**
 * What a chat request carries, read the way a strict server reads it: the model, the prompt, and
 * the image decoded to its size and hash (or only measured, for benchmarks).
 */
import { createHash } from "node:crypto";
import sharp from "sharp";
import { isRecord } from "./http.js";
import type { RecordedImage } from "./types.js";

const DATA_URL_PREFIX = /^data:(image\/[A-Za-z0-9.+-]+);base64,/;
const BASE64_BODY = /^[A-Za-z0-9+/]*={0,2}$/;

export interface Analysis {
  model: string | null;
  prompt: string | null;
  responseFormat?: unknown;
  frequencyPenalty?: number | null;
  image: RecordedImage | null;
  imageError: string | null;
}

export function emptyAnalysis(): Analysis {
  return { model: null, prompt: null, image: null, imageError: null };
}

function extractPrompt(messages: unknown[]): string | null {
  const user = messages.find((m) => isRecord(m) && m.role === "user");
  if (!isRecord(user)) return null;
  if (typeof user.content === "string") return user.content;
  if (!Array.isArray(user.content)) return null;
  for (const part of user.content) {
    if (isRecord(part) && part.type === "text" && typeof part.text === "string") return part.text;
  }
  return null;
}

function findImageUrl(messages: unknown[]): unknown {
  for (const message of messages) {
    if (!isRecord(message) || !Array.isArray(message.content)) continue;
    for (const part of message.content) {
      if (!isRecord(part) || part.type !== "image_url") continue;
      // Some clients send the bare string form; accept it so the 400 is about the URL, not the shape.
      return isRecord(part.image_url) ? part.image_url.url : part.image_url;
    }
  }
  return undefined;
}

export async function analyzeChatBody(body: unknown, inspect: boolean): Promise<Analysis> {
  const result = emptyAnalysis();
  if (!isRecord(body)) return result;
  if (typeof body.model === "string") result.model = body.model;
  const messages = Array.isArray(body.messages) ? body.messages : [];
  result.prompt = extractPrompt(messages);
  result.responseFormat = body.response_format;
  result.frequencyPenalty =
    typeof body.frequency_penalty === "number" ? body.frequency_penalty : null;

  const url = findImageUrl(messages);
  if (url === undefined) return result;
  // Whitespace is checked separately because Buffer.from(…, "base64") would silently skip it,
  // hiding exactly the line-wrapped base64 bug this server is meant to catch.
  const prefix = typeof url === "string" ? DATA_URL_PREFIX.exec(url) : null;
  if (typeof url !== "string" || /\s/.test(url) || prefix === null) {
    result.imageError = "invalid image data URL";
    return result;
  }
  const payload = url.slice(prefix[0].length);
  if (!inspect) {
    // Benchmarks: the server must cost as little CPU as possible, so only sizes are recorded.
    result.image = {
      mime: prefix[1] ?? "",
      bytes: Math.floor((payload.length * 3) / 4),
      width: null,
      height: null,
      sha256: "",
    };
    return result;
  }
  if (payload.length === 0 || !BASE64_BODY.test(payload)) {
    result.imageError = "invalid image data URL";
    return result;
  }
  const buffer = Buffer.from(payload, "base64");
  let width: number | null = null;
  let height: number | null = null;
  try {
    const meta = await sharp(buffer).metadata();
    width = typeof meta.width === "number" ? meta.width : null;
    height = typeof meta.height === "number" ? meta.height : null;
  } catch {
    // Undecodable bytes are still worth recording; the nulls tell the test what happened.
  }
  result.image = {
    mime: prefix[1] ?? "",
    bytes: buffer.length,
    width,
    height,
    sha256: createHash("sha256").update(buffer).digest("hex"),
  };
  return result;
}
