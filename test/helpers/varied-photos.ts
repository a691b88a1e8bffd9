import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import sharp, { type Sharp } from "sharp";

/** The formats a camera roll or a scraped dataset mixes, with how sharp writes each. */
const FORMATS = ["jpg", "png", "webp", "gif", "tiff", "avif"] as const;

const SLOW_TO_ENCODE: ReadonlySet<string> = new Set(["webp", "gif", "avif"]);

/** Sizes from a thumbnail to a 12 MP photo, landscape and portrait, so the server slices some. */
const SIZES: readonly (readonly [number, number])[] = [
  [4000, 3000],
  [3000, 4000],
  [1920, 1080],
  [1280, 960],
  [800, 600],
  [640, 480],
  [448, 448],
  [320, 240],
  [2048, 1536],
  [1024, 1024],
];

/**
 * A small picture with gradients and seeded noise, enlarged: each index looks different, and the
 * files compress like photos rather than like a flat colour.
 */
async function picture(index: number, width: number, height: number): Promise<Sharp> {
  const w = 160;
  const h = 120;
  const raw = Buffer.alloc(w * h * 3);
  let seed = 7919 * (index + 1);
  for (let y = 0; y < h; y += 1) {
    for (let x = 0; x < w; x += 1) {
      seed = (seed * 1664525 + 1013904223) >>> 0;
      const noise = (seed >>> 24) % 32;
      const i = (y * w + x) * 3;
      raw[i] = ((x * 255) / w + noise + 17 * index) & 255;
      raw[i + 1] = ((y * 255) / h + noise + 40 * Math.sin((x + index) / 9)) & 255;
      raw[i + 2] = (90 + noise + 60 * Math.sin((x * y) / (300 + index))) & 255;
    }
  }
  const enlarged = await sharp(raw, { raw: { width: w, height: h, channels: 3 } })
    .resize(width, height, { fit: "fill" })
    .raw()
    .toBuffer();
  return sharp(enlarged, { raw: { width, height, channels: 3 } });
}

/**
 * Writes `count` photos of every common format and size (up to 4000×3000) into `folder`; returns
 * their file names. Format and size vary independently, so each format meets large and small
 * (WebP, GIF and AVIF at most 2048 px a side).
 */
export async function writeVariedPhotos(folder: string, count = 40): Promise<string[]> {
  await mkdir(folder, { recursive: true });
  const names: string[] = [];
  for (let index = 0; index < count; index += 1) {
    const format = FORMATS[index % FORMATS.length] ?? "jpg";
    const [fullWidth, fullHeight] = SIZES[index % SIZES.length] ?? [640, 480];
    // WebP, GIF and AVIF take seconds to encode at 12 MP; at 2048 px they already fill the
    // model's nine slices, so what the server spends on them is the same.
    const scale = SLOW_TO_ENCODE.has(format)
      ? Math.min(1, 2048 / Math.max(fullWidth, fullHeight))
      : 1;
    const width = Math.round(fullWidth * scale);
    const height = Math.round(fullHeight * scale);
    const image = await picture(index, width, height);
    const encoded =
      format === "jpg"
        ? image.jpeg({ quality: 90 })
        : format === "png"
          ? image.png({ compressionLevel: 1 })
          : format === "webp"
            ? image.webp({ quality: 80 })
            : format === "gif"
              ? image.gif({ effort: 1, dither: 0 })
              : format === "tiff"
                ? image.tiff({ compression: "lzw" })
                : image.avif({ quality: 50, effort: 0 });
    const name = `photo-${String(index).padStart(2, "0")}-${width}x${height}.${format}`;
    await writeFile(path.join(folder, name), await encoded.toBuffer());
    names.push(name);
  }
  return names;
}
