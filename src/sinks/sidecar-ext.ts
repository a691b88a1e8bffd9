import { IMAGE_EXTENSIONS } from "../discover/extensions.js";

/**
 * Why `ext` cannot name a caption sidecar, or null: it must be a plain `.word`, and never the
 * extension of an image or of an XMP sidecar, which writing a caption there would destroy.
 */
export function sidecarExtProblem(ext: string): string | null {
  if (!/^\.[A-Za-z0-9_-]{1,16}$/.test(ext)) {
    return `"${ext}" is not an extension like .txt or .caption`;
  }
  const word = ext.slice(1).toLowerCase();
  if ((IMAGE_EXTENSIONS as readonly string[]).includes(word) || word === "xmp") {
    return `"${ext}" is the extension of images or XMP sidecars; captions would overwrite them`;
  }
  return null;
}
