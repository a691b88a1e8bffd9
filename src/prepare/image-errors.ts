import { constants } from "node:fs";
import { access, lstat, open, stat } from "node:fs/promises";
import sharp from "sharp";
import { ImageError } from "../errors.js";

/** sharp's own default: 0x3FFF × 0x3FFF. Above it, a small file is most likely a decompression bomb. */
export const MAX_INPUT_PIXELS = 268_402_689;

export const SUPPORTED_FORMATS = "JPEG, PNG, WebP, GIF, TIFF and AVIF";

/** What the first bytes of a file say it is; `supported` means sharp should have decoded it. */
interface Sniffed {
  name: string;
  supported: boolean;
}

const HEADER_BYTES = 512;

const HEIC_BRANDS = new Set(["heic", "heix", "heim", "heis", "hevc", "hevx", "hevm", "hevs"]);

/**
 * A problem with the file itself rather than its contents, or undefined when the file can be read.
 * Checked before decoding too, because libvips would block forever on a FIFO and reports a
 * directory or an empty file as an "unsupported image format".
 */
export async function findFileProblem(
  absPath: string,
  cause?: unknown,
): Promise<ImageError | undefined> {
  let stats: Awaited<ReturnType<typeof stat>>;
  try {
    stats = await stat(absPath);
  } catch (error) {
    return fileSystemError(absPath, error, cause);
  }
  if (stats.isDirectory()) {
    return new ImageError(
      "not_a_file",
      `the file is a directory, not an image file; rename it or leave it out of the inputs`,
      { cause },
    );
  }
  if (!stats.isFile()) {
    return new ImageError(
      "not_a_file",
      `the file is not a regular file (a pipe, socket or device); only image files can be captioned`,
      { cause },
    );
  }
  if (stats.size === 0) {
    return new ImageError(
      "empty_file",
      `the file is empty (0 bytes), probably an interrupted copy or download; replace it with a complete copy or remove it`,
      { cause },
    );
  }
  try {
    // stat succeeds on files the user may not read, so ask for read access explicitly.
    await access(absPath, constants.R_OK);
  } catch (error) {
    return fileSystemError(absPath, error, cause);
  }
  return undefined;
}

/** Turns whatever sharp threw into an ImageError a user can act on. */
export async function classifyImageError(absPath: string, cause: unknown): Promise<ImageError> {
  // The file may have changed since the check before decoding; a vanished file is not a corrupt one.
  const fileProblem = await findFileProblem(absPath, cause);
  if (fileProblem) return fileProblem;

  const detail = sharpDetail(cause);
  if (/exceeds pixel limit/i.test(detail)) return tooLargeError(absPath, cause);

  let header: Buffer;
  try {
    header = await readHeader(absPath);
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

async function tooLargeError(absPath: string, cause: unknown): Promise<ImageError> {
  let size = "its dimensions";
  try {
    // Only the header is parsed here, so lifting the limit cannot allocate the huge canvas.
    const { width, height } = await sharp(absPath, { limitInputPixels: false }).metadata();
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

async function fileSystemError(
  absPath: string,
  error: unknown,
  cause: unknown,
): Promise<ImageError> {
  const code = errnoCode(error);
  const options = { cause: cause ?? error };
  if (code === "ENOENT") {
    const dangling = await lstat(absPath).then(
      (link) => link.isSymbolicLink(),
      () => false,
    );
    const what = dangling
      ? "is a symbolic link whose target does not exist"
      : "no longer exists (moved or deleted after the inputs were listed)";
    return new ImageError(
      "file_missing",
      `the file ${what}; restore it, or rerun to skip it`,
      options,
    );
  }
  if (code === "EACCES" || code === "EPERM") {
    return new ImageError(
      "permission_denied",
      `the file cannot be read: permission denied; give your user read access (e.g. chmod u+r) or leave it out`,
      options,
    );
  }
  if (code === "ENOTDIR") {
    return new ImageError(
      "file_missing",
      `the file does not exist (a folder in its path is a file); check the path`,
      options,
    );
  }
  return new ImageError(
    "file_unreadable",
    `the file cannot be read (${code ?? "unknown error"}); check the file and the disk, then rerun`,
    options,
  );
}

function errnoCode(error: unknown): string | undefined {
  if (typeof error === "object" && error !== null && "code" in error) {
    const { code } = error;
    if (typeof code === "string") return code;
  }
  return undefined;
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

async function readHeader(absPath: string): Promise<Buffer> {
  const handle = await open(absPath, "r");
  try {
    const buffer = Buffer.alloc(HEADER_BYTES);
    const { bytesRead } = await handle.read(buffer, 0, HEADER_BYTES, 0);
    return buffer.subarray(0, bytesRead);
  } finally {
    await handle.close();
  }
}

/** Names the format from its signature, so a broken JPEG is "corrupt" while a BMP is "unsupported". */
export function sniffFormat(header: Buffer): Sniffed | undefined {
  if (header.toString("latin1", 4, 8) === "ftyp") return sniffIsoMedia(header);
  const match = SIGNATURES.find((signature) => signature.test(header));
  return match && { name: match.name, supported: match.supported };
}

const bytesAt = (header: Buffer, offset: number, ...bytes: number[]) =>
  bytes.every((byte, i) => header[offset + i] === byte);
const textAt = (header: Buffer, offset: number, text: string) =>
  header.toString("latin1", offset, offset + text.length) === text;

const SIGNATURES: { name: string; supported: boolean; test: (header: Buffer) => boolean }[] = [
  { name: "JPEG", supported: true, test: (h) => bytesAt(h, 0, 0xff, 0xd8, 0xff) },
  { name: "PNG", supported: true, test: (h) => bytesAt(h, 0, 0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a) },
  { name: "GIF", supported: true, test: (h) => textAt(h, 0, "GIF87a") || textAt(h, 0, "GIF89a") },
  { name: "WebP", supported: true, test: (h) => textAt(h, 0, "RIFF") && textAt(h, 8, "WEBP") },
  {
    name: "TIFF",
    supported: true,
    // Classic (42) and BigTIFF (43), in either byte order.
    test: (h) =>
      textAt(h, 0, "II")
        ? [0x2a, 0x2b].includes(h[2] ?? 0) && h[3] === 0
        : textAt(h, 0, "MM") && h[2] === 0 && [0x2a, 0x2b].includes(h[3] ?? 0),
  },
  {
    name: "JPEG XL",
    supported: false,
    test: (h) => bytesAt(h, 0, 0xff, 0x0a) || textAt(h, 4, "JXL "),
  },
  {
    name: "JPEG 2000",
    supported: false,
    test: (h) => textAt(h, 4, "jP  ") || bytesAt(h, 0, 0xff, 0x4f, 0xff, 0x51),
  },
  { name: "Photoshop (PSD)", supported: false, test: (h) => textAt(h, 0, "8BPS") },
  { name: "PDF", supported: false, test: (h) => textAt(h, 0, "%PDF-") },
  {
    name: "BMP",
    supported: false,
    // "BM" alone is too weak; the DIB header size at offset 14 takes one of a few known values.
    test: (h) =>
      textAt(h, 0, "BM") &&
      h.length >= 18 &&
      [12, 40, 52, 56, 64, 108, 124].includes(h.readUInt32LE(14)),
  },
  {
    name: "ICO",
    supported: false,
    test: (h) => bytesAt(h, 0, 0x00, 0x00, 0x01, 0x00) && h.length >= 6 && h.readUInt16LE(4) > 0,
  },
  {
    name: "SVG",
    supported: false,
    test: (h) =>
      /^\s*(<\?xml[^>]*>\s*)?(<!--[\s\S]*?-->\s*)*(<!DOCTYPE svg[^>]*>\s*)?<svg[\s>]/i.test(
        h.toString("latin1"),
      ),
  },
];

/** HEIF and AVIF share the ISO media container; the brands tell the codec. */
function sniffIsoMedia(header: Buffer): Sniffed | undefined {
  if (header.length < 16) return undefined;
  const boxSize = Math.min(header.readUInt32BE(0), header.length);
  const brands: string[] = [header.toString("latin1", 8, 12)];
  for (let offset = 16; offset + 4 <= boxSize; offset += 4) {
    brands.push(header.toString("latin1", offset, offset + 4));
  }
  if (brands.some((brand) => brand === "avif" || brand === "avis"))
    return { name: "AVIF", supported: true };
  // A HEIF that is not AVIF is, in practice, HEVC: the one codec this sharp build lacks.
  if (brands.some((brand) => HEIC_BRANDS.has(brand) || brand === "mif1" || brand === "msf1")) {
    return { name: "HEIC", supported: false };
  }
  return undefined;
}
