import type { FileHandle } from "node:fs/promises";

/** The one interface every output format implements. */
export interface RecordWriter<T> {
  /** Appends one record; resolves once it has been handed to the OS, so a crash cannot lose it. */
  write(record: T): Promise<void>;
  /** Flushes to disk and closes. Safe to call twice. */
  close(): Promise<void>;
}

/**
 * Appends pre-serialised records to an open file one at a time. Each record goes out in a single
 * write() call on an O_APPEND handle, so concurrent workers never interleave and a kill can at
 * worst tear the last record, which the resume reader repairs.
 */
export function appendingWriter<T>(
  handle: FileHandle,
  serialise: (record: T) => string,
): RecordWriter<T> {
  let queue: Promise<unknown> = Promise.resolve();
  let closed = false;
  return {
    write(record) {
      if (closed) return Promise.reject(new Error("write after close"));
      const bytes = Buffer.from(serialise(record));
      const next = queue.then(() => writeAll(handle, bytes));
      queue = next.catch(() => undefined);
      return next.then(() => undefined);
    },
    async close() {
      if (closed) return;
      closed = true;
      await queue;
      try {
        await handle.sync();
      } finally {
        await handle.close();
      }
    },
  };
}

/** A short write (a disk filling up) must not leave half a record for the next one to follow. */
async function writeAll(handle: FileHandle, bytes: Buffer): Promise<void> {
  let offset = 0;
  while (offset < bytes.length) {
    const { bytesWritten } = await handle.write(bytes, offset);
    offset += bytesWritten;
  }
}
