import { open, rename, rm } from "node:fs/promises";
import { compressors } from "hyparquet-compressors";
import { temporaryPath } from "../write-whole.js";
import { recordOfRow } from "./parquet-columns.js";
import { damaged } from "./scan-result.js";

/**
 * The rows of a Parquet OUT, a row group at a time (so a file of a million rows is never held
 * whole), each as the row of the JSONL record it was written from (`recordOfRow`). A file that is
 * not Parquet, or has no `path` column, is not one caption wrote: a UsageError says so.
 */
export async function* parquetRows(file: string): AsyncGenerator<Record<string, unknown>> {
  // Loaded when a Parquet file is read: most runs never read one.
  const { asyncBufferFromFile, parquetMetadataAsync, parquetReadObjects, parquetSchema } =
    await import("hyparquet");
  const buffer = await asyncBufferFromFile(file);
  let metadata: Awaited<ReturnType<typeof parquetMetadataAsync>>;
  try {
    metadata = await parquetMetadataAsync(buffer);
  } catch (error) {
    throw damaged(file, "the content", `is not Parquet (${(error as Error).message})`);
  }
  // Top-level columns only: a Hugging Face Image struct has a `path` inside it, and such a file
  // (a dataset, perhaps this run's own input) is not one caption wrote.
  const names = parquetSchema(metadata).children.map((child) => child.element.name);
  if (!names.includes("path") || !names.includes("caption")) {
    throw damaged(
      file,
      "the schema",
      `has no "path" and "caption" columns (it has ${names.join(", ")}): it is no file caption wrote`,
    );
  }
  let start = 0;
  for (const group of metadata.row_groups) {
    const end = start + Number(group.num_rows);
    const rows = await parquetReadObjects({
      file: buffer,
      metadata,
      rowStart: start,
      rowEnd: end,
      compressors,
    });
    for (const row of rows) {
      if (typeof row.path === "string") yield recordOfRow(row);
    }
    start = end;
  }
}

/**
 * Writes a Parquet OUT's rows out as its record, for a Parquet file that came without one (copied
 * alone, or its record deleted): the run then resumes from the record as from any other.
 * Written whole (a temporary file, renamed), so a crash leaves no half record to resume from.
 */
export async function recordFromParquet(parquet: string, record: string): Promise<number> {
  const temporary = temporaryPath(record);
  const handle = await open(temporary, "wx");
  let rows = 0;
  try {
    let lines: string[] = [];
    const flush = async () => {
      if (lines.length > 0) await handle.writeFile(lines.join(""));
      lines = [];
    };
    for await (const row of parquetRows(parquet)) {
      lines.push(`${JSON.stringify(row)}\n`);
      rows += 1;
      if (lines.length >= 1000) await flush();
    }
    await flush();
    await handle.sync();
    await handle.close();
    await rename(temporary, record);
    return rows;
  } catch (error) {
    await handle.close().catch(() => {});
    await rm(temporary, { force: true });
    throw error;
  }
}
