import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";

/**
 * SHA-256 of a file's bytes, so identical images under different names are sent once. Null when
 * the file cannot be read: preparing it will then fail with a message that says why.
 */
export async function hashFile(absPath: string): Promise<string | null> {
  const hash = createHash("sha256");
  try {
    // Opening a named pipe would wait forever for a writer.
    if (!(await stat(absPath)).isFile()) return null;
    for await (const chunk of createReadStream(absPath)) hash.update(chunk as Buffer);
  } catch {
    return null;
  }
  return hash.digest("hex");
}
