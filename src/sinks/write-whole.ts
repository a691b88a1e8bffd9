import { randomBytes } from "node:crypto";
import { chmod, readdir, realpath, rename, rm, stat, writeFile } from "node:fs/promises";
import path from "node:path";

/** The name of a temporary file of writeWhole: hidden, so discovery never takes it for an image. */
const TEMPORARY = /^\..+\.[0-9a-f]{8}\.tmp$/;

/**
 * A name beside `file` to write it under before the rename: hidden, so discovery never takes it
 * for an image, and of the shape removeStaleTemporaries sweeps.
 */
export function temporaryPath(file: string): string {
  return path.join(
    path.dirname(file),
    `.${path.basename(file)}.${randomBytes(4).toString("hex")}.tmp`,
  );
}

/**
 * Writes `file` to a temporary file beside it and renames that over it: a crash leaves the old
 * text or the new, never half. A file that exists keeps its permissions, and a symlink keeps
 * pointing where it did: it is its target that is replaced.
 */
export async function writeWhole(file: string, text: string): Promise<void> {
  const target = await realpath(file).catch(() => file);
  const mode = await stat(target).then(
    (info) => info.mode & 0o7777,
    () => null,
  );
  const temporary = temporaryPath(target);
  try {
    await writeFile(temporary, text, { flag: "wx" });
    if (mode !== null) await chmod(temporary, mode);
    await rename(temporary, target);
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
