import { open } from "node:fs/promises";
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
  columns: readonly (keyof T & string)[],
  transform: (record: T) => T = (record) => record,
): Promise<RecordWriter<T>> {
  const handle = await open(path, "a");
  const { size } = await handle.stat();
  if (size === 0) await handle.write(stringify([[...columns]], CSV_OPTIONS));
  return appendingWriter<T>(handle, (record) => {
    const shown = transform(record);
    return stringify([columns.map((column) => shown[column] ?? "")], CSV_OPTIONS);
  });
}
