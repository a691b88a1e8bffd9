import { readSync } from "node:fs";
import { CaptionError } from "../errors.js";
import { openRegularFile } from "../trust/read-limited.js";

/** What a member of a tar archive is: only a file has bytes of its own to read. */
type TarEntryType =
  | "file"
  | "link"
  | "symlink"
  | "directory"
  | "character-device"
  | "block-device"
  | "fifo";

/** One member of a tar archive: where a file's bytes lie, to be read in place. */
export interface TarEntry {
  /** The member's name, long names (pax `path`, GNU `L`) resolved. */
  name: string;
  type: TarEntryType;
  /** Offset of its first byte in the archive. */
  offset: number;
  size: number;
  mode: number;
  /** Seconds since the epoch. */
  mtime: number;
  /** What a link names (pax `linkpath`, GNU `K` resolved); never followed, only copied. */
  linkname: string;
  uid: number;
  gid: number;
  uname: string;
  gname: string;
  devmajor: number;
  devminor: number;
}

/** Tar's type flags, as listed; any other (a global pax header, a GNU volume label) is stepped over. */
const TYPES: Record<string, TarEntryType> = {
  "0": "file",
  "\0": "file",
  "7": "file",
  "1": "link",
  "2": "symlink",
  "3": "character-device",
  "4": "block-device",
  "5": "directory",
  "6": "fifo",
};

/** A shard that is not a readable tar: its samples are not captioned, and its row says why. */
export class ShardError extends CaptionError {
  constructor(message: string) {
    super("shard_unreadable", message);
    this.name = "ShardError";
  }
}

const BLOCK = 512;
/**
 * Read ahead per header: the small members of a sample (its text, its JSON) and their headers
 * come in one read; more would copy a photo's bytes only to seek past them.
 */
const WINDOW = 8 * 1024;
/** A pax header or GNU long name larger than this is not a name but an attack on memory. */
const MAX_EXTENDED = 1024 * 1024;
/** Entries listed per shard at most (img2dataset writes 10,000 samples of 3 members). */
const MAX_ENTRIES = 4_000_000;

/**
 * Lists the members of a tar archive by walking its headers alone, seeking past each
 * member's data: a shard of 10,000 photos is indexed by reading its headers, not its gigabyte,
 * and each image is read later from its offset. tar-stream, the streaming reader, must be fed
 * every byte to reach the next header, which would read each shard twice; so this walk is ours.
 * Reads ustar, pax (`path`, `linkpath`, `size`) and GNU long names. Links, folders and devices
 * are listed as what they are, to be copied as such; a link in someone else's shard is never
 * followed. Throws ShardError where the archive is not a tar or is cut short.
 */
export async function indexTar(absPath: string): Promise<TarEntry[]> {
  const file = await openRegularFile(absPath).catch((error: NodeJS.ErrnoException) => {
    throw new ShardError(
      error.code === "ENOTREG"
        ? "not a regular file (a pipe or a device named like a shard)"
        : `cannot open the shard: ${error.code ?? error.message}`,
    );
  });
  try {
    const { size: fileSize } = await file.stat();
    const window = Buffer.alloc(WINDOW);
    let windowStart = 0;
    let windowLength = 0;
    // Read at once, not through the thread pool: a header is half a kilobyte, and a shard's
    // thousands of them would wait more on the pool's round trips than on the disk.
    const read = (offset: number, length: number): Buffer => {
      if (offset >= windowStart && offset + length <= windowStart + windowLength) {
        return window.subarray(offset - windowStart, offset - windowStart + length);
      }
      if (length > WINDOW) {
        const own = Buffer.alloc(length);
        return own.subarray(0, readSync(file.fd, own, 0, length, offset));
      }
      const bytesRead = readSync(file.fd, window, 0, WINDOW, offset);
      windowStart = offset;
      windowLength = bytesRead;
      return window.subarray(0, Math.min(length, bytesRead));
    };

    const entries: TarEntry[] = [];
    let offset = 0;
    let longName: string | null = null;
    let longLink: string | null = null;
    let pax: PaxFields = {};
    while (offset + BLOCK <= fileSize) {
      const header = read(offset, BLOCK);
      if (header.length < BLOCK) break;
      // End of archive: a zero block (two by the standard; one is enough to stop).
      if (header.every((byte) => byte === 0)) return entries;
      if (!checksumHolds(header)) {
        throw new ShardError(
          offset === 0
            ? "not a tar archive (its first block is no tar header)"
            : `a broken tar header at byte ${offset}: the shard is corrupt from there`,
        );
      }
      const type = String.fromCharCode(header[156] ?? 0);
      const size = pax.size ?? numberField(header, 124, 12);
      const dataStart = offset + BLOCK;
      const next = dataStart + Math.ceil(size / BLOCK) * BLOCK;
      if (dataStart + size > fileSize) {
        throw new ShardError(
          `the shard is cut short: a member at byte ${offset} needs ${size} bytes, and the file ends at ${fileSize}`,
        );
      }
      if (type === "x" || type === "L" || type === "K") {
        if (size > MAX_EXTENDED) {
          throw new ShardError(`an extended header of ${size} bytes at byte ${offset}`);
        }
        const data = read(dataStart, size);
        if (type === "L") longName = cString(data);
        else if (type === "K") longLink = cString(data);
        else pax = paxFields(data);
        offset = next;
        continue;
      }
      const listed = TYPES[type];
      if (listed) {
        if (entries.length >= MAX_ENTRIES) {
          throw new ShardError(`more than ${MAX_ENTRIES} members: not read further`);
        }
        entries.push({
          name: pax.path ?? longName ?? ustarName(header),
          type: listed,
          offset: dataStart,
          // A link's size field says nothing of data it has none of.
          size: listed === "file" ? size : 0,
          mode: numberField(header, 100, 8),
          mtime: numberField(header, 136, 12),
          linkname: pax.linkpath ?? longLink ?? cString(header.subarray(157, 257)),
          uid: numberField(header, 108, 8),
          gid: numberField(header, 116, 8),
          uname: cString(header.subarray(265, 297)),
          gname: cString(header.subarray(297, 329)),
          devmajor: numberField(header, 329, 8),
          devminor: numberField(header, 337, 8),
        });
      }
      // The extended names belong to the header after them, and to no other.
      longName = null;
      longLink = null;
      pax = {};
      offset = next;
    }
    if (offset === 0) throw new ShardError("not a tar archive (shorter than one tar header)");
    // Every tar ends with zero blocks; a file that stops at a member's end was cut there.
    throw new ShardError(
      `the shard is cut short: it ends at byte ${fileSize}, after ${entries.length} members, without the end of the archive`,
    );
  } finally {
    await file.close();
  }
}

function checksumHolds(header: Buffer): boolean {
  const stored = numberField(header, 148, 8);
  let sum = 0;
  for (let i = 0; i < BLOCK; i += 1) sum += i >= 148 && i < 156 ? 32 : (header[i] ?? 0);
  return stored === sum;
}

/** An octal field, or base-256 where its first byte's high bit is set (GNU, for large sizes). */
function numberField(header: Buffer, start: number, length: number): number {
  const field = header.subarray(start, start + length);
  if (((field[0] ?? 0) & 0x80) !== 0) {
    let value = (field[0] ?? 0) & 0x7f;
    for (let i = 1; i < field.length; i += 1) value = value * 256 + (field[i] ?? 0);
    return value;
  }
  const text = cString(field).trim();
  return text === "" ? 0 : Number.parseInt(text, 8) || 0;
}

function cString(bytes: Buffer): string {
  const end = bytes.indexOf(0);
  return bytes.subarray(0, end === -1 ? bytes.length : end).toString("utf8");
}

/** The ustar name: its prefix (when the magic says ustar) and name fields. */
function ustarName(header: Buffer): string {
  const name = cString(header.subarray(0, 100));
  const magic = header.subarray(257, 263).toString("latin1");
  // GNU's "ustar  " keeps other fields where POSIX keeps the prefix.
  if (magic !== "ustar\0") return name;
  const prefix = cString(header.subarray(345, 500));
  return prefix === "" ? name : `${prefix}/${name}`;
}

interface PaxFields {
  path?: string;
  linkpath?: string;
  size?: number;
}

/** `path`, `linkpath` and `size` of a pax header's records ("<length> <key>=<value>\n"). */
function paxFields(data: Buffer): PaxFields {
  const fields: PaxFields = {};
  let at = 0;
  while (at < data.length) {
    const space = data.indexOf(32, at);
    if (space === -1) break;
    const length = Number.parseInt(data.subarray(at, space).toString("latin1"), 10);
    if (!(length > 0) || at + length > data.length) break;
    const record = data.subarray(space + 1, at + length - 1).toString("utf8");
    const equals = record.indexOf("=");
    const key = record.slice(0, equals);
    const value = record.slice(equals + 1);
    if (key === "path") fields.path = value;
    else if (key === "linkpath") fields.linkpath = value;
    else if (key === "size" && /^\d+$/.test(value)) fields.size = Number(value);
    at += length;
  }
  return fields;
}
