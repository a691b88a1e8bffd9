import type { Stats } from "node:fs";
import { mkdir, stat } from "node:fs/promises";
import path from "node:path";

/**
 * Creates a folder and whichever of its parents are missing, one level at a time. Node's own
 * `mkdir(…, {recursive: true})` spins forever when a parent exists but refuses the child with
 * ENOENT, as /proc and /sys do; here every mkdir is a single call whose error is final.
 */
export async function ensureFolder(folder: string): Promise<void> {
  const missing: string[] = [];
  let current = path.resolve(folder);
  for (;;) {
    const stats = await statOrNull(current);
    if (stats?.isDirectory()) break;
    if (stats) throw errnoError("ENOTDIR", current);
    missing.push(current);
    const parent = path.dirname(current);
    if (parent === current) throw errnoError("ENOENT", current);
    current = parent;
  }
  for (const next of missing.reverse()) {
    try {
      await mkdir(next);
    } catch (error) {
      // Another run made it in between: that is what we wanted.
      if (errnoOf(error) === "EEXIST" && (await statOrNull(next))?.isDirectory()) continue;
      throw error;
    }
  }
}

/**
 * Why `file` cannot be used as an output we read, append to and lock, or null when it can: it
 * must not exist yet or be a regular file. Reading a FIFO or a device would block or never end.
 */
export async function outputFileProblem(file: string): Promise<string | null> {
  const stats = await statOrNull(file);
  if (stats === null || stats.isFile()) return null;
  return stats.isDirectory()
    ? "is a folder; name a file inside it instead"
    : "is not a regular file (a pipe, socket or device); name an ordinary file";
}

export async function statOrNull(file: string): Promise<Stats | null> {
  try {
    return await stat(file);
  } catch {
    return null;
  }
}

/** The inputs that are folders, as absolute paths, in the order given. */
export async function folderInputs(inputs: readonly string[], cwd: string): Promise<string[]> {
  const folders: string[] = [];
  for (const input of inputs) {
    const absolute = path.resolve(cwd, input);
    if ((await statOrNull(absolute))?.isDirectory() && !folders.includes(absolute)) {
      folders.push(absolute);
    }
  }
  return folders;
}

/** A path with `/` separators, as OUT, sidecar records and metadata files write them. */
export function toPosix(file: string): string {
  return path.sep === "/" ? file : file.split(path.sep).join("/");
}

/** The errno code of a failed filesystem call, or its message when it has none. */
export function errnoOf(error: unknown): string {
  const code = (error as NodeJS.ErrnoException | null)?.code;
  if (typeof code === "string") return code;
  return error instanceof Error ? error.message : String(error);
}

/** An errno code in words a user can act on, for messages that name a path. */
export function describeErrno(code: string): string {
  const words: Record<string, string> = {
    ENOENT: "no such file or folder, and this file system lets none be created there",
    EACCES: "permission denied",
    EPERM: "operation not permitted",
    EROFS: "read-only file system",
    ENOSPC: "no space left on the device",
    ENOTDIR: "a part of the path is a file, not a folder",
    EISDIR: "it is a folder",
    EDQUOT: "disk quota exceeded",
    ENAMETOOLONG: "a file name longer than the file system allows (255 bytes)",
    ESYMLINK: "it is a symlink, and the run never writes through one",
  };
  const text = words[code];
  return text ? `${code}: ${text}` : code;
}

function errnoError(code: string, file: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`${code}: ${file}`), { code, path: file });
}
