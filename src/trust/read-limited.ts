import { closeSync, constants, fstatSync, openSync, readSync, type Stats } from "node:fs";
import { type FileHandle, open } from "node:fs/promises";
import { formatCap } from "./text.js";

/**
 * The most read of a file the user names for the run to read (`--prompt-file`, `--config`,
 * `--json-schema`): a prompt, a settings file or a schema is a few KB, and a name that points at a
 * device or a 10 GB log must not fill memory before anything is checked.
 */
export const NAMED_FILE_CAP = 1024 * 1024;

export type LimitedRead =
  | { ok: true; text: string }
  | {
      ok: false;
      /** `not_regular`: a folder, FIFO, device or socket; `too_large`: past the cap; else errno. */
      reason: "not_regular" | "too_large" | "unreadable";
      /** What is wrong, to follow the file's name: "not a regular file (a character device)". */
      problem: string;
      /** The system's code when it could not be opened or read (ENOENT, EACCES). */
      errno: string | null;
    };

/**
 * Opening does not block on a FIFO with no writer (it would, for good, without O_NONBLOCK); the
 * file is then refused by what fstat says it is. Windows has no such flag, nor FIFOs to fear.
 */
const OPEN_FLAGS = constants.O_RDONLY | (constants.O_NONBLOCK ?? 0);

/**
 * A file's text when it is a regular file (a symlink to one is followed: the user named it) of at
 * most `cap` bytes. Never reads more than `cap + 1` bytes, so a device or a huge file costs
 * nothing; the size fstat gives is not trusted alone (a /proc file says 0, a log may grow).
 */
export function readLimitedSync(file: string, cap: number = NAMED_FILE_CAP): LimitedRead {
  let fd: number;
  try {
    fd = openSync(file, OPEN_FLAGS);
  } catch (error) {
    return unreadable(error);
  }
  try {
    const refused = refusal(fstatSync(fd), cap);
    if (refused) return refused;
    const buffer = Buffer.allocUnsafe(cap + 1);
    let length = 0;
    while (length <= cap) {
      const read = readSync(fd, buffer, length, buffer.length - length, null);
      if (read === 0) break;
      length += read;
    }
    return decoded(buffer, length, cap);
  } catch (error) {
    return unreadable(error);
  } finally {
    closeSync(fd);
  }
}

/** readLimitedSync without blocking the event loop. */
export async function readLimited(
  file: string,
  cap: number = NAMED_FILE_CAP,
): Promise<LimitedRead> {
  let handle: Awaited<ReturnType<typeof open>>;
  try {
    handle = await open(file, OPEN_FLAGS);
  } catch (error) {
    return unreadable(error);
  }
  try {
    const refused = refusal(await handle.stat(), cap);
    if (refused) return refused;
    const buffer = Buffer.allocUnsafe(cap + 1);
    let length = 0;
    while (length <= cap) {
      const { bytesRead } = await handle.read(buffer, length, buffer.length - length, null);
      if (bytesRead === 0) break;
      length += bytesRead;
    }
    return decoded(buffer, length, cap);
  } catch (error) {
    return unreadable(error);
  } finally {
    await handle.close();
  }
}

function refusal(stats: Stats, cap: number): LimitedRead | null {
  if (!stats.isFile()) {
    return {
      ok: false,
      reason: "not_regular",
      problem: `not a regular file (${kindOf(stats)})`,
      errno: null,
    };
  }
  return stats.size > cap ? tooLarge(cap) : null;
}

function decoded(buffer: Buffer, length: number, cap: number): LimitedRead {
  if (length > cap) return tooLarge(cap);
  return { ok: true, text: buffer.toString("utf8", 0, length) };
}

function tooLarge(cap: number): LimitedRead {
  return {
    ok: false,
    reason: "too_large",
    problem: `larger than ${formatCap(cap)}, the most read of a file named for a prompt, settings or a schema`,
    errno: null,
  };
}

function unreadable(error: unknown): LimitedRead {
  const code = (error as NodeJS.ErrnoException | null)?.code;
  const errno = typeof code === "string" ? code : null;
  return {
    ok: false,
    reason: "unreadable",
    problem: errno === "ENOENT" ? "no such file" : (errno ?? String(error)),
    errno,
  };
}

function kindOf(stats: Stats): string {
  if (stats.isDirectory()) return "a folder";
  if (stats.isFIFO()) return "a named pipe";
  if (stats.isCharacterDevice()) return "a character device";
  if (stats.isBlockDevice()) return "a block device";
  if (stats.isSocket()) return "a socket";
  return "not a file";
}

/**
 * Opens a file to read when it is a regular file, without blocking on a FIFO (a pipe named
 * `x.tar` in someone else's folder would otherwise hold the run for good). Throws an error with
 * code `ENOTREG` for anything else, after closing it.
 */
export async function openRegularFile(file: string): Promise<FileHandle> {
  const handle = await open(file, OPEN_FLAGS);
  if (!(await handle.stat()).isFile()) {
    await handle.close();
    throw Object.assign(new Error(`${file} is not a regular file`), { code: "ENOTREG" });
  }
  return handle;
}
