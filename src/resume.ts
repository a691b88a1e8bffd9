import { createReadStream } from "node:fs";
import { stat, truncate } from "node:fs/promises";
import { parse } from "csv-parse";
import { UsageError } from "./errors.js";
import type { OutputFormat } from "./types.js";

export interface FinishedWork {
  /** Paths already captioned in OUT. */
  done: Set<string>;
  /** Rows kept in OUT. */
  rows: number;
  /** Bytes cut from the end of OUT because the last record was torn by a crash. */
  repairedBytes: number;
}

/**
 * Reads what an earlier run already wrote to OUT, so a rerun only captions the rest. A run killed
 * mid-write can leave a torn last record; it is cut off here (its image is captioned again), and
 * everything before it is kept. Damage anywhere else is not ours to guess at: it stops the run
 * before anything is written.
 */
export async function readFinishedWork(
  path: string,
  format: OutputFormat,
  columns: readonly string[],
  options: { repair: boolean } = { repair: true },
): Promise<FinishedWork> {
  let size: number;
  try {
    size = (await stat(path)).size;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") {
      return { done: new Set(), rows: 0, repairedBytes: 0 };
    }
    throw error;
  }
  if (size === 0) return { done: new Set(), rows: 0, repairedBytes: 0 };
  const scan = format === "csv" ? await scanCsv(path, size, columns) : await scanJsonl(path);
  if (scan.goodEnd < size && options.repair) await truncate(path, scan.goodEnd);
  return { done: scan.done, rows: scan.rows, repairedBytes: size - scan.goodEnd };
}

interface Scan {
  done: Set<string>;
  rows: number;
  /** Byte offset just past the last complete record; everything after it is a torn tail. */
  goodEnd: number;
}

function damaged(path: string, where: string, what: string): UsageError {
  return new UsageError([
    `${path}: ${where} ${what}; it was not written by caption or was edited. Fix or move the file, or pass --overwrite to start a fresh one`,
  ]);
}

async function endsWithNewline(path: string, size: number): Promise<boolean> {
  const stream = createReadStream(path, { start: size - 1, end: size - 1 });
  for await (const chunk of stream) return (chunk as Buffer)[0] === 0x0a;
  return false;
}

async function scanCsv(path: string, size: number, columns: readonly string[]): Promise<Scan> {
  const done = new Set<string>();
  let rows = 0;
  let goodEnd = 0;
  let sawHeader = false;
  // The newest record is held back until we know it was not torn by a crash.
  let pending: { path: string; end: number; line: number; fields: number } | null = null;
  const commit = () => {
    if (!pending) return;
    if (pending.fields !== columns.length) {
      throw damaged(
        path,
        `line ${pending.line}`,
        `has ${pending.fields} fields, not ${columns.length}`,
      );
    }
    done.add(pending.path);
    rows += 1;
    goodEnd = pending.end;
    pending = null;
  };
  const parser = createReadStream(path).pipe(
    parse({ info: true, relax_column_count: true, skip_empty_lines: false }),
  );
  try {
    for await (const item of parser as AsyncIterable<{
      record: string[];
      info: { bytes: number; lines: number };
    }>) {
      const { record, info } = item;
      if (!sawHeader) {
        sawHeader = true;
        if (info.bytes === size && !(await endsWithNewline(path, size))) {
          return { done, rows, goodEnd: 0 };
        }
        if (record.join(",") !== columns.join(",")) {
          throw damaged(path, "the header", `is "${record.join(",")}", not "${columns.join(",")}"`);
        }
        goodEnd = info.bytes;
        continue;
      }
      commit();
      pending = { path: record[0] ?? "", end: info.bytes, line: info.lines, fields: record.length };
    }
  } catch (error) {
    if (error instanceof UsageError) throw error;
    const code = (error as { code?: string }).code;
    // An unclosed quote at the very end is a record torn mid-caption; anywhere else it is damage.
    if (code === "CSV_QUOTE_NOT_CLOSED") {
      commit();
      return { done, rows, goodEnd };
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
  return { done, rows, goodEnd };
}

async function scanJsonl(path: string): Promise<Scan> {
  const done = new Set<string>();
  let rows = 0;
  let offset = 0;
  let lineNumber = 0;
  let carry: Buffer = Buffer.alloc(0);
  for await (const chunk of createReadStream(path)) {
    let buffer = carry.length > 0 ? Buffer.concat([carry, chunk as Buffer]) : (chunk as Buffer);
    let newline = buffer.indexOf(0x0a);
    while (newline !== -1) {
      const line = buffer.subarray(0, newline).toString("utf8");
      lineNumber += 1;
      if (line.trim() !== "") {
        const recordPath = pathOf(line);
        if (recordPath === null) {
          throw damaged(path, `line ${lineNumber}`, "is not a JSON object with a path");
        }
        done.add(recordPath);
        rows += 1;
      }
      offset += newline + 1;
      buffer = buffer.subarray(newline + 1);
      newline = buffer.indexOf(0x0a);
    }
    carry = Buffer.from(buffer);
  }
  // Bytes after the last newline are a record torn by a crash.
  return { done, rows, goodEnd: offset };
}

function pathOf(line: string): string | null {
  try {
    const value: unknown = JSON.parse(line);
    if (typeof value === "object" && value !== null && "path" in value) {
      const { path } = value as { path: unknown };
      return typeof path === "string" ? path : null;
    }
  } catch {
    // Reported by the caller with the line number.
  }
  return null;
}
