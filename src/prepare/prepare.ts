import { readFile } from "node:fs/promises";
import sharp, { type FailOnOptions, type Metadata } from "sharp";
import { ImageError } from "../errors.js";
import { DEFAULT_JPEG_QUALITY } from "../settings/defaults.js";
import type { PreparedImage, PrepareOptions } from "../types.js";
import { encodedImage } from "./encoded-image.js";
import { findFileProblem } from "./file-problems.js";
import { classifyImageError, MAX_INPUT_PIXELS, unsupportedFormatError } from "./image-errors.js";
import { sendableAsIs, stripJpegMetadata } from "./jpeg-passthrough.js";

/**
 * "error" rather than sharp's stricter default "warning": truncated files and broken headers still
 * fail, but JPEGs that every viewer opens despite a libjpeg warning (stray bytes before a marker,
 * odd SOS parameters from some cameras) are captioned instead of rejected.
 */
const FAIL_ON: FailOnOptions = "error";

/**
 * Runs `work` with sharp set for a run. libvips' operation cache is off: a run reads each file
 * once, so the cache would only hold memory, never hit. Each image is processed on one thread: a
 * run already decodes one image per core at once, and every extra libvips thread that allocates
 * gets a glibc malloc arena of its own, which is most of a run's memory (at -c 32 on 12 MP photos,
 * 330 MB with libvips' threads and 250 MB without, at the same speed). The program's own settings
 * are put back afterwards, so importing or calling the library leaves sharp as the caller had it.
 */
export async function withSharpForRuns<T>(work: () => Promise<T>): Promise<T> {
  const before = sharp.cache();
  const threads = sharp.concurrency();
  sharp.cache(false);
  sharp.concurrency(1);
  try {
    return await work();
  } finally {
    sharp.concurrency(threads);
    sharp.cache({
      memory: before.memory.max ?? 0,
      files: before.files.max,
      items: before.items.max,
    });
  }
}

/** Formats sent on after decoding; sharp can read a few more (SVG, libvips' own) that we refuse. */
const ACCEPTED_FORMATS = new Set<Metadata["format"]>(["jpeg", "png", "webp", "gif", "tiff"]);

/**
 * Reads an image from disk and returns it upright, opaque, sRGB 8-bit, shrunk to fit the pixel
 * budget and encoded as a data URL. Throws ImageError, with a stable code, for anything wrong with
 * the file; throws RangeError for invalid options. `bytes`, when the caller has already read the
 * file, saves reading it twice; `absPath` still names it in errors.
 */
export async function prepareImage(
  absPath: string,
  options: PrepareOptions,
  bytes?: Buffer,
): Promise<PreparedImage> {
  checkOptions(options);
  if (!bytes) {
    const fileProblem = await findFileProblem(absPath);
    if (fileProblem) throw fileProblem;
  }
  try {
    return await encodeImage(bytes ?? absPath, options);
  } catch (error) {
    if (error instanceof ImageError) throw error;
    throw await classifyImageError(absPath, error, bytes);
  }
}

/**
 * The largest size with the same aspect ratio (within a pixel) whose area is at most `maxPixels`
 * and whose longest side is at most `maxSide`. Never upscales.
 */
export function targetSize(
  width: number,
  height: number,
  maxPixels: number,
  maxSide?: number,
): { width: number; height: number } {
  for (const [name, value] of [
    ["width", width],
    ["height", height],
  ] as const) {
    if (!Number.isSafeInteger(value) || value < 1) {
      throw new RangeError(`${name} must be a positive integer, got ${value}`);
    }
  }
  if (!(maxPixels >= 1)) throw new RangeError(`maxPixels must be at least 1, got ${maxPixels}`);
  if (maxSide !== undefined && !(maxSide >= 1)) {
    throw new RangeError(`maxSide must be at least 1, got ${maxSide}`);
  }

  const pixels = Math.floor(maxPixels);
  const side = maxSide === undefined ? Number.POSITIVE_INFINITY : Math.floor(maxSide);
  if (width * height <= pixels && Math.max(width, height) <= side) return { width, height };

  const scale = Math.min(1, Math.sqrt(pixels / (width * height)), side / Math.max(width, height));
  let w = Math.min(side, Math.max(1, Math.floor(width * scale)));
  let h = Math.min(side, Math.max(1, Math.floor(height * scale)));
  // Raising a thin side to 1 px, or rounding error in the scale, can push the area over budget;
  // take the excess off the long side, which barely changes its proportion.
  if (w * h > pixels) {
    if (w >= h) w = Math.max(1, Math.floor(pixels / h));
    else h = Math.max(1, Math.floor(pixels / w));
  }
  return { width: w, height: h };
}

async function encodeImage(
  input: string | Buffer,
  options: PrepareOptions,
): Promise<PreparedImage> {
  const image = sharp(input, {
    limitInputPixels: MAX_INPUT_PIXELS,
    failOn: FAIL_ON,
    // The servers ignore EXIF orientation, so the pixels themselves must be upright.
    autoOrient: true,
    // Animated GIF/WebP and multi-page TIFF: the first frame stands for the image.
    pages: 1,
    page: 0,
  });

  const metadata = await image.metadata();
  rejectUnaccepted(metadata);

  // autoOrient gives the dimensions after rotation, which is what the budget applies to.
  const { width, height } = metadata.autoOrient;
  const target = targetSize(width, height, options.maxPixels, options.maxSide);
  // A JPEG that needs no change is sent as it is, less its metadata: no decode, no second lossy
  // encoding, and no GPS position or camera serial sent to a hosted API.
  if (options.imageFormat === "jpeg" && sendableAsIs(metadata, target)) {
    const stripped = stripJpegMetadata(typeof input === "string" ? await readFile(input) : input);
    if (stripped) {
      return encodedImage(stripped, "image/jpeg", { width, height }, { width, height });
    }
  }
  if (target.width !== width || target.height !== height) {
    // "fill" with both sides given lets JPEG shrink-on-load work while hitting the exact size;
    // the aspect ratio was already kept by targetSize.
    // Bicubic rather than sharp's Lanczos-3: as close to an ideal resize (32.83 against 32.80 dB
    // on photo-like 12 MP JPEGs at the budget's size, 38.95 against 38.97 at the half size a
    // model's slices come to) for about a tenth less time per image (`npm run bench`, P10).
    image.resize({ width: target.width, height: target.height, fit: "fill", kernel: "cubic" });
  }

  // Servers drop alpha (often leaving black); CMYK and 16-bit inputs must become plain sRGB bytes.
  image.flatten({ background: "#ffffff" }).toColourspace("srgb");

  const png = options.imageFormat === "png";
  // No optimised Huffman tables: a second pass over the image for about 3 % fewer bytes.
  const encoder = png
    ? image.png()
    : image.jpeg({ quality: options.quality ?? DEFAULT_JPEG_QUALITY, optimiseCoding: false });
  const { data, info } = await encoder.toBuffer({ resolveWithObject: true });
  return encodedImage(data, png ? "image/png" : "image/jpeg", info, { width, height });
}

function rejectUnaccepted(metadata: Metadata): void {
  if (metadata.format === "heif") {
    if (metadata.compression === "av1") return;
    throw unsupportedFormatError("HEIC");
  }
  if (ACCEPTED_FORMATS.has(metadata.format)) return;
  const name = metadata.format === "svg" ? "SVG" : metadata.format;
  throw unsupportedFormatError(name);
}

function checkOptions(options: PrepareOptions): void {
  const { quality, imageFormat } = options;
  if (quality !== undefined && !(Number.isInteger(quality) && quality >= 1 && quality <= 100)) {
    throw new RangeError(`quality must be an integer from 1 to 100, got ${quality}`);
  }
  if (imageFormat !== "jpeg" && imageFormat !== "png") {
    throw new RangeError(`imageFormat must be "jpeg" or "png", got ${String(imageFormat)}`);
  }
  // targetSize checks maxPixels and maxSide, but only after the file is opened; fail before that.
  targetSize(1, 1, options.maxPixels, options.maxSide);
}
