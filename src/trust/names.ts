import path from "node:path";
import { CaptionError } from "../errors.js";

/**
 * The most bytes one name in a path may have: 255 on ext4, XFS, Btrfs, ZFS, APFS and NTFS (in
 * UTF-16 units there, never fewer bytes than UTF-8 needs for the names this tool makes).
 */
export const NAME_MAX_BYTES = 255;

/** The bytes a file name takes on disk (UTF-8), which is what the limit counts, not characters. */
export function nameBytes(name: string): number {
  return Buffer.byteLength(name, "utf8");
}

/**
 * At most `maxBytes` of `text` in UTF-8, cut between characters: a name borrowed into a longer one
 * (a temporary file's) never ends in half a character, which some file systems refuse.
 */
export function cutUtf8(text: string, maxBytes: number): string {
  if (nameBytes(text) <= maxBytes) return text;
  let bytes = 0;
  let end = 0;
  for (const char of text) {
    const size = nameBytes(char);
    if (bytes + size > maxBytes) break;
    bytes += size;
    end += char.length;
  }
  return text.slice(0, end);
}

/**
 * Why the file beside an image (`what`: "sidecar", "XMP sidecar") cannot exist under its name, as
 * the image's failure (`name_too_long`), or null when its name fits. Asked before anything is
 * sent, so that image fails alone and every other one, in this run and the next, goes on.
 */
export function nameTooLong(file: string, what: string): CaptionError | null {
  const name = path.basename(file);
  const bytes = nameBytes(name);
  if (bytes <= NAME_MAX_BYTES) return null;
  return new CaptionError(
    "name_too_long",
    `its ${what} would be named with ${bytes} bytes, over the ${NAME_MAX_BYTES} a file name may have; rename the image to a shorter name`,
  );
}
