import { readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import sharp from "sharp";
import { describe, expect, it } from "vitest";
import { stripJpegMetadata } from "../../src/prepare/jpeg-passthrough.js";
import { prepareImage } from "../../src/prepare/prepare.js";
import { useWorkspace } from "../helpers/workspace.js";

const ws = useWorkspace();

const OPTIONS = { maxPixels: 1_806_336, imageFormat: "jpeg" as const };
const XMP =
  '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:creator>Jane Private</dc:creator></rdf:Description></rdf:RDF></x:xmpmeta>';

/** A camera-like JPEG: EXIF with a GPS position, XMP, a comment, and a trailer after its end. */
async function cameraJpeg(options: { progressive?: boolean; orientation?: number } = {}) {
  const pixels = await sharp({
    create: { width: 320, height: 200, channels: 3, background: { r: 30, g: 140, b: 200 } },
  })
    .composite([
      {
        input: Buffer.from(
          '<svg xmlns="http://www.w3.org/2000/svg" width="320" height="200"><circle cx="100" cy="90" r="60" fill="#e33"/><rect x="180" y="40" width="90" height="120" fill="#2a2"/></svg>',
        ),
      },
    ])
    .png()
    .toBuffer();
  const jpeg = await sharp(pixels)
    .jpeg({ quality: 85, progressive: options.progressive ?? false })
    .withExif({
      IFD0: { Make: "PhoneCo", Model: "Serial-12345" },
      IFD3: { GPSLatitudeRef: "N", GPSLatitude: "48/1 51/1 2400/100" },
    })
    .withXmp(XMP)
    .withMetadata(options.orientation ? { orientation: options.orientation } : {})
    .toBuffer();
  // A comment segment right after SOI, and bytes after EOI, as phones append.
  const comment = Buffer.from("my home address, 12 Private Lane");
  const com = Buffer.concat([
    Buffer.from([0xff, 0xfe, (comment.length + 2) >> 8, (comment.length + 2) & 0xff]),
    comment,
  ]);
  const file = Buffer.concat([
    jpeg.subarray(0, 2),
    com,
    jpeg.subarray(2),
    Buffer.from("TRAILER depth map"),
  ]);
  const where = path.join(ws.dir, "camera.jpg");
  await writeFile(where, file);
  return { file, where };
}

const sentBytes = (dataUrl: string) => Buffer.from(dataUrl.split(",")[1] ?? "", "base64");
const rawPixels = (input: Buffer) => sharp(input).raw().toBuffer();

describe("JPEG sent as it is", () => {
  it("sends a JPEG within the budget byte for byte in its pixels, with no EXIF, GPS, XMP, comment or trailer", async () => {
    const { file, where } = await cameraJpeg();
    expect((await sharp(file).metadata()).exif).toBeDefined();
    const prepared = await prepareImage(where, OPTIONS, await readFile(where));
    const sent = sentBytes(prepared.dataUrl);
    // The same compressed pixels: they decode to exactly the same values, no generation loss.
    expect((await rawPixels(sent)).equals(await rawPixels(file))).toBe(true);
    const metadata = await sharp(sent).metadata();
    expect(metadata.exif).toBeUndefined();
    expect(metadata.xmp).toBeUndefined();
    expect(metadata.comments ?? []).toEqual([]);
    const text = sent.toString("latin1");
    for (const secret of [
      "Exif",
      "PhoneCo",
      "Serial-12345",
      "Jane Private",
      "Private Lane",
      "TRAILER",
    ]) {
      expect(text).not.toContain(secret);
    }
    expect(sent.length).toBeLessThan(file.length);
    expect(prepared).toMatchObject({
      mime: "image/jpeg",
      width: 320,
      height: 200,
      bytes: sent.length,
    });
  });

  it("decodes and encodes again what it cannot send as it is: progressive, rotated, too large", async () => {
    const progressive = await cameraJpeg({ progressive: true });
    const fromProgressive = sentBytes((await prepareImage(progressive.where, OPTIONS)).dataUrl);
    expect((await sharp(fromProgressive).metadata()).isProgressive).toBe(false);
    expect(fromProgressive.toString("latin1")).not.toContain("Serial-12345");

    const rotated = await cameraJpeg({ orientation: 6 });
    const upright = await prepareImage(rotated.where, OPTIONS);
    expect([upright.width, upright.height]).toEqual([200, 320]);

    // A wide-gamut profile must be converted, not dropped.
    const p3 = path.join(ws.dir, "p3.jpg");
    await writeFile(p3, await sharp(rotated.file).rotate().withIccProfile("p3").jpeg().toBuffer());
    const fromP3 = sentBytes((await prepareImage(p3, OPTIONS)).dataUrl);
    expect(fromP3.equals(stripJpegMetadata(await readFile(p3)) ?? Buffer.alloc(0))).toBe(false);

    const large = await cameraJpeg();
    const shrunk = await prepareImage(large.where, { ...OPTIONS, maxPixels: 20_000 });
    expect(shrunk.width * shrunk.height).toBeLessThanOrEqual(20_000);
    expect(sentBytes(shrunk.dataUrl).toString("latin1")).not.toContain("PhoneCo");
  });

  it("keeps JFIF without its thumbnail, and drops other APP0 segments", async () => {
    const { file } = await cameraJpeg();
    // A JFIF APP0 with a 2×1 thumbnail ("SECRET" as its six RGB bytes), and a JFXX one.
    const jfif = Buffer.concat([
      Buffer.from([0xff, 0xe0, 0x00, 0x16]),
      Buffer.from("JFIF\0", "latin1"),
      Buffer.from([1, 2, 0, 0, 1, 0, 1, 2, 1]),
      Buffer.from("SECRET", "latin1"),
    ]);
    const jfxxText = Buffer.from("JFXX\0\x10THUMBJFXX", "latin1");
    const jfxx = Buffer.concat([Buffer.from([0xff, 0xe0, 0x00, jfxxText.length + 2]), jfxxText]);
    const withThumbs = Buffer.concat([file.subarray(0, 2), jfif, jfxx, file.subarray(2)]);
    const stripped = stripJpegMetadata(withThumbs);
    expect(stripped).not.toBeNull();
    const text = stripped?.toString("latin1") ?? "";
    expect(text).toContain("JFIF");
    expect(text).not.toContain("SECRET");
    expect(text).not.toContain("THUMBJFXX");
    expect((await rawPixels(stripped ?? Buffer.alloc(0))).equals(await rawPixels(file))).toBe(true);
  });

  it("walks only whole single-scan JPEGs, leaving the rest to the decoder", async () => {
    const { file } = await cameraJpeg();
    const stripped = stripJpegMetadata(file);
    expect(stripped?.subarray(-2)).toEqual(Buffer.from([0xff, 0xd9]));
    // Cut anywhere inside, the file has no end of image: not walked.
    for (const cut of [3, 100, Math.floor(file.length / 2), file.length - 40]) {
      expect(stripJpegMetadata(file.subarray(0, cut))).toBeNull();
    }
    expect(stripJpegMetadata(Buffer.from("not a jpeg"))).toBeNull();
    const progressive = await sharp(file).jpeg({ progressive: true }).toBuffer();
    expect(stripJpegMetadata(progressive)).toBeNull();
  });
});
