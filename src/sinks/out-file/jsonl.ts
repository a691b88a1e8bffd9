import { open } from "node:fs/promises";
import { appendingWriter, type RecordWriter } from "./writer.js";

/** JSON Lines: one object a line. JSON escapes newlines, so a record is always exactly one line. */
export async function openJsonlWriter<T>(path: string): Promise<RecordWriter<T>> {
  const handle = await open(path, "a");
  return appendingWriter<T>(handle, (record) => `${JSON.stringify(record)}\n`);
}
