import { webcrypto } from "node:crypto";
import { readdir, readFile } from "node:fs/promises";
import path from "node:path";
import pLimit from "p-limit";
import sharp from "sharp";
import { targetSize } from "/work/main/dist/prepare/prepare.js";

const [folder, par, conc, src, extra] = process.argv.slice(2);
sharp.cache(false);
if (conc !== "d") sharp.concurrency(Number(conc));
const files = (await readdir(folder)).sort().map((n) => path.join(folder, n));
const limit = pLimit(Number(par));
await Promise.all(
  files.map((file) =>
    limit(async () => {
      let input = file;
      if (src === "buf") {
        input = await readFile(file);
        await webcrypto.subtle.digest("SHA-256", input);
      } else {
        const b = await readFile(file);
        await webcrypto.subtle.digest("SHA-256", b);
      }
      const image = sharp(
        input,
        extra === "full"
          ? { autoOrient: true, failOn: "error", pages: 1, page: 0, limitInputPixels: 268402689 }
          : { autoOrient: true },
      );
      const m = await image.metadata();
      const s = targetSize(m.autoOrient.width, m.autoOrient.height, 1806336, 1344);
      image.resize({ width: s.width, height: s.height, fit: "fill", kernel: "cubic" });
      if (extra === "full") image.flatten({ background: "#ffffff" }).toColourspace("srgb");
      const out = await image.jpeg({ quality: 90, optimiseCoding: false }).toBuffer();
      out.toString("base64");
    }),
  ),
);
