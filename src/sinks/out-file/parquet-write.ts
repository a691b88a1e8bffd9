import { chmod, type FileHandle, lstat, open, rename, rm } from "node:fs/promises";
import { symlinkRefused } from "../../trust/links.js";
import type { CaptionRecord } from "../../types.js";
import { temporaryPath } from "../write-whole.js";
import { openJsonlWriter } from "./jsonl.js";
import { latestRows } from "./latest-rows.js";
import {
  cellValue,
  type ParquetColumn,
  ParquetLayout,
  parquetSchema,
  type RunColumns,
} from "./parquet-columns.js";
import { parquetRecordPath } from "./parquet-record.js";
import { readRecords } from "./read.js";
import type { RecordWriter } from "./writer.js";

/**
 * Rows a row group: a row group is held in memory while it is encoded (a few thousand captions of
 * a kilobyte or two: some megabytes), and is what readers skip by, so a million rows make a few
 * hundred groups and the memory stays the same whatever the count.
 */
export const ROW_GROUP_ROWS = 5000;

/**
 * Writes a Parquet OUT from its JSONL record (or any JSONL file of OUT's rows): one row per image,
 * its latest (the record may hold an image's old row and its new one until it is compacted). The
 * record is streamed, twice: first to learn the columns and their kinds (a Parquet file states
 * its schema before its rows) and which row of an image is its latest, then to write the rows a
 * row group at a time. Written to a temporary file beside `parquet` and renamed over it, so a
 * crash leaves the old file or the new one, never half; a file there keeps its permissions, and
 * a symlink there is refused (`ESYMLINK`), never written through. Returns the rows written.
 */
export async function writeParquetFromRecord(
  record: string,
  parquet: string,
  run: RunColumns = {},
): Promise<number> {
  const stats = await lstat(parquet).catch(() => null);
  if (stats?.isSymbolicLink()) throw symlinkRefused(parquet);
  const layout = new ParquetLayout(run);
  const rows = () => captionRows(record);
  // The first pass of latestRows is the one that learns the columns: it reads every row once,
  // and again only when an image has two.
  let learning = true;
  const isLatest = await latestRows(async function* () {
    for await (const row of rows()) {
      if (learning) layout.observe(row);
      yield row;
    }
    learning = false;
  }, keyOf);
  const columns = layout.columns();
  // Loaded when a Parquet file is written, as CSV's packages are: most runs never write one.
  const { ByteWriter, ParquetWriter } = await import("hyparquet-writer");
  const temporary = temporaryPath(parquet);
  let handle: FileHandle | null = null;
  try {
    handle = await open(temporary, "wx");
    const writer = fileWriter(new ByteWriter(1 << 20), handle);
    const file = new ParquetWriter({
      writer,
      schema: parquetSchema(columns),
      createdBy: "caption (vlm-caption)",
    });
    let group: Record<string, unknown>[] = [];
    let written = 0;
    let index = 0;
    const flush = async () => {
      if (group.length === 0) return;
      await file.write({ columnData: columnData(columns, group), rowGroupSize: group.length });
      written += group.length;
      group = [];
    };
    for await (const row of rows()) {
      if (isLatest(row, index)) group.push(row);
      index += 1;
      if (group.length >= ROW_GROUP_ROWS) await flush();
    }
    await flush();
    await file.finish();
    await handle.sync();
    await handle.close();
    handle = null;
    if (stats?.isFile()) await chmod(temporary, stats.mode & 0o7777);
    await rename(temporary, parquet);
    return written;
  } catch (error) {
    await handle?.close().catch(() => {});
    await rm(temporary, { force: true });
    throw error;
  }
}

/** The rows of a JSONL file of OUT's rows, those with a path: a torn last line is left out. */
async function* captionRows(file: string): AsyncGenerator<Record<string, unknown>> {
  for await (const row of readRecords(file, "jsonl")) {
    if (typeof row.path === "string") yield row;
  }
}

const keyOf = (row: Record<string, unknown>) => (typeof row.path === "string" ? row.path : null);

/** A row group's rows as hyparquet-writer takes them: a column at a time. */
export function columnData(
  columns: readonly ParquetColumn[],
  rows: readonly Record<string, unknown>[],
): { name: string; data: unknown[] }[] {
  return columns.map((column) => ({
    name: column.name,
    data: rows.map((row) => cellValue(column.kind, column.value(row))),
  }));
}

/**
 * hyparquet-writer's writer, flushed to an open file after each row group and at the end (it waits
 * for each flush before encoding the next group), so the file is never held whole in memory.
 */
function fileWriter<W extends { buffer: ArrayBuffer; index: number }>(
  writer: W,
  handle: FileHandle,
): W & { flush(): Promise<void>; finish(): Promise<void> } {
  const flush = async () => {
    const bytes = new Uint8Array(writer.buffer, 0, writer.index);
    let offset = 0;
    while (offset < bytes.length) {
      const { bytesWritten } = await handle.write(bytes, offset);
      offset += bytesWritten;
    }
    writer.index = 0;
  };
  return Object.assign(writer, { flush, finish: flush });
}

/**
 * OUT as Parquet for a program that writes rows itself (`openCaptionWriter`): each row is appended
 * to the record beside OUT (parquet-record.ts), safe from a crash as a JSONL OUT's is, and closing
 * writes OUT from the record, one row per image.
 */
export async function openParquetWriter(
  output: string,
  run: RunColumns = {},
): Promise<RecordWriter<CaptionRecord>> {
  const record = parquetRecordPath(output);
  const rows = await openJsonlWriter<CaptionRecord>(record);
  let closed = false;
  return {
    write: (row) => rows.write(row),
    async close() {
      if (closed) return;
      closed = true;
      await rows.close();
      await writeParquetFromRecord(record, output, run);
    },
  };
}
