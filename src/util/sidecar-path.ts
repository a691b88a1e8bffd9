import path from "node:path";

/**
 * The file beside an image that shares its stem: `photo.jpg` → `photo.txt`. What a sidecar is
 * written to, and what a prompt's `{existing}` reads.
 */
export function sidecarPath(imagePath: string, ext: string): string {
  const dir = path.dirname(imagePath);
  return path.join(dir, `${path.basename(imagePath, path.extname(imagePath))}${ext}`);
}
