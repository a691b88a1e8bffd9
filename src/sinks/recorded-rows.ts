import type { OutputFormat } from "../types.js";
import { readCaptionsByPath } from "./out-file/lookup.js";
import type { StoredCaption } from "./out-file/stored-caption.js";
import type { RecordKeys } from "./record-keys.js";

export interface RecordedRows {
  /** The row OUT held for an image when the run began. */
  get(imagePath: string): Promise<StoredCaption | undefined>;
  /** A row collector for the scan that reads OUT anyway, so OUT is not read a second time. */
  keep(): (row: StoredCaption) => void;
}

/** The rows OUT holds by path: kept from the resume scan, or read on the first question. */
export function recordedRows(
  output: string,
  format: OutputFormat,
  keys: RecordKeys,
  columns: readonly string[],
): RecordedRows {
  let byPath: Promise<Map<string, StoredCaption>> | null = null;
  return {
    async get(imagePath) {
      byPath ??= readCaptionsByPath(output, format, columns);
      return (await byPath).get(keys.key(imagePath));
    },
    keep() {
      const rows = new Map<string, StoredCaption>();
      byPath = Promise.resolve(rows);
      return (row) => rows.set(row.path, row);
    },
  };
}
