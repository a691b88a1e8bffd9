import path from "node:path";

/** File extensions treated as images when a folder or pattern is expanded (case-insensitive). */
export const IMAGE_EXTENSIONS = [
  "jpg",
  "jpeg",
  "png",
  "webp",
  "gif",
  "tif",
  "tiff",
  "avif",
  "heic",
  "heif",
] as const;

/** File extensions taken as video clips, when clips are asked for (`video`). */
export const VIDEO_EXTENSIONS = ["mp4", "mov", "m4v", "mkv", "webm", "avi"] as const;

const VIDEO_SET = new Set<string>(VIDEO_EXTENSIONS);

/** Whether a file is captioned as a clip (cut with FFmpeg) rather than decoded as an image. */
export function isClipPath(file: string): boolean {
  return VIDEO_SET.has(path.extname(file).slice(1).toLowerCase());
}
