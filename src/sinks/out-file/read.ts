import type { OutputFormat } from "../../types.js";
import { unguardFormula } from "./csv.js";
import { parquetRows } from "./parquet-read.js";
import { rowsSource } from "./parquet-record.js";
import { csvRecords, jsonlLines } from "./records.js";

/**
 * The records of OUT (or the errors file) one at a time, as objects keyed by column, streamed so
 * that a file of 100,000 rows is never held whole. Read by the same reader resume uses
 * (records.ts), leniently: a torn last line (a run killed mid-write) is skipped, as resume skips
 * it; `onBad` hears of any other line that is not a record. A Parquet OUT is read from its record
 * (parquet-record.ts), or, without one, from the Parquet file itself.
 */
export async function* readRecords(
  output: string,
  outputFormat: OutputFormat,
  onBad: (line: number) => void = () => {},
): AsyncGenerator<Record<string, unknown>> {
  const { file, format } = await rowsSource(output, outputFormat);
  if (format === "parquet") {
    yield* parquetRows(file);
    return;
  }
  if (format === "csv") {
    yield* csvObjects(file, onBad);
    return;
  }
  let pendingBad: number | null = null;
  for await (const { text, line } of jsonlLines(file)) {
    if (text.trim() === "") continue;
    // A bad line is only reported once a good one follows: the last may be a torn write.
    if (pendingBad !== null) {
      onBad(pendingBad);
      pendingBad = null;
    }
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      pendingBad = line;
      continue;
    }
    if (typeof value === "object" && value !== null && !Array.isArray(value)) {
      yield value as Record<string, unknown>;
    }
  }
}

async function* csvObjects(
  file: string,
  onBad: (line: number) => void,
): AsyncGenerator<Record<string, unknown>> {
  // OUT's cells may be guarded (--csv-formula-guard): each is read as it was before. Other CSV
  // files (Hugging Face metadata) are never guarded, and are read exactly as they are.
  let header: string[] | null = null;
  let out = false;
  try {
    for await (const { cells } of csvRecords(file)) {
      if (cells.length === 1 && cells[0] === "") continue;
      if (header === null) {
        header = cells.map(unguardFormula);
        out = header[0] === "path";
        continue;
      }
      const record: Record<string, unknown> = {};
      header.forEach((name, index) => {
        const value = cells[index];
        if (value !== undefined) record[name] = out ? unguardFormula(value) : value;
      });
      yield record;
    }
  } catch (error) {
    // A quote left open at the end is the last record torn by a kill: the rest is good.
    if ((error as { code?: string }).code === "CSV_QUOTE_NOT_CLOSED") {
      onBad(-1);
      return;
    }
    throw error;
  }
}
