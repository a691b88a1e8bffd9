import { randomBytes } from "node:crypto";
import { chmod, lstat, readdir, rename, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { symlinkRefused } from "../trust/links.js";
import { cutUtf8, NAME_MAX_BYTES, nameBytes } from "../trust/names.js";

/** The name of a temporary file of writeWhole: hidden, so discovery never takes it for an image. */
const TEMPORARY = /^\..+\.[0-9a-f]{8}\.tmp$/s;

/** What temporaryPath adds around the name it borrows: the dot, and `.<8 hex digits>.tmp`. */
const TEMPORARY_BYTES = nameBytes(`..${"0".repeat(8)}.tmp`);

/**
 * A name beside `file` to write it under before the rename: hidden, so discovery never takes it
 * for an image, and of the shape removeStaleTemporaries sweeps. It borrows `file`'s name, cut
 * (between characters) so the whole stays within the file system's 255 bytes however long that is.
 */
export function temporaryPath(file: string): string {
  const borrowed = cutUtf8(path.basename(file), NAME_MAX_BYTES - TEMPORARY_BYTES);
  return path.join(path.dirname(file), `.${borrowed}.${randomBytes(4).toString("hex")}.tmp`);
}

/**
 * Writes `file` to a temporary file beside it and renames that over it: a crash leaves the old
 * text or the new, never half. A file that exists keeps its permissions. A symlink is never
 * written through: its target could be anyone's file anywhere, so a link there is refused
 * (`ESYMLINK`) and left as it is (the rename itself would replace a link, never its target).
 */
export async function writeWhole(file: string, text: string): Promise<void> {
  const stats = await lstat(file).catch(() => null);
  if (stats?.isSymbolicLink()) throw symlinkRefused(file);
  const mode = stats?.isFile() ? stats.mode & 0o7777 : null;
  const temporary = temporaryPath(file);
  try {
    await writeFile(temporary, text, { flag: "wx" });
    if (mode !== null) await chmod(temporary, mode);
    await rename(temporary, file);
  } catch (error) {
    await rm(temporary, { force: true });
    throw error;
  }
}

/** Removes what writeWhole left behind in these folders when a run was killed mid-write. */
export async function removeStaleTemporaries(folders: Iterable<string>): Promise<void> {
  for (const folder of new Set(folders)) {
    const names = await readdir(folder).catch(() => []);
    for (const name of names) {
      if (TEMPORARY.test(name)) await rm(path.join(folder, name), { force: true });
    }
  }
}

/**
 * Removes what a killed run left while writing this one file through a temporary (its name
 * borrowed), and nothing of any other file's: another run may be writing its own beside it.
 */
export async function removeStaleTemporariesOf(file: string): Promise<void> {
  const shape = path.basename(temporaryPath(file));
  // `.<borrowed name>.` then the random part, as temporaryPath names it.
  const prefix = shape.slice(0, shape.length - `${"0".repeat(8)}.tmp`.length);
  const folder = path.dirname(file);
  const names = await readdir(folder).catch(() => []);
  for (const name of names) {
    if (name.startsWith(prefix) && name.length === shape.length && TEMPORARY.test(name)) {
      await rm(path.join(folder, name), { force: true });
    }
  }
}
