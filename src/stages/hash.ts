import { createHash } from "node:crypto";
import { readFile, stat } from "node:fs/promises";

export interface ReadImage {
  /** The file's bytes, handed on to the decoder so the file is read once. */
  bytes: Buffer;
  /** SHA-256 of those bytes, hex: how identical images under other names are recognised. */
  sha256: string;
}

/**
 * Reads a file and hashes it. Null when it is not a regular file or cannot be read: preparing it
 * from its path will then fail with a message that says why.
 */
export async function readAndHash(absPath: string): Promise<ReadImage | null> {
  try {
    // Opening a named pipe would wait forever for a writer.
    if (!(await stat(absPath)).isFile()) return null;
    const bytes = await readFile(absPath);
    return { bytes, sha256: createHash("sha256").update(bytes).digest("hex") };
  } catch {
    return null;
  }
}
