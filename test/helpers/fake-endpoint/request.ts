/**
 * What a chat request carries, read the way a strict server reads it: the model, the prompt, each
 * image decoded to its size and hash (or only measured, for benchmarks), and a video as ffprobe
 * reads it (video.ts).
 */
import { createHash } from "node:crypto";
import sharp from "sharp";
import { isRecord } from "./http.js";
import type { RecordedImage, RecordedVideo } from "./types.js";
import { readVideoUrl } from "./video.js";

const DATA_URL_PREFIX = /^data:(image\/[A-Za-z0-9.+-]+);base64,/;
const BASE64_BODY = /^[A-Za-z0-9+/]*={0,2}$/;

export interface Analysis {
  model: string | null;
  prompt: string | null;
  responseFormat?: unknown;
  frequencyPenalty?: number | null;
  image: RecordedImage | null;
  images: RecordedImage[];
  imageError: string | null;
  /** How many `video_url` parts it has, read or not: a server without video refuses any. */
  videoParts: number;
  video: RecordedVideo | null;
  videoError: string | null;
}

export function emptyAnalysis(): Analysis {
  return {
    model: null,
    prompt: null,
    image: null,
    images: [],
    imageError: null,
    videoParts: 0,
    video: null,
    videoError: null,
  };
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

/** The URL of every part of this type, in order. */
function findUrls(messages: unknown[], type: "image_url" | "video_url"): unknown[] {
  const urls: unknown[] = [];
  for (const message of messages) {
    if (!isRecord(message) || !Array.isArray(message.content)) continue;
    for (const part of message.content) {
      if (!isRecord(part) || part.type !== type) continue;
      // Some clients send the bare string form; accept it so the 400 is about the URL, not the shape.
      const holder = part[type];
      urls.push(isRecord(holder) ? holder.url : holder);
    }
  }
  return urls;
}

/**
 * `readVideos` false leaves video parts counted but unread, as a server without video support
 * refuses them before decoding anything.
 */
export async function analyzeChatBody(
  body: unknown,
  inspect: boolean,
  readVideos = true,
): Promise<Analysis> {
  const result = emptyAnalysis();
  if (!isRecord(body)) return result;
  if (typeof body.model === "string") result.model = body.model;
  const messages = Array.isArray(body.messages) ? body.messages : [];
  result.prompt = extractPrompt(messages);
  result.responseFormat = body.response_format;
  result.frequencyPenalty =
    typeof body.frequency_penalty === "number" ? body.frequency_penalty : null;

  const videoUrls = findUrls(messages, "video_url");
  result.videoParts = videoUrls.length;
  const [images, video] = await Promise.all([
    Promise.all(findUrls(messages, "image_url").map((url) => readImageUrl(url, inspect))),
    readVideos && videoUrls.length > 0 ? readVideoUrl(videoUrls[0], inspect) : null,
  ]);
  // A server reads the parts in order and stops at the first bad one: what came before is kept.
  const firstBad = images.indexOf(null);
  const read = firstBad < 0 ? images : images.slice(0, firstBad);
  result.images = read.filter((image) => image !== null);
  result.image = result.images[0] ?? null;
  if (firstBad >= 0) result.imageError = "invalid image data URL";
  if (video !== null) {
    result.video = video.video;
    result.videoError = video.error;
  }
  return result;
}

/** One image part's record, or null for a URL a strict server refuses. */
async function readImageUrl(url: unknown, inspect: boolean): Promise<RecordedImage | null> {
  // Whitespace is checked separately because Buffer.from(…, "base64") would silently skip it,
  // hiding exactly the line-wrapped base64 bug this server is meant to catch.
  const prefix = typeof url === "string" ? DATA_URL_PREFIX.exec(url) : null;
  if (typeof url !== "string" || /\s/.test(url) || prefix === null) return null;
  const payload = url.slice(prefix[0].length);
  if (!inspect) {
    // Benchmarks: the server must cost as little CPU as possible, so only sizes are recorded.
    return {
      mime: prefix[1] ?? "",
      bytes: Math.floor((payload.length * 3) / 4),
      width: null,
      height: null,
      sha256: "",
    };
  }
  if (payload.length === 0 || !BASE64_BODY.test(payload)) return null;
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
  return {
    mime: prefix[1] ?? "",
    bytes: buffer.length,
    width,
    height,
    sha256: createHash("sha256").update(buffer).digest("hex"),
  };
}
