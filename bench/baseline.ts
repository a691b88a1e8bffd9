/**
 * The floor P1 is measured against: the least a program can do to turn these files into what
 * caption sends (auto-orient, shrink to the pixel budget, JPEG q90, base64), with the same
 * parallelism, and nothing else. Run as its own process, like the CLI, so both pay start-up.
 * With MODE "decode" it only decodes each file at the scale JPEG shrink-on-load gives for that
 * budget (half size for 12 MP), with nothing resized or encoded: less than any program can do and
 * still send the model these pixels, so the most any sharp-based tool could reach here.
 * Usage: tsx bench/baseline.ts FOLDER CONCURRENCY MAX_PIXELS [MODE]
 */
import { readdir } from "node:fs/promises";
import path from "node:path";
import pLimit from "p-limit";
import sharp from "sharp";
import { targetSize } from "../src/prepare/prepare.js";

const [folder = ".", concurrency = "8", maxPixels = "1806336", mode = "prepare"] =
  process.argv.slice(2);
sharp.cache(false);
const files = (await readdir(folder)).map((name) => path.join(folder, name));
const limit = pLimit(Number(concurrency));
let bytes = 0;
await Promise.all(
  files.map((file) =>
    limit(async () => {
      const image = sharp(file).rotate();
      const { width = 1, height = 1 } = await image.metadata();
      const size = targetSize(width, height, Number(maxPixels));
      if (mode === "decode") {
        // The largest power-of-two shrink that stays at or above the target, as libjpeg does it.
        let shrink = 1;
        while (shrink < 8 && width / (shrink * 2) >= size.width) shrink *= 2;
        const decoded = await image
          .resize(Math.ceil(width / shrink), Math.ceil(height / shrink), {
            fit: "fill",
            kernel: "nearest",
          })
          .raw()
          .toBuffer();
        bytes += decoded.length;
        return;
      }
      const jpeg = await image
        .resize(size.width, size.height, { fit: "fill" })
        .jpeg({ quality: 90 })
        .toBuffer();
      bytes += jpeg.toString("base64").length;
    }),
  ),
);
process.stdout.write(`${JSON.stringify({ files: files.length, bytes })}\n`);
