import { createReadStream } from "node:fs";
import { UsageError } from "../../errors.js";
import { csvRecords } from "./records.js";
import { damaged, type Scan } from "./scan-result.js";
import { rowReader, type StoredCaption } from "./stored-caption.js";
import { unguardFormula } from "./writers.js";

/** Thrown by the quick scan when the end of the file needs the careful one. */
export const TORN = Symbol("torn");

export async function scanCsvQuickly(
  path: string,
  size: number,
  columns: readonly string[],
  onRow: (row: StoredCaption) => void,
): Promise<Scan> {
  if (!(await endsWithNewline(path, size))) throw TORN;
  let rows = -1;
  let last: string[] | null = null;
  let header: string[] = [];
  let read: (record: string[]) => StoredCaption = rowReader([]);
  try {
    for await (const { cells: record } of csvRecords(path)) {
      if (rows === -1) {
        header = record.map(unguardFormula);
        if (!acceptableHeader(header, columns)) throw TORN;
        read = rowReader(header);
      } else if (record.length !== header.length) {
        throw TORN;
      } else {
        onRow(read(record));
      }
      last = record;
      rows += 1;
    }
  } catch (error) {
    if (error === TORN) throw error;
    const code = (error as { code?: string }).code;
    if (code?.startsWith("CSV_")) throw TORN;
    throw error;
  }
  if (last === null) throw TORN;
  return { rows, goodEnd: size };
}

/**
 * An OUT written by an older version has fewer columns (before `sha256`, say): any header made of
 * known columns, starting with the key one, is read by name, and rows keep that file's columns.
 */
export function acceptableHeader(header: readonly string[], columns: readonly string[]): boolean {
  return (
    header[0] === columns[0] &&
    new Set(header).size === header.length &&
    // Columns of another schema's answers, in a file this version began (only it writes
    // prompt_hash): its rows stay, and this run leaves those columns empty.
    (header.every((name) => columns.includes(name)) || header.includes("prompt_hash"))
  );
}

async function endsWithNewline(path: string, size: number): Promise<boolean> {
  const stream = createReadStream(path, { start: size - 1, end: size - 1 });
  for await (const chunk of stream) return (chunk as Buffer)[0] === 0x0a;
  return false;
}

export async function scanCsv(
  path: string,
  size: number,
  columns: readonly string[],
  onRow: (row: StoredCaption) => void,
): Promise<Scan> {
  let rows = 0;
  let goodEnd = 0;
  let sawHeader = false;
  let header: string[] = [];
  let read: (record: string[]) => StoredCaption = rowReader([]);
  // The newest record is held back until we know it was not torn by a crash.
  let pending: { record: string[]; end: number; line: number } | null = null;
  const commit = () => {
    if (!pending) return;
    if (pending.record.length !== header.length) {
      throw damaged(
        path,
        `line ${pending.line}`,
        `has ${pending.record.length} fields, not ${header.length}`,
      );
    }
    onRow(read(pending.record));
    rows += 1;
    goodEnd = pending.end;
    pending = null;
  };
  try {
    for await (const item of csvRecords(path, true)) {
      const { cells: record } = item;
      if (!sawHeader) {
        sawHeader = true;
        if (item.end === size && !(await endsWithNewline(path, size))) {
          return { rows, goodEnd: 0 };
        }
        header = record.map(unguardFormula);
        if (!acceptableHeader(header, columns)) {
          throw damaged(
            path,
            "the header",
            `is "${record.join(",")}"; a header of this tool starts with "${columns[0]}" and uses only "${columns.join(",")}"`,
          );
        }
        read = rowReader(header);
        goodEnd = item.end;
        continue;
      }
      commit();
      pending = { record, end: item.end, line: item.line };
    }
  } catch (error) {
    if (error instanceof UsageError) throw error;
    const code = (error as { code?: string }).code;
    // A read error (permissions, I/O) is not damage to the content.
    if (code && !code.startsWith("CSV_")) throw error;
    // An unclosed quote at the very end is a record torn mid-caption; anywhere else it is damage.
    if (code === "CSV_QUOTE_NOT_CLOSED") {
      commit();
      return { rows, goodEnd };
    }
    throw damaged(path, "the content", `is not valid CSV (${(error as Error).message})`);
  }
  if (pending) {
    const last: { end: number } = pending;
    if (last.end === size && !(await endsWithNewline(path, size))) {
      pending = null;
    } else {
      commit();
    }
  }
  return { rows, goodEnd };
}
