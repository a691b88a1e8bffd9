import { createHash } from "node:crypto";
import { type FileHandle, open, stat } from "node:fs/promises";
import { openRegularFile } from "../trust/read-limited.js";

export interface ReadImage {
  /** The file's bytes, handed on to the decoder so the file is read once. */
  bytes: Buffer;
  /** SHA-256 of those bytes, hex: how identical images under other names are recognised. */
  sha256: string;
}

/**
 * The most of one file read into memory. A camera's photo is a few MB and a large scan a few
 * tens; past this (a 2 GB file named like an image, in someone else's folder) the decoder reads it
 * from its path instead, as far as it needs, and the file is not hashed.
 */
export const READ_WHOLE_LIMIT = 64 * 1024 * 1024;

const MIB = 1024 * 1024;
/** A reader keeps a buffer for files up to this size: a camera's photo, a phone's HEIC, a scan. */
const KEEP_UP_TO = 16 * MIB;

/**
 * Reads files whole into one buffer it keeps from file to file, and hashes them. A fresh buffer
 * per photo is several MB of memory outside the JS heap each time, and V8 answers that much with
 * a full collection every few images (a twentieth of a photo archive's CPU on two cores); one
 * buffer per reader costs no collection at all. The bytes are good until the next read: the
 * caller is done with them (decoded, or copied) before it reads another file.
 */
export class FileReader {
  #buffer: Buffer = Buffer.alloc(0);
  /** The shard whose images are being read, kept open between them. */
  #shard: { path: string; handle: FileHandle } | null = null;
  readonly #keepUpTo: number;

  /**
   * `keepUpTo`: the largest file whose buffer is kept for the next; a larger one (a 60 MB scan)
   * gets a buffer of its own, freed with its bytes, so a reader never holds more than this.
   */
  constructor(keepUpTo = KEEP_UP_TO) {
    this.#keepUpTo = keepUpTo;
  }

  /**
   * Null when the file is not a regular file, cannot be read, or is larger than READ_WHOLE_LIMIT:
   * preparing it from its path will then fail with a message that says why, or decode it without
   * holding it whole.
   */
  async readAndHash(absPath: string): Promise<ReadImage | null> {
    try {
      // Opening a named pipe would wait forever for a writer.
      const stats = await stat(absPath);
      if (!stats.isFile() || stats.size > READ_WHOLE_LIMIT) return null;
      const file = await open(absPath, "r");
      try {
        return await this.#read(file, 0, stats.size);
      } finally {
        await file.close();
      }
    } catch {
      return null;
    }
  }

  /**
   * An image inside a shard, from its offset into the same buffer. The shard is kept open for
   * the next of its images (a shard's are read in order), so each costs a read alone, not an
   * open, a stat and a close as a file does; `close` lets it go.
   */
  async readMemberAndHash(
    shard: string,
    range: { offset: number; size: number },
  ): Promise<ReadImage | null> {
    if (range.size > READ_WHOLE_LIMIT) return null;
    try {
      if (this.#shard?.path !== shard) {
        await this.close();
        this.#shard = { path: shard, handle: await openRegularFile(shard) };
      }
      return await this.#read(this.#shard.handle, range.offset, range.size);
    } catch {
      await this.close();
      return null;
    }
  }

  /** Lets go of the shard kept open. */
  async close(): Promise<void> {
    const handle = this.#shard?.handle;
    this.#shard = null;
    await handle?.close().catch(() => {});
  }

  async #read(file: FileHandle, start: number, size: number): Promise<ReadImage> {
    let buffer = this.#buffer;
    if (size > this.#keepUpTo) buffer = Buffer.allocUnsafeSlow(size);
    else if (buffer.length < size) {
      // Grown to the largest file so far, by whole MiB: a folder of photos settles at once.
      buffer = Buffer.allocUnsafeSlow(Math.min(this.#keepUpTo, Math.ceil(size / MIB) * MIB));
      this.#buffer = buffer;
    }
    let length = 0;
    // A file cut short since the stat is read as it now is; one grown since, as far as it was.
    while (length < size) {
      const { bytesRead } = await file.read(buffer, length, size - length, start + length);
      if (bytesRead === 0) break;
      length += bytesRead;
    }
    const bytes = buffer.subarray(0, length);
    return { bytes, sha256: createHash("sha256").update(bytes).digest("hex") };
  }
}

/** Reads a file and hashes it, into a buffer of its own (see FileReader for runs). */
export function readAndHash(absPath: string): Promise<ReadImage | null> {
  return new FileReader(0).readAndHash(absPath);
}

/**
 * The most of a clip hashed. Hashing reads every byte (a ten-hour recording's too), where the cut
 * reads only what it sends; past this a clip is not hashed, and not recognised under another name.
 */
export const HASH_STREAM_LIMIT = 16 * 1024 * 1024 * 1024;

/**
 * SHA-256 of a file read as a stream, a chunk at a time: a clip is never held whole. Null when it
 * is not a regular file, cannot be read, or is larger than `limit`.
 */
export async function hashStream(
  absPath: string,
  limit = HASH_STREAM_LIMIT,
  signal?: AbortSignal,
): Promise<string | null> {
  try {
    const stats = await stat(absPath);
    if (!stats.isFile() || stats.size > limit) return null;
    const hash = createHash("sha256");
    const file = await open(absPath, "r");
    try {
      for await (const chunk of file.createReadStream({ highWaterMark: MIB, end: limit - 1 })) {
        // A second Ctrl-C does not wait for the rest of a ten-hour recording.
        if (signal?.aborted) return null;
        hash.update(chunk as Buffer);
      }
    } finally {
      await file.close();
    }
    return hash.digest("hex");
  } catch {
    return null;
  }
}
