/**
 * P1's loops: the least a program can do to turn these files into what it would send, as its own
 * plain-JavaScript process (no loader to pay for), so that the CLI is held against a hand-written
 * script doing the same job.
 *
 * MODE "same" does exactly what the CLI's settings ask for on that run and nothing more: the same
 * target-size rule (the pixel budget and the longest side, from the file's upright size), the same
 * kernel (bicubic) and encoder (JPEG at QUALITY, plain Huffman tables), from the file path, the
 * upright turn, base64, and a SHA-256 of each file when HASH is 1 (the run writes a sha256
 * column), with CONCURRENCY images at once.
 * MODE "plain" is what most people would write by hand: sharp's defaults (Lanczos-3, optimised
 * Huffman tables) at q85, `fit: inside` the longest side, base64, no hash.
 * Usage: node bench/loop.mjs FOLDER CONCURRENCY MODE MAX_PIXELS MAX_SIDE QUALITY HASH
 */
import { createHash } from "node:crypto";
import { readdir, readFile } from "node:fs/promises";
import path from "node:path";
import pLimit from "p-limit";
import sharp from "sharp";
import { targetSize } from "../dist/prepare/prepare.js";

const [folder, concurrency, mode, maxPixels, maxSide, quality, hash] = process.argv.slice(2);
sharp.cache(false);
const files = (await readdir(folder)).sort().map((name) => path.join(folder, name));
const limit = pLimit(Number(concurrency));
let sent = 0;
await Promise.all(
  files.map((file) =>
    limit(async () => {
      let jpeg;
      if (mode === "plain") {
        jpeg = await sharp(file)
          .rotate()
          .resize(Number(maxSide), Number(maxSide), { fit: "inside" })
          .jpeg({ quality: 85 })
          .toBuffer();
      } else {
        const digest =
          hash === "1"
            ? createHash("sha256")
                .update(await readFile(file))
                .digest("hex")
            : "";
        const image = sharp(file, { autoOrient: true });
        const { autoOrient } = await image.metadata();
        const size = targetSize(
          autoOrient.width,
          autoOrient.height,
          Number(maxPixels),
          Number(maxSide),
        );
        jpeg = await image
          .resize({ width: size.width, height: size.height, fit: "fill", kernel: "cubic" })
          .jpeg({ quality: Number(quality), optimiseCoding: false })
          .toBuffer();
        sent += digest.length;
      }
      sent += jpeg.toString("base64").length;
    }),
  ),
);
process.stdout.write(`${JSON.stringify({ files: files.length, sent })}\n`);
