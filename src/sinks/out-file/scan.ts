import { stat, truncate } from "node:fs/promises";
import { RunAbortedError, UsageError } from "../../errors.js";
import type { OutputFormat } from "../../types.js";
import type { FinishedWork } from "../sink.js";
import { parquetRows } from "./parquet-read.js";
import { rowsSource } from "./parquet-record.js";
import { scanCsv, scanCsvQuickly, TORN } from "./scan-csv.js";
import { scanJsonl } from "./scan-jsonl.js";
import type { Scan } from "./scan-result.js";
import { fromObject, type StoredCaption } from "./stored-caption.js";

/** What OUT already holds: what any sink already holds (sink.ts), and how many rows. */
export interface FinishedInFile extends Omit<FinishedWork, "rejected"> {
  /** Rows kept in OUT. */
  rows: number;
}

export interface ReadOptions {
  /** Cut a torn last record off the file (not in a dry run). */
  repair: boolean;
  /** Sees every complete row, for a caller that needs more of it than the paths and hashes. */
  onRow?: ((row: StoredCaption) => void) | undefined;
  /** How to start the file afresh instead, added to the message when it is damaged. */
  afresh?: string | undefined;
}

/**
 * Reads what an earlier run already wrote to OUT, so a rerun only captions the rest. A run killed
 * mid-write can leave a torn last record; it is cut off here (its image is captioned again), and
 * everything before it is kept. Damage anywhere else is not ours to guess at: it stops the run
 * before anything is written. A Parquet OUT is read from its record, or without one from itself.
 */
export async function readFinishedWork(
  output: string,
  outputFormat: OutputFormat,
  columns: readonly string[],
  options: ReadOptions = { repair: true },
): Promise<FinishedInFile> {
  const done = new Set<string>();
  const hashes = new Set<string>();
  const { file: path, format } = await rowsSource(output, outputFormat);
  try {
    const info = await stat(path);
    if (info.isDirectory()) throw Object.assign(new Error("is a folder"), { code: "EISDIR" });
    const scan = await scanOutput(path, info.size, format, columns, (row) => {
      done.add(row.path);
      if (row.sha256) hashes.add(row.sha256);
      options.onRow?.(row);
    });
    if (scan.goodEnd < info.size && options.repair) await truncate(path, scan.goodEnd);
    return { done, hashes, rows: scan.rows, repairedBytes: info.size - scan.goodEnd };
  } catch (error) {
    if (error instanceof UsageError) {
      if (!options.afresh) throw error;
      throw new UsageError(error.problems.map((problem) => `${problem}, or ${options.afresh}`));
    }
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOENT") return { done, hashes, rows: 0, repairedBytes: 0 };
    throw new RunAbortedError(
      "output_unreadable",
      `cannot read ${path} to resume from it (${code ?? (error as Error).message}); -o must name a file you can read and write`,
      { cause: error },
    );
  }
}

export function scanOutput(
  path: string,
  size: number,
  format: OutputFormat,
  columns: readonly string[],
  onRow: (row: StoredCaption) => void,
): Promise<Scan> {
  if (size === 0) return Promise.resolve({ rows: 0, goodEnd: 0 });
  if (format === "jsonl") return scanJsonl(path, onRow);
  if (format === "parquet") return scanParquet(path, size, onRow);
  // Tracking every record's byte offset costs more than the parse itself, and is only needed to
  // cut a torn tail; so the file is read without it, and again with it if its end looks torn.
  return scanCsvQuickly(path, size, columns, onRow).catch((error: unknown) => {
    if (error !== TORN) throw error;
    return scanCsv(path, size, columns, onRow);
  });
}

/** A Parquet file's rows (one caption wrote, copied without its record): never torn, never cut. */
async function scanParquet(
  path: string,
  size: number,
  onRow: (row: StoredCaption) => void,
): Promise<Scan> {
  let rows = 0;
  for await (const record of parquetRows(path)) {
    const row = fromObject(record);
    if (row === null) continue;
    onRow(row);
    rows += 1;
  }
  return { rows, goodEnd: size };
}
