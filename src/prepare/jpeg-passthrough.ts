import type { Metadata } from "sharp";

/**
 * Whether a JPEG can be sent as it is, without decoding: already within the budget, baseline
 * (every server's decoder reads it), 8-bit, sRGB or grey (no profile, or an sRGB one, which is what
 * a decoder assumes without one), and upright. Anything else is decoded and encoded again.
 */
export function sendableAsIs(
  metadata: Metadata,
  target: { width: number; height: number },
): boolean {
  return (
    metadata.format === "jpeg" &&
    target.width === metadata.width &&
    target.height === metadata.height &&
    !metadata.isProgressive &&
    metadata.depth === "uchar" &&
    (metadata.space === "srgb" || metadata.space === "b-w") &&
    (metadata.channels === 3 || metadata.channels === 1) &&
    (!metadata.hasProfile || isSrgbProfile(metadata.icc)) &&
    (metadata.orientation === undefined || metadata.orientation === 1) &&
    (metadata.pages ?? 1) === 1
  );
}

/**
 * An ICC profile that only says "sRGB" (as cameras and phones that shoot sRGB embed): its
 * description names it. Display P3, Adobe RGB and the like are converted by the decoding path.
 */
function isSrgbProfile(icc: Buffer | undefined): boolean {
  if (!icc || icc.length < 132) return false;
  const space = icc.toString("latin1", 16, 20);
  if (space !== "RGB " && space !== "GRAY") return false;
  const tags = icc.readUInt32BE(128);
  for (let i = 0; i < tags && 144 + i * 12 <= icc.length; i += 1) {
    const entry = 132 + i * 12;
    if (icc.toString("latin1", entry, entry + 4) !== "desc") continue;
    const start = icc.readUInt32BE(entry + 4);
    return /sRGB/.test(profileText(icc.subarray(start, start + icc.readUInt32BE(entry + 8))));
  }
  return false;
}

/** A profile's text tag: ASCII in ICC v2 ('desc'), UTF-16BE records in v4 ('mluc'). */
function profileText(tag: Buffer): string {
  if (tag.toString("latin1", 0, 4) !== "mluc" || tag.length < 16) return tag.toString("latin1");
  const records = tag.readUInt32BE(8);
  let text = "";
  for (let i = 0; i < records && 28 + i * 12 <= tag.length; i += 1) {
    const length = tag.readUInt32BE(20 + i * 12);
    const offset = tag.readUInt32BE(24 + i * 12);
    const found = tag.subarray(offset, offset + length);
    // swap16 needs whole code units; a torn last byte is dropped.
    text += Buffer.from(found.subarray(0, found.length - (found.length % 2)))
      .swap16()
      .toString("utf16le");
  }
  return text;
}

/**
 * The segment kept of an APPn or COM: JFIF's APP0 without its thumbnail (a thumbnail can show
 * what a crop cut away), and Adobe's APP14, which says whether the data is YCbCr. Null drops it.
 */
function keptApp(marker: number, segment: Uint8Array): Uint8Array | null {
  const id = Buffer.from(segment.subarray(4, 10)).toString("latin1");
  if (marker === 0xe0 && id.startsWith("JFIF\0") && segment.length >= 18) {
    const jfif = Buffer.from(segment.subarray(0, 18));
    jfif.writeUInt16BE(16, 2);
    jfif[16] = 0;
    jfif[17] = 0;
    return jfif;
  }
  if (marker === 0xee && id.startsWith("Adobe")) return segment;
  return null;
}

/** Frames every decoder reads: baseline (SOF0) and 8-bit extended Huffman (SOF1). */
function plainFrame(marker: number, segment: Uint8Array): boolean {
  return (marker === 0xc0 || marker === 0xc1) && segment[4] === 8;
}

/** SOF markers: C0–CF but DHT (C4), JPG (C8) and DAC (CC). */
function isFrame(marker: number): boolean {
  return marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc;
}

/**
 * The same JPEG without its metadata: EXIF (GPS, camera serials), XMP, IPTC, comments and every
 * other APPn segment but JFIF and Adobe, and without anything after the end of the image (phones
 * append depth maps and previews there). The compressed pixels are copied byte for byte, so
 * nothing is lost. Null when the file is not a single-scan JPEG this can walk safely (a truncated
 * file, say): the caller then decodes it, which reports what is wrong.
 */
export function stripJpegMetadata(bytes: Uint8Array): Buffer | null {
  if (bytes.length < 4 || bytes[0] !== 0xff || bytes[1] !== 0xd8) return null;
  const kept: Uint8Array[] = [bytes.subarray(0, 2)];
  let at = 2;
  let frames = 0;
  for (;;) {
    // Markers may be padded with any number of 0xFF bytes.
    if (bytes[at] !== 0xff) return null;
    while (bytes[at] === 0xff) at += 1;
    const marker = bytes[at];
    if (marker === undefined) return null;
    at += 1;
    // Standalone markers carry no length (TEM, RSTn); none belongs before the scan.
    if (marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) return null;
    if (marker === 0xd9) return null;
    const high = bytes[at];
    const low = bytes[at + 1];
    if (high === undefined || low === undefined) return null;
    const length = (high << 8) | low;
    const end = at + length;
    if (length < 2 || end > bytes.length) return null;
    const segment = bytes.subarray(at - 2, end);
    if (marker >= 0xe0 && marker <= 0xef) {
      const app = keptApp(marker, segment);
      if (app) kept.push(app);
    } else if (marker !== 0xfe) {
      // Arithmetic-coded, lossless, progressive or 12-bit frames: not every server decodes them.
      if (isFrame(marker) && !plainFrame(marker, segment)) return null;
      if (isFrame(marker)) frames += 1;
      kept.push(segment);
    }
    at = end;
    if (marker === 0xda) break;
  }
  if (frames !== 1) return null;
  // The entropy-coded scan runs to EOI; a 0xFF in it is followed by 0x00 (stuffing) or a restart
  // marker. Any other marker here means more than one scan, which is not walked.
  const scanStart = at;
  for (;;) {
    const next = bytes.indexOf(0xff, at);
    if (next === -1 || next + 1 >= bytes.length) return null;
    const following = bytes[next + 1] ?? 0;
    if (following === 0xd9) {
      kept.push(bytes.subarray(scanStart, next + 2));
      return Buffer.concat(kept);
    }
    if (following === 0x00 || following === 0xff || (following >= 0xd0 && following <= 0xd7)) {
      at = next + 1;
      continue;
    }
    return null;
  }
}
