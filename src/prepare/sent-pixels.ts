import sharp from "sharp";
import type { PrepareOptions } from "../types.js";
import { findFileProblem } from "./file-problems.js";
import { MAX_INPUT_PIXELS } from "./image-errors.js";
import { targetSize } from "./prepare.js";

/**
 * How many pixels the image will be sent with, from its header alone (no decode), or null when it
 * cannot be read: what a forecast of its tokens needs, for a whole folder in seconds.
 */
export async function sentPixels(
  source: string | Buffer,
  options: Pick<PrepareOptions, "maxPixels" | "maxSide">,
): Promise<number | null> {
  // Bytes: an image read from inside a shard or a Parquet file.
  if (typeof source === "string" && (await findFileProblem(source))) return null;
  try {
    const metadata = await sharp(source, {
      limitInputPixels: MAX_INPUT_PIXELS,
      pages: 1,
    }).metadata();
    const { width, height } = metadata;
    if (!width || !height) return null;
    const target = targetSize(width, height, options.maxPixels, options.maxSide);
    return target.width * target.height;
  } catch {
    return null;
  }
}
