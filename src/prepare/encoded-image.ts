import type { PreparedImage } from "../types.js";

/**
 * A prepared image as its encoded bytes. The data URL a program may ask for is made only then:
 * a run never makes it, since a request writes the base64 straight into its body (a half-megabyte
 * string per image otherwise, built, copied and collected again).
 */
export class EncodedImage implements PreparedImage {
  readonly data: Buffer;
  readonly mime: PreparedImage["mime"];
  readonly width: number;
  readonly height: number;
  readonly original: { width: number; height: number };
  readonly bytes: number;

  constructor(
    data: Buffer,
    mime: PreparedImage["mime"],
    size: { width: number; height: number },
    original: { width: number; height: number },
  ) {
    this.data = data;
    this.mime = mime;
    this.width = size.width;
    this.height = size.height;
    this.original = original;
    this.bytes = data.length;
  }

  get dataUrl(): string {
    return `data:${this.mime};base64,${this.data.toString("base64")}`;
  }
}
