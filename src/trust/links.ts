import { constants } from "node:fs";
import { lstat, open, readdir } from "node:fs/promises";
import path from "node:path";
import { errnoOf } from "../util/folders.js";

/**
 * Where a run follows symlinks and where it does not, decided here once for every stage. A
 * folder input is the user's; a link in it may lead anywhere, so discovery follows none out of it
 * (unless `followSymlinks` says to), and what the run writes or reads as text beside an image is
 * never reached through a link. An image's pixels are still read through a file link: a Hugging
 * Face snapshot is nothing but links into its `blobs/`, and reading pixels is not the risk.
 */

/** Whether `file` is `folder` itself or lies inside it; both absolute, and both real or both not. */
export function isWithin(file: string, folder: string): boolean {
  const relative = path.relative(folder, file);
  return (
    relative === "" ||
    (relative !== ".." && !relative.startsWith(`..${path.sep}`) && !path.isAbsolute(relative))
  );
}

/**
 * What discovery does with a symlink to a folder, from real paths: `walked` when it leads into a
 * folder walked already (or about to be: the input it is in), `loop` when it leads back to the
 * folder it is in or one above (never followed, whatever the flags), `outside` when it leads out
 * of the input (not followed), `follow` for the same with `followSymlinks`.
 */
export type FolderLinkVerdict = "walked" | "loop" | "outside" | "follow";

export function folderLinkVerdict(
  link: {
    /** The real path the link resolves to. */
    target: string;
    /** The real path of the folder the link sits in. */
    folder: string;
  },
  walked: readonly string[],
  followSymlinks: boolean,
): FolderLinkVerdict {
  if (walked.some((root) => isWithin(link.target, root))) return "walked";
  if (isWithin(link.folder, link.target)) return "loop";
  return followSymlinks ? "follow" : "outside";
}

/**
 * A file the run keeps beside an image (a caption sidecar, an XMP sidecar), as it stands: missing
 * (to be created), a regular file of its own (to be kept, merged or replaced), or one it does not
 * own: a symlink, whose target may be anyone's file anywhere, or something that is not a regular
 * file. Those are left as they are, never read, never written.
 */
export type BesideFile = "missing" | "file" | "symlink" | "special";

export async function besideFile(file: string): Promise<BesideFile> {
  try {
    const stats = await lstat(file);
    if (stats.isSymbolicLink()) return "symlink";
    return stats.isFile() ? "file" : "special";
  } catch {
    // Missing, or its folder cannot be searched: writing it then says why.
    return "missing";
  }
}

/**
 * besideFile for many files at once, by listing each folder once (the kind of each entry comes
 * with its name) instead of a call per file: a run's start stays as fast with 100k images as
 * before anything was checked. A folder that cannot be listed is asked file by file.
 */
export async function besideFiles(files: Iterable<string>): Promise<Map<string, BesideFile>> {
  /** Folder → name in it → the file as given. */
  const byFolder = new Map<string, Map<string, string>>();
  for (const file of files) {
    const folder = path.dirname(file);
    let names = byFolder.get(folder);
    if (!names) {
      names = new Map();
      byFolder.set(folder, names);
    }
    names.set(path.basename(file), file);
  }
  const states = new Map<string, BesideFile>();
  for (const [folder, names] of byFolder) {
    const entries = await readdir(folder, { withFileTypes: true }).catch(() => null);
    if (entries === null) {
      for (const file of names.values()) states.set(file, await besideFile(file));
      continue;
    }
    for (const entry of entries) {
      const file = names.get(entry.name);
      if (file === undefined) continue;
      states.set(file, entry.isSymbolicLink() ? "symlink" : entry.isFile() ? "file" : "special");
    }
  }
  return states;
}

/** The error of a write refused because the file it would replace is a symlink. */
export function symlinkRefused(file: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`${file} is a symlink; the run never writes through one`), {
    code: "ESYMLINK",
    path: file,
  });
}

/** Opened without following a link at the last step, and without blocking on a pipe. */
const NO_FOLLOW = constants.O_RDONLY | (constants.O_NOFOLLOW ?? 0) | (constants.O_NONBLOCK ?? 0);

/** A file read as text by `readNoFollow`, or why it was not. */
export type NoFollowRead =
  | { kind: "text"; text: string }
  | { kind: "missing" }
  | { kind: "symlink" }
  | { kind: "special" }
  | { kind: "too_large"; bytes: number };

/**
 * The text of a regular file, read without following a symlink (the check and the read are one
 * call: a link put there in between is refused, not followed) and up to `limit` bytes when given.
 * Other failures (permissions) throw.
 */
export async function readNoFollow(file: string, limit?: number): Promise<NoFollowRead> {
  let handle: Awaited<ReturnType<typeof open>>;
  try {
    handle = await open(file, NO_FOLLOW);
  } catch (error) {
    const code = errnoOf(error);
    if (code === "ENOENT" || code === "ENOTDIR") return { kind: "missing" };
    // Linux and macOS say ELOOP for a link under O_NOFOLLOW, FreeBSD EMLINK.
    if (code === "ELOOP" || code === "EMLINK") return { kind: "symlink" };
    throw error;
  }
  try {
    const stats = await handle.stat();
    if (!stats.isFile()) return { kind: "special" };
    if (limit !== undefined && stats.size > limit) return { kind: "too_large", bytes: stats.size };
    if (limit === undefined) return { kind: "text", text: await handle.readFile("utf8") };
    // One byte more than the stat said, to see a file that grew past the limit since.
    const buffer = Buffer.alloc(Math.min(limit, stats.size) + 1);
    let filled = 0;
    while (filled < buffer.length) {
      const { bytesRead } = await handle.read(buffer, filled, buffer.length - filled, null);
      if (bytesRead === 0) break;
      filled += bytesRead;
    }
    if (filled > limit) return { kind: "too_large", bytes: filled };
    return { kind: "text", text: buffer.toString("utf8", 0, filled) };
  } finally {
    await handle.close();
  }
}

/** The most of a caption sidecar read to append or prepend to it: a caption is a line. */
export const SIDECAR_READ_LIMIT = 1024 * 1024;
/** The most of an XMP sidecar read to merge into it: a packet with a preview is a few MiB. */
export const XMP_READ_LIMIT = 16 * 1024 * 1024;

/** The error of a file beside an image too large to read whole (someone else's, gone wrong). */
export class TooLargeToReadError extends Error {
  readonly code = "ETOOLARGE";
  constructor(
    readonly file: string,
    readonly bytes: number,
    readonly limit: number,
  ) {
    super(`${file} holds ${bytes} bytes, more than the ${limit} read of such a file`);
  }
}

/**
 * The text of a file the run owns beside an image, for merging, up to `limit` bytes: null when it
 * is missing or not a regular file; a symlink (put there since the run looked) is refused, so
 * nothing is merged from or written through it; a larger file is refused, not read.
 */
export async function readOwnedText(file: string, limit: number): Promise<string | null> {
  const read = await readNoFollow(file, limit);
  if (read.kind === "symlink") throw symlinkRefused(file);
  if (read.kind === "too_large") throw new TooLargeToReadError(file, read.bytes, limit);
  return read.kind === "text" ? read.text : null;
}

/**
 * Why the record a run keeps without `-o` (`.caption/` in the first folder input: OUT, its errors
 * file) cannot be kept there, or null: the folder is the user's (or someone else's), so the hidden
 * folder or a file in it that is a symlink would have the run write wherever it leads.
 */
export async function recordFolderProblem(paths: readonly string[]): Promise<string | null> {
  for (const entry of paths) {
    if ((await besideFile(entry)) === "symlink") {
      return `${entry} is a symlink, and the run keeps its record only in a folder and files of its own: remove the link, or name OUT with -o`;
    }
  }
  return null;
}
