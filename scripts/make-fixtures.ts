/**
 * Regenerates the committed image fixtures: `npx tsx scripts/make-fixtures.ts`.
 * Pixels are computed here rather than drawn from SVG or noise so every run writes the same bytes.
 */
import { mkdir, writeFile } from "node:fs/promises";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import sharp, { type Sharp } from "sharp";

const root = fileURLToPath(new URL("../fixtures/", import.meta.url));
const images = join(root, "images");
const broken = join(root, "broken");

type Channels = 1 | 3 | 4;
type Pixel = (x: number, y: number) => readonly number[];

function paint(width: number, height: number, channels: Channels, pixel: Pixel): Sharp {
  const data = Buffer.alloc(width * height * channels);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const value = pixel(x, y);
      for (let c = 0; c < channels; c++) {
        data[(y * width + x) * channels + c] = Math.round(value[c] ?? 0);
      }
    }
  }
  return sharp(data, { raw: { width, height, channels } });
}

/** Sky, ground, sun and a house: enough structure that a resize or rotation bug shows. */
function scene(width: number, height: number): Pixel {
  const horizon = height * 0.6;
  return (x, y) => {
    const sun = Math.hypot(x - width * 0.78, y - height * 0.22) < height * 0.1;
    const house = x > width * 0.2 && x < width * 0.42 && y > height * 0.45 && y < horizon;
    const roof =
      y <= height * 0.45 &&
      y > height * 0.3 &&
      Math.abs(x - width * 0.31) < (y - height * 0.3) * 0.9;
    if (sun) return [255, 215, 60];
    if (house) return [180, 40, 40];
    if (roof) return [90, 50, 30];
    if (y < horizon) return [90 + (y / horizon) * 100, 150 + (y / horizon) * 70, 235];
    const stripe = Math.floor((x + y) / 16) % 2 === 0 ? 0 : 25;
    return [40 + stripe, 120 + (y - horizon) * 0.3, 40];
  };
}

function jpegScene(width: number, height: number): Promise<Buffer> {
  return paint(width, height, 3, scene(width, height)).jpeg({ quality: 80 }).toBuffer();
}

async function save(path: string, data: Buffer | string): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, data);
  const size = typeof data === "string" ? Buffer.byteLength(data) : data.length;
  console.log(`${relative(root, path)}  ${size} bytes`);
}

/** A fixed linear congruential generator, so the "garbage" bytes never change. */
function garbage(length: number, seed: number): Buffer {
  const bytes = Buffer.alloc(length);
  let state = seed;
  for (let i = 0; i < length; i++) {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0;
    bytes[i] = state >>> 24;
  }
  return bytes;
}

/** Offset of the start-of-scan marker: everything before it is the JPEG header. */
function startOfScan(jpeg: Buffer): number {
  for (let i = 2; i < jpeg.length - 1; i++) {
    if (jpeg[i] === 0xff && jpeg[i + 1] === 0xda) return i;
  }
  throw new Error("no SOS marker in generated JPEG");
}

async function makeValid(): Promise<void> {
  const photo = await paint(640, 480, 3, scene(640, 480))
    .jpeg({ quality: 80 })
    .withExif({ IFD0: { Make: "FixtureCam", Model: "Model 1", Copyright: "caption fixtures" } })
    .toBuffer();
  await save(join(images, "photo.jpg"), photo);

  // Stored landscape with a red block top-left; orientation 6 displays it portrait, block top-right.
  const rotated = await paint(300, 200, 3, (x, y) =>
    x < 60 && y < 40 ? [230, 20, 20] : [40, 90 + y / 2, 160 + x / 4],
  )
    .jpeg({ quality: 80 })
    .withMetadata({ orientation: 6 })
    .toBuffer();
  await save(join(images, "rotated-exif.jpg"), rotated);

  // Left half fully transparent over black RGB: flattening wrongly would show black, not white.
  const alpha = await paint(160, 120, 4, (x, y) => {
    if (x < 80) return [0, 0, 0, 0];
    const inCircle = Math.hypot(x - 120, y - 60) < 30;
    return inCircle ? [30, 60, 200, 128] : [200, 120 + y / 2, 40, 255];
  })
    .png()
    .toBuffer();
  await save(join(images, "alpha.png"), alpha);

  const grey = await paint(128, 96, 1, (x, y) => [(Math.hypot(x - 64, y - 48) * 3) % 256])
    .png()
    .toBuffer();
  await save(join(images, "grey.png"), grey);

  // Frames are stacked vertically in one raw buffer; pageHeight splits them into red, green, blue.
  const frameColours = [
    [220, 30, 30],
    [30, 200, 30],
    [30, 30, 220],
  ];
  const frames = Buffer.alloc(64 * 48 * 3 * frameColours.length);
  for (let i = 0; i < frames.length; i += 3) {
    const frame = Math.floor(i / (64 * 48 * 3));
    frames.set(frameColours[frame] ?? [0, 0, 0], i);
  }
  const gif = await sharp(frames, {
    raw: { width: 64, height: 48 * 3, channels: 3, pageHeight: 48 },
  })
    .gif({ delay: [200, 200, 200], loop: 0 })
    .toBuffer();
  await save(join(images, "animated.gif"), gif);

  const webp = await paint(96, 72, 3, scene(96, 72)).webp({ quality: 80 }).toBuffer();
  await save(join(images, "small.webp"), webp);

  // A "scanned page": pale paper with dark text-like bars, greyscale, deflate-compressed.
  const scan = await paint(200, 150, 1, (x, y) => {
    const line = y > 20 && y < 130 && y % 14 < 5 && x > 20 && x < 180 - ((y * 7) % 50);
    return [line ? 40 : 235];
  })
    .tiff({ compression: "deflate", predictor: "horizontal" })
    .toBuffer();
  await save(join(images, "scan.tiff"), scan);

  await save(join(images, "UPPER.JPG"), await jpegScene(120, 90));
  const inner = await paint(64, 64, 3, (x, y) => [x * 4, y * 4, 128])
    .png()
    .toBuffer();
  await save(join(images, "nested", "deeper", "inner.png"), inner);
  await save(join(images, "names", 'comma, "quoted" and ünïcødé 🎉.jpg'), await jpegScene(80, 60));
  const spaced = await paint(80, 60, 3, scene(80, 60)).png().toBuffer();
  await save(join(images, "names", "space in name.png"), spaced);
}

async function makeBroken(): Promise<void> {
  const valid = await jpegScene(320, 240);
  await save(
    join(broken, "corrupt.jpg"),
    Buffer.concat([valid.subarray(0, startOfScan(valid)), garbage(2048, 20240601)]),
  );
  await save(join(broken, "truncated.jpg"), valid.subarray(0, Math.floor(valid.length / 2)));
  await save(
    join(broken, "not-an-image.png"),
    "This is a text file with a .png name, not an image.\n",
  );
  await save(join(broken, "empty.jpg"), Buffer.alloc(0));
}

await makeValid();
await makeBroken();
