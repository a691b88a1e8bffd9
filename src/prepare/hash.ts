import { createHash } from "node:crypto";
import { readFile, stat } from "node:fs/promises";

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

/**
 * Reads a file and hashes it. Null when it is not a regular file, cannot be read, or is larger
 * than READ_WHOLE_LIMIT: preparing it from its path will then fail with a message that says why,
 * or decode it without holding it whole.
 */
export async function readAndHash(absPath: string): Promise<ReadImage | null> {
  try {
    // Opening a named pipe would wait forever for a writer.
    const stats = await stat(absPath);
    if (!stats.isFile() || stats.size > READ_WHOLE_LIMIT) return null;
    const bytes = await readFile(absPath);
    return { bytes, sha256: createHash("sha256").update(bytes).digest("hex") };
  } catch {
    return null;
  }
}
