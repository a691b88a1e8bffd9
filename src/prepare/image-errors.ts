import sharp from "sharp";
import { ImageError } from "../errors.js";
import { fileSystemError, findFileProblem } from "./file-problems.js";
import { readHeader, sniffFormat } from "./sniff-format.js";

/** sharp's own default: 0x3FFF × 0x3FFF. Above it, a small file is most likely a decompression bomb. */
export const MAX_INPUT_PIXELS = 268_402_689;

export const SUPPORTED_FORMATS = "JPEG, PNG, WebP, GIF, TIFF and AVIF";

/**
 * Turns whatever sharp threw into an ImageError a user can act on. `bytes`: what was decoded,
 * where it was read already (an image inside a shard, whose file is the shard).
 */
export async function classifyImageError(
  absPath: string,
  cause: unknown,
  bytes?: Buffer,
): Promise<ImageError> {
  // The file may have changed since the check before decoding; a vanished file is not a corrupt one.
  const fileProblem = await findFileProblem(absPath, cause);
  if (fileProblem) return fileProblem;

  const detail = sharpDetail(cause);
  if (/exceeds pixel limit/i.test(detail)) return tooLargeError(bytes ?? absPath, cause);

  let header: Buffer;
  try {
    header = bytes ? bytes.subarray(0, 512) : await readHeader(absPath);
  } catch (error) {
    return fileSystemError(absPath, error, cause);
  }
  const sniffed = sniffFormat(header);
  if (sniffed && !sniffed.supported) return unsupportedFormatError(sniffed.name, cause);
  if (!sniffed && /\bheif\b/i.test(detail)) return heicError(cause);
  if (!sniffed) {
    return new ImageError(
      "unsupported_format",
      `the file is not an image in a supported format (${SUPPORTED_FORMATS}); convert it to JPEG or PNG, or remove it from the inputs`,
      { cause },
    );
  }
  const truncated =
    /premature end|truncated|unexpected end|insufficient input|end of (file|stream)/i;
  const what = truncated.test(detail)
    ? "the file ends early (an interrupted copy or download)"
    : "its data is corrupt";
  return new ImageError(
    "corrupt_image",
    `the file looks like a ${sniffed.name} image but cannot be decoded: ${what} (decoder said: ${detail}); open it in an image viewer to check, then replace it with a good copy or remove it`,
    { cause },
  );
}

/** For an image sharp can open but this tool chooses not to send, or cannot decode. */
export function unsupportedFormatError(format: string, cause?: unknown): ImageError {
  if (format === "HEIC") return heicError(cause);
  if (format === "SVG") {
    return new ImageError(
      "unsupported_format",
      `the file is an SVG (vector) image, which is not captioned: it would be rasterised at its own, often icon-sized, dimensions and could pull in linked files; export it to PNG first (e.g. rsvg-convert -w 1344 in.svg -o out.png)`,
      { cause },
    );
  }
  return new ImageError(
    "unsupported_format",
    `the file is a ${format} image, which is not supported (supported: ${SUPPORTED_FORMATS}); convert it to JPEG or PNG first`,
    { cause },
  );
}

async function tooLargeError(source: string | Buffer, cause: unknown): Promise<ImageError> {
  let size = "its dimensions";
  try {
    // Only the header is parsed here, so lifting the limit cannot allocate the huge canvas.
    const { width, height } = await sharp(source, { limitInputPixels: false }).metadata();
    size = `${width}×${height} = ${(width * height).toLocaleString("en-US")} pixels`;
  } catch {
    // The dimensions only make the message nicer; the verdict stands without them.
  }
  return new ImageError(
    "image_too_large",
    `the file is too large to decode: ${size} exceeds the limit of ${MAX_INPUT_PIXELS.toLocaleString("en-US")} pixels (16383×16383); it may be a decompression bomb. If it is a genuine image, downscale it with another tool first`,
    { cause },
  );
}

function heicError(cause: unknown): ImageError {
  return new ImageError(
    "unsupported_format",
    `the file is a HEIC image (HEVC-compressed), which this build of sharp cannot decode; convert it to JPEG first (macOS: sips -s format jpeg in.heic --out out.jpg; Linux: heif-convert in.heic out.jpg)`,
    { cause },
  );
}

/** libvips repeats lines and can run to kilobytes; one short line is enough for a report. */
function sharpDetail(cause: unknown): string {
  const message = cause instanceof Error ? cause.message : String(cause);
  const firstLine = message
    .replace(/^Input (file|buffer) has corrupt header:\s*/i, "")
    .split("\n")
    .map((line) => line.trim())
    .find((line) => line !== "");
  const line = firstLine ?? "unknown error";
  return line.length > 160 ? `${line.slice(0, 157)}...` : line;
}
