import { type FileHandle, open } from "node:fs/promises";
import { parse } from "csv-parse/sync";
import { stringify } from "csv-stringify/sync";
import { appendingWriter, type RecordWriter } from "./writer.js";

const CSV_OPTIONS = {
  // csv-stringify writes booleans as "1"/"" by default, which reads as noise in a spreadsheet.
  cast: { boolean: (value: boolean) => (value ? "true" : "false") },
  record_delimiter: "\n",
} as const;

/** RFC 4180 CSV with the header written once, when the file is new or empty. */
export async function openCsvWriter<T extends object>(
  path: string,
  columns: readonly string[],
  toRow: (record: T) => Record<string, unknown> = (record) => record as Record<string, unknown>,
): Promise<RecordWriter<T>> {
  const handle = await open(path, "a+");
  const { size } = await handle.stat();
  // A file begun by an older version keeps its own columns, a subset of today's (see resume.ts).
  const written = size === 0 ? columns : await headerOf(handle);
  if (size === 0) await handle.write(stringify([[...columns]], CSV_OPTIONS));
  return appendingWriter<T>(handle, (record) => {
    const shown = toRow(record);
    return stringify([written.map((column) => shown[column] ?? "")], CSV_OPTIONS);
  });
}

/**
 * The columns named by a file's header line, in its order: rows are written in the file's own
 * columns, leaving empty those this run has no value for (see resume.ts acceptableHeader).
 */
async function headerOf(handle: FileHandle): Promise<readonly string[]> {
  const { buffer, bytesRead } = await handle.read(Buffer.alloc(64 * 1024), 0, 64 * 1024, 0);
  const line = buffer.subarray(0, bytesRead).toString("utf8").split("\n")[0] ?? "";
  const [header = []] = parse(line) as string[][];
  return header;
}

/** The header of a CSV file, or null when there is no file or nothing in it. */
export async function readCsvHeader(path: string): Promise<readonly string[] | null> {
  let handle: FileHandle;
  try {
    handle = await open(path, "r");
  } catch {
    return null;
  }
  try {
    const header = await headerOf(handle);
    return header.length > 0 ? header : null;
  } finally {
    await handle.close();
  }
}
