import { open } from "node:fs/promises";

/** What the first bytes of a file say it is; `supported` means sharp should have decoded it. */
interface Sniffed {
  name: string;
  supported: boolean;
}

const HEADER_BYTES = 512;

const HEIC_BRANDS = new Set(["heic", "heix", "heim", "heis", "hevc", "hevx", "hevm", "hevs"]);

export async function readHeader(absPath: string): Promise<Buffer> {
  const handle = await open(absPath, "r");
  try {
    const buffer = Buffer.alloc(HEADER_BYTES);
    const { bytesRead } = await handle.read(buffer, 0, HEADER_BYTES, 0);
    return buffer.subarray(0, bytesRead);
  } finally {
    await handle.close();
  }
}

/** Names the format from its signature, so a broken JPEG is "corrupt" while a BMP is "unsupported". */
export function sniffFormat(header: Buffer): Sniffed | undefined {
  if (header.toString("latin1", 4, 8) === "ftyp") return sniffIsoMedia(header);
  const match = SIGNATURES.find((signature) => signature.test(header));
  return match && { name: match.name, supported: match.supported };
}

const bytesAt = (header: Buffer, offset: number, ...bytes: number[]) =>
  bytes.every((byte, i) => header[offset + i] === byte);
const textAt = (header: Buffer, offset: number, text: string) =>
  header.toString("latin1", offset, offset + text.length) === text;

const SIGNATURES: { name: string; supported: boolean; test: (header: Buffer) => boolean }[] = [
  { name: "JPEG", supported: true, test: (h) => bytesAt(h, 0, 0xff, 0xd8, 0xff) },
  { name: "PNG", supported: true, test: (h) => bytesAt(h, 0, 0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a) },
  { name: "GIF", supported: true, test: (h) => textAt(h, 0, "GIF87a") || textAt(h, 0, "GIF89a") },
  { name: "WebP", supported: true, test: (h) => textAt(h, 0, "RIFF") && textAt(h, 8, "WEBP") },
  {
    name: "TIFF",
    supported: true,
    // Classic (42) and BigTIFF (43), in either byte order.
    test: (h) =>
      textAt(h, 0, "II")
        ? [0x2a, 0x2b].includes(h[2] ?? 0) && h[3] === 0
        : textAt(h, 0, "MM") && h[2] === 0 && [0x2a, 0x2b].includes(h[3] ?? 0),
  },
  {
    name: "JPEG XL",
    supported: false,
    test: (h) => bytesAt(h, 0, 0xff, 0x0a) || textAt(h, 4, "JXL "),
  },
  {
    name: "JPEG 2000",
    supported: false,
    test: (h) => textAt(h, 4, "jP  ") || bytesAt(h, 0, 0xff, 0x4f, 0xff, 0x51),
  },
  { name: "Photoshop (PSD)", supported: false, test: (h) => textAt(h, 0, "8BPS") },
  { name: "PDF", supported: false, test: (h) => textAt(h, 0, "%PDF-") },
  {
    name: "BMP",
    supported: false,
    // "BM" alone is too weak; the DIB header size at offset 14 takes one of a few known values.
    test: (h) =>
      textAt(h, 0, "BM") &&
      h.length >= 18 &&
      [12, 40, 52, 56, 64, 108, 124].includes(h.readUInt32LE(14)),
  },
  {
    name: "ICO",
    supported: false,
    test: (h) => bytesAt(h, 0, 0x00, 0x00, 0x01, 0x00) && h.length >= 6 && h.readUInt16LE(4) > 0,
  },
  {
    name: "SVG",
    supported: false,
    test: (h) =>
      /^\s*(<\?xml[^>]*>\s*)?(<!--[\s\S]*?-->\s*)*(<!DOCTYPE svg[^>]*>\s*)?<svg[\s>]/i.test(
        h.toString("latin1"),
      ),
  },
];

/** HEIF and AVIF share the ISO media container; the brands tell the codec. */
function sniffIsoMedia(header: Buffer): Sniffed | undefined {
  if (header.length < 16) return undefined;
  const boxSize = Math.min(header.readUInt32BE(0), header.length);
  const brands: string[] = [header.toString("latin1", 8, 12)];
  for (let offset = 16; offset + 4 <= boxSize; offset += 4) {
    brands.push(header.toString("latin1", offset, offset + 4));
  }
  if (brands.some((brand) => brand === "avif" || brand === "avis"))
    return { name: "AVIF", supported: true };
  // A HEIF that is not AVIF is, in practice, HEVC: the one codec this sharp build lacks.
  if (brands.some((brand) => HEIC_BRANDS.has(brand) || brand === "mif1" || brand === "msf1")) {
    return { name: "HEIC", supported: false };
  }
  return undefined;
}
