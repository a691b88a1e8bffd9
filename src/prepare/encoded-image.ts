import type { PreparedImage } from "../types.js";

/**
 * A prepared image as its encoded bytes. Its data URL is made only when something reads it: a run
 * never does, since a request writes the base64 straight into its body (a half-megabyte string per
 * image otherwise, built, copied and collected again). For a program it behaves as a plain object:
 * `dataUrl` is an own property (spread, JSON and structuredClone keep it) and the bytes are not
 * enumerated.
 */
export function encodedImage(
  data: Buffer,
  mime: PreparedImage["mime"],
  size: { width: number; height: number },
  original: { width: number; height: number },
): PreparedImage {
  const image = { mime, width: size.width, height: size.height, original, bytes: data.length };
  Object.defineProperty(image, "data", { value: data, enumerable: false });
  Object.defineProperty(image, "dataUrl", {
    enumerable: true,
    configurable: true,
    get: () => `data:${mime};base64,${data.toString("base64")}`,
    // A program that sets its own keeps it, as it could before.
    set(value: string) {
      Object.defineProperty(image, "dataUrl", { value, enumerable: true, writable: true });
    },
  });
  return image as PreparedImage;
}
