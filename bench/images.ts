import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import sharp from "sharp";

/**
 * A 4000×3000 JPEG that compresses like a camera photo: smooth gradients, mid-frequency texture
 * and sensor-like noise, at camera quality. Random noise alone would be far larger than a photo,
 * a flat colour far smaller; both would distort the payload and decode figures.
 */
export async function photoLike(width: number, height: number, quality = 92): Promise<Buffer> {
  const raw = Buffer.alloc(width * height * 3);
  let seed = 12345;
  for (let y = 0; y < height; y += 1) {
    for (let x = 0; x < width; x += 1) {
      seed = (seed * 1664525 + 1013904223) >>> 0;
      const noise = (seed >>> 24) % 24;
      const i = (y * width + x) * 3;
      raw[i] = ((x * 255) / width + noise + 40 * Math.sin(y / 37)) & 255;
      raw[i + 1] = ((y * 255) / height + noise + 30 * Math.sin(x / 53)) & 255;
      raw[i + 2] = (128 + noise + 60 * Math.sin((x + y) / 91)) & 255;
    }
  }
  return sharp(raw, { raw: { width, height, channels: 3 } })
    .jpeg({ quality })
    .toBuffer();
}

/**
 * The same JPEG with a comment segment naming `index` after its start marker: every copy decodes
 * to the same pixels at the same cost, but no two files have the same bytes, so none is skipped
 * as a duplicate.
 */
export function variant(jpeg: Buffer, index: number): Buffer {
  const text = Buffer.from(`bench copy ${index}`, "latin1");
  const marker = Buffer.from([0xff, 0xfe, 0, 0]);
  marker.writeUInt16BE(text.length + 2, 2);
  return Buffer.concat([jpeg.subarray(0, 2), marker, text, jpeg.subarray(2)]);
}

/** Writes `count` distinct variants of `jpeg` into `folder`; returns the folder. */
export async function writeVariants(folder: string, jpeg: Buffer, count: number): Promise<string> {
  await mkdir(folder, { recursive: true });
  const batch = 256;
  for (let start = 0; start < count; start += batch) {
    const writes: Promise<void>[] = [];
    for (let i = start; i < Math.min(count, start + batch); i += 1) {
      writes.push(
        writeFile(path.join(folder, `img-${String(i).padStart(6, "0")}.jpg`), variant(jpeg, i)),
      );
    }
    await Promise.all(writes);
  }
  return folder;
}
