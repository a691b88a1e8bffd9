import { mkdir, readdir, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import sharp from "sharp";
import { describe, expect, it } from "vitest";
import { ImageError } from "../../src/errors.js";
import { prepareImage, targetSize } from "../../src/prepare/prepare.js";
import { sniffFormat } from "../../src/prepare/sniff-format.js";
import type { PreparedImage, PrepareOptions } from "../../src/types.js";
import { decompressionBomb, makeUnreadableFile } from "../helpers/hostile-files.js";
import { useWorkspace } from "../helpers/workspace.js";

const BUDGET = 1_806_336;
const fixtures = fileURLToPath(new URL("../../fixtures/", import.meta.url));
const images = join(fixtures, "images");
const broken = join(fixtures, "broken");
const jpeg: PrepareOptions = { maxPixels: BUDGET, imageFormat: "jpeg" };
const png: PrepareOptions = { maxPixels: BUDGET, imageFormat: "png" };

const ws = useWorkspace({ scope: "all", prefix: "caption-prepare-" });

/** Decodes what would be sent, so tests check the bytes rather than the returned claims. */
async function decode(prepared: PreparedImage) {
  const match = /^data:(image\/(?:jpeg|png));base64,([A-Za-z0-9+/]+=*)$/.exec(prepared.dataUrl);
  if (!match?.[2]) throw new Error(`not a plain base64 data URL: ${prepared.dataUrl.slice(0, 60)}`);
  expect(match[1]).toBe(prepared.mime);
  const bytes = Buffer.from(match[2], "base64");
  expect(bytes.length).toBe(prepared.bytes);
  const metadata = await sharp(bytes).metadata();
  const { data, info } = await sharp(bytes).raw().toBuffer({ resolveWithObject: true });
  const pixel = (x: number, y: number) =>
    Array.from(
      data.subarray((y * info.width + x) * info.channels, (y * info.width + x + 1) * info.channels),
    );
  return { metadata, pixel };
}

async function expectImageError(promise: Promise<unknown>, code: string, path: string) {
  const error = await promise.then(
    () => {
      throw new Error(`expected ImageError ${code}, but the image was prepared`);
    },
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(ImageError);
  if (!(error instanceof ImageError)) throw error;
  expect(error.code).toBe(code);
  // The path is the errors-file row's own column; the message says what is wrong with it.
  expect(error.message).not.toContain(path);
  expect(error.message).toMatch(/^the file /);
  return error;
}

describe("targetSize", () => {
  it.each([
    { name: "fits", size: [640, 480], max: BUDGET, side: undefined, want: [640, 480] },
    {
      name: "exactly the budget",
      size: [1344, 1344],
      max: BUDGET,
      side: undefined,
      want: [1344, 1344],
    },
    { name: "4000×3000", size: [4000, 3000], max: BUDGET, side: undefined, want: [1551, 1163] },
    { name: "maxSide binds", size: [4000, 3000], max: BUDGET, side: 1000, want: [1000, 750] },
    {
      name: "maxSide on a small image",
      size: [800, 600],
      max: BUDGET,
      side: 400,
      want: [400, 300],
    },
    { name: "tiny", size: [1, 1], max: BUDGET, side: undefined, want: [1, 1] },
    { name: "never upscales", size: [100, 50], max: 10_000_000, side: 5000, want: [100, 50] },
    {
      name: "thin side held at 1 px",
      size: [1_000_000, 1],
      max: 100,
      side: undefined,
      want: [100, 1],
    },
  ])("$name", ({ size: [w = 0, h = 0], max, side, want }) => {
    expect(targetSize(w, h, max, side)).toEqual({ width: want[0], height: want[1] });
  });

  it("keeps every bound and the aspect ratio on a spread of sizes", () => {
    const sizes = [
      [4000, 3000],
      [20000, 200],
      [200, 20000],
      [3840, 2160],
      [12000, 9000],
      [8000, 1000],
      [1345, 1344],
      [99999, 3],
    ];
    for (const [w = 0, h = 0] of sizes) {
      for (const side of [undefined, 2048, 500]) {
        const out = targetSize(w, h, BUDGET, side);
        expect(out.width * out.height).toBeLessThanOrEqual(BUDGET);
        expect(Math.max(out.width, out.height)).toBeLessThanOrEqual(
          side ?? Number.POSITIVE_INFINITY,
        );
        expect(out.width).toBeLessThanOrEqual(w);
        expect(out.height).toBeLessThanOrEqual(h);
        expect(Math.min(out.width, out.height)).toBeGreaterThanOrEqual(1);
        // The short side follows from the long one; measured the other way, one pixel of rounding
        // on the short side would look like many on the long side.
        if (Math.min(out.width, out.height) > 1) {
          const drift =
            w >= h ? (out.width * h) / w - out.height : (out.height * w) / h - out.width;
          expect(Math.abs(drift)).toBeLessThanOrEqual(1);
        }
      }
    }
  });

  it("handles a 20000×200 panorama", () => {
    const out = targetSize(20000, 200, BUDGET);
    expect(out).toEqual({ width: 13440, height: 134 });
  });

  it.each([
    [0, 10, BUDGET, undefined],
    [10, 1.5, BUDGET, undefined],
    [10, 10, 0, undefined],
    [10, 10, Number.NaN, undefined],
    [10, 10, BUDGET, 0],
  ])("rejects targetSize(%s, %s, %s, %s)", (w, h, max, side) => {
    expect(() => targetSize(w, h, max, side)).toThrow(RangeError);
  });
});

describe("sniffFormat", () => {
  const ftyp = (...brands: string[]) => {
    const box = Buffer.concat([
      Buffer.alloc(4),
      Buffer.from(`ftyp${brands[0]}\0\0\0\0${brands.slice(1).join("")}`, "latin1"),
    ]);
    box.writeUInt32BE(box.length);
    return box;
  };
  it.each([
    ["JPEG", Buffer.from([0xff, 0xd8, 0xff, 0xe0]), true],
    ["TIFF", Buffer.from("MM\0*\0\0\0\x08", "latin1"), true],
    ["TIFF", Buffer.from("II+\0\x08\0\0\0", "latin1"), true],
    ["AVIF", ftyp("avif", "mif1", "miaf"), true],
    ["AVIF", ftyp("mif1", "avif"), true],
    ["HEIC", ftyp("heic", "mif1", "heic"), false],
    ["PDF", Buffer.from("%PDF-1.7\n", "latin1"), false],
    ["SVG", Buffer.from('<?xml version="1.0"?>\n<!-- logo -->\n<svg xmlns="x">', "latin1"), false],
  ])("%s", (name, header, supported) => {
    expect(sniffFormat(header)).toEqual({ name, supported });
  });

  it.each([
    ["text", Buffer.from("hello, world\n", "latin1")],
    ["an MP4 video", ftyp("isom", "mp42")],
    ["two bytes", Buffer.from("BM", "latin1")],
    ["nothing", Buffer.alloc(0)],
  ])("does not name %s", (_name, header) => {
    expect(sniffFormat(header)).toBeUndefined();
  });
});

describe("prepareImage", () => {
  it("shrinks a 4000×3000 JPEG under the pixel budget and encodes exactly the returned size", async () => {
    const path = join(ws.dir, "big.jpg");
    await sharp({ create: { width: 40, height: 30, channels: 3, background: "#808080" } })
      .composite([
        { input: { create: { width: 20, height: 15, channels: 3, background: "#c03020" } } },
      ])
      .resize(4000, 3000, { kernel: "nearest" })
      .jpeg()
      .toFile(path);

    const prepared = await prepareImage(path, jpeg);
    expect(prepared.width * prepared.height).toBeLessThanOrEqual(BUDGET);
    expect(Math.abs((prepared.width * 3) / 4 - prepared.height)).toBeLessThanOrEqual(1);
    expect(prepared.mime).toBe("image/jpeg");
    expect(prepared.dataUrl).not.toMatch(/\s/);
    const { metadata } = await decode(prepared);
    expect(metadata.format).toBe("jpeg");
    expect([metadata.width, metadata.height]).toEqual([prepared.width, prepared.height]);
  });

  it("gives a program a plain object: spread, JSON and a structured clone keep the data URL", async () => {
    const path = join(ws.dir, "plain.jpg");
    await sharp({ create: { width: 64, height: 48, channels: 3, background: "#336699" } })
      .jpeg()
      .toFile(path);
    const prepared = await prepareImage(path, jpeg);
    const url = prepared.dataUrl;
    expect({ ...prepared }.dataUrl).toBe(url);
    expect(structuredClone(prepared).dataUrl).toBe(url);
    const json = JSON.parse(JSON.stringify(prepared));
    expect(json.dataUrl).toBe(url);
    // The bytes themselves are not listed: JSON would spell each one out.
    expect(json.data).toBeUndefined();
    expect(
      Buffer.from(url.split(",")[1] ?? "", "base64").equals(prepared.data ?? Buffer.alloc(0)),
    ).toBe(true);
    prepared.dataUrl = "data:image/jpeg;base64,AAAA";
    expect(prepared.dataUrl).toBe("data:image/jpeg;base64,AAAA");
  });

  it("honours maxSide", async () => {
    const prepared = await prepareImage(join(images, "photo.jpg"), { ...jpeg, maxSide: 320 });
    expect([prepared.width, prepared.height]).toEqual([320, 240]);
  });

  it("leaves an image that fits at its own size and strips its EXIF", async () => {
    const path = join(images, "photo.jpg");
    expect((await sharp(path).metadata()).exif).toBeDefined();
    const prepared = await prepareImage(path, jpeg);
    expect([prepared.width, prepared.height]).toEqual([640, 480]);
    const { metadata } = await decode(prepared);
    expect(metadata.exif).toBeUndefined();
    expect(metadata.icc).toBeUndefined();
    expect(metadata.xmp).toBeUndefined();
  });

  it("applies EXIF orientation to the pixels and the dimensions", async () => {
    const prepared = await prepareImage(join(images, "rotated-exif.jpg"), jpeg);
    expect([prepared.width, prepared.height]).toEqual([200, 300]);
    const { metadata, pixel } = await decode(prepared);
    expect(metadata.orientation).toBeUndefined();
    expect(metadata.exif).toBeUndefined();
    // Orientation 6 turns the stored top-left corner into the top-right one.
    const [r = 0, g = 0, b = 0] = pixel(190, 10);
    expect(r).toBeGreaterThan(180);
    expect(Math.max(g, b)).toBeLessThan(80);
  });

  it.each([
    ["jpeg", jpeg],
    ["png", png],
  ] as const)("flattens transparency onto white (%s)", async (_name, options) => {
    const prepared = await prepareImage(join(images, "alpha.png"), options);
    const { metadata, pixel } = await decode(prepared);
    expect(metadata.hasAlpha).toBe(false);
    expect(metadata.channels).toBe(3);
    for (const value of pixel(20, 60)) expect(value).toBeGreaterThanOrEqual(250);
  });

  it("sends only the first frame of an animated GIF", async () => {
    const path = join(images, "animated.gif");
    expect((await sharp(path).metadata()).pages).toBe(3);
    const prepared = await prepareImage(path, png);
    expect([prepared.width, prepared.height]).toEqual([64, 48]);
    const { metadata, pixel } = await decode(prepared);
    expect(metadata.pages).toBeUndefined();
    const [r = 0, g = 0] = pixel(32, 24);
    expect(r).toBeGreaterThan(180);
    expect(g).toBeLessThan(80);
  });

  it("encodes PNG when asked, as 8-bit sRGB", async () => {
    const prepared = await prepareImage(join(images, "grey.png"), png);
    expect(prepared.mime).toBe("image/png");
    expect(prepared.dataUrl.startsWith("data:image/png;base64,")).toBe(true);
    const { metadata } = await decode(prepared);
    expect(metadata.format).toBe("png");
    expect(metadata.depth).toBe("uchar");
    expect(metadata.space).toBe("srgb");
  });

  it("converts a CMYK JPEG to sRGB with its colours intact", async () => {
    const path = join(ws.dir, "cmyk.jpg");
    await sharp({ create: { width: 64, height: 48, channels: 3, background: "#3080c0" } })
      .toColourspace("cmyk")
      .jpeg()
      .toFile(path);
    expect((await sharp(path).metadata()).space).toBe("cmyk");
    const { metadata, pixel } = await decode(await prepareImage(path, jpeg));
    expect(metadata.space).toBe("srgb");
    expect(metadata.channels).toBe(3);
    const [r = 0, g = 0, b = 0] = pixel(32, 24);
    expect(Math.abs(r - 0x30)).toBeLessThan(40);
    expect(Math.abs(g - 0x80)).toBeLessThan(40);
    expect(Math.abs(b - 0xc0)).toBeLessThan(40);
  });

  it("reduces a 16-bit PNG with alpha to 8-bit opaque output", async () => {
    const path = join(ws.dir, "deep.png");
    await sharp({
      create: { width: 64, height: 48, channels: 4, background: { r: 0, g: 0, b: 0, alpha: 0 } },
    })
      .toColourspace("rgb16")
      .png()
      .toFile(path);
    expect((await sharp(path).metadata()).depth).toBe("ushort");
    for (const options of [jpeg, png]) {
      const { metadata, pixel } = await decode(await prepareImage(path, options));
      expect(metadata.depth).toBe("uchar");
      expect(metadata.hasAlpha).toBe(false);
      for (const value of pixel(10, 10)) expect(value).toBeGreaterThanOrEqual(250);
    }
  });

  it("prepares every file in fixtures/images", async () => {
    const entries = await readdir(images, { recursive: true, withFileTypes: true });
    const files = entries
      .filter((entry) => entry.isFile())
      .map((entry) => join(entry.parentPath, entry.name));
    expect(files.length).toBeGreaterThanOrEqual(11);
    for (const file of files) {
      const prepared = await prepareImage(file, jpeg);
      const { metadata } = await decode(prepared);
      expect([metadata.width, metadata.height]).toEqual([prepared.width, prepared.height]);
    }
  });

  describe("failures", () => {
    it.each([
      ["corrupt.jpg", "corrupt_image"],
      ["truncated.jpg", "corrupt_image"],
      ["not-an-image.png", "unsupported_format"],
      ["empty.jpg", "empty_file"],
    ])("%s → %s", async (name, code) => {
      const path = join(broken, name);
      await expectImageError(prepareImage(path, jpeg), code, path);
    });

    it("keeps the sharp error as the cause and a short detail in the message", async () => {
      const path = join(broken, "truncated.jpg");
      const error = await expectImageError(prepareImage(path, jpeg), "corrupt_image", path);
      expect(error.cause).toBeInstanceOf(Error);
      expect(error.message).toMatch(/ends early/);
    });

    it("a directory → not_a_file", async () => {
      const path = join(ws.dir, "folder.jpg");
      await mkdir(path, { recursive: true });
      await expectImageError(prepareImage(path, jpeg), "not_a_file", path);
    });

    it("a missing file → file_missing", async () => {
      const path = join(ws.dir, "gone.jpg");
      await expectImageError(prepareImage(path, jpeg), "file_missing", path);
    });

    it("a dangling symbolic link → file_missing", async () => {
      const path = join(ws.dir, "dangling.jpg");
      await symlink(join(ws.dir, "nowhere.jpg"), path);
      const error = await expectImageError(prepareImage(path, jpeg), "file_missing", path);
      expect(error.message).toMatch(/symbolic link/);
    });

    it("an unreadable file → permission_denied, even when the tests run as root", async () => {
      const path = join(ws.dir, "locked.jpg");
      await makeUnreadableFile(path, "x");
      await expectImageError(prepareImage(path, jpeg), "permission_denied", path);
    });

    it("a decompression bomb → image_too_large, judged from its header without decoding it", async () => {
      const path = join(ws.dir, "bomb.png");
      // Only the first row of pixels is there: decoding would fail on the rest, as corrupt_image.
      await writeFile(path, decompressionBomb(1));
      const error = await expectImageError(prepareImage(path, jpeg), "image_too_large", path);
      expect(error.message).toContain("20000×20000");
      expect(error.message).toContain("decompression bomb");
      expect(error.message).toContain("268,402,689");
    });

    it("an SVG → unsupported_format, saying why", async () => {
      const path = join(ws.dir, "logo.svg");
      await writeFile(
        path,
        '<svg xmlns="http://www.w3.org/2000/svg" width="40" height="40"><rect width="40" height="40" fill="red"/></svg>',
      );
      const error = await expectImageError(prepareImage(path, jpeg), "unsupported_format", path);
      expect(error.message).toMatch(/SVG/);
      expect(error.message).toMatch(/PNG/);
    });

    it("a HEIC file → unsupported_format, with the conversion advice", async () => {
      const path = join(ws.dir, "phone.heic");
      const ftyp = Buffer.concat([
        Buffer.from([0, 0, 0, 0x18]),
        Buffer.from("ftypheic", "latin1"),
        Buffer.alloc(4),
        Buffer.from("mif1heic", "latin1"),
      ]);
      await writeFile(path, Buffer.concat([ftyp, Buffer.alloc(200, 7)]));
      const error = await expectImageError(prepareImage(path, jpeg), "unsupported_format", path);
      expect(error.message).toMatch(/HEIC/);
      expect(error.message).toMatch(/convert it to JPEG/);
    });

    it("a BMP → unsupported_format naming BMP", async () => {
      const path = join(ws.dir, "old.bmp");
      const header = Buffer.alloc(54);
      header.write("BM", 0, "latin1");
      header.writeUInt32LE(14 + 40, 10);
      header.writeUInt32LE(40, 14);
      await writeFile(path, header);
      const error = await expectImageError(prepareImage(path, jpeg), "unsupported_format", path);
      expect(error.message).toMatch(/BMP/);
    });

    it("rejects invalid options with RangeError, before touching the file", async () => {
      const path = join(images, "photo.jpg");
      await expect(prepareImage(path, { ...jpeg, quality: 0 })).rejects.toThrow(RangeError);
      await expect(prepareImage(path, { ...jpeg, maxPixels: 0 })).rejects.toThrow(RangeError);
    });
  });
});
