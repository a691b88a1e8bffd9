import { createReadStream } from "node:fs";
import { stat, truncate } from "node:fs/promises";
import { parse } from "csv-parse";
import { RunAbortedError, UsageError } from "../../errors.js";
import type { OutputFormat } from "../../types.js";
import { CAPTION_COLUMNS, unguardFormula } from "./writers.js";

export interface FinishedWork {
  /** Paths already captioned in OUT. */
  done: Set<string>;
  /** Content hashes of the images captioned in OUT, for spotting copies under other names. */
  hashes: Set<string>;
  /** Rows kept in OUT. */
  rows: number;
  /** Bytes cut from the end of OUT because the last record was torn by a crash. */
  repairedBytes: number;
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
 * before anything is written.
 */
export async function readFinishedWork(
  path: string,
  format: OutputFormat,
  columns: readonly string[],
  options: ReadOptions = { repair: true },
): Promise<FinishedWork> {
  const done = new Set<string>();
  const hashes = new Set<string>();
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

/** What a row of OUT says about an image: enough to give an identical file the same caption. */
export interface StoredCaption {
  path: string;
  sha256: string | null;
  caption: string;
  model: string;
  width: number;
  height: number;
  truncated: boolean;
  flags: string[];
  /** The structured answer: JSONL's `data`, or CSV's answer columns (as text). */
  data?: Record<string, unknown>;
  tags?: string[];
  /** Null in rows written before prompts were told apart. */
  prompt_hash: string | null;
}

/** Every complete row of OUT by content hash; read only when a copy of a finished image turns up. */
export async function readCaptionsByHash(
  path: string,
  format: OutputFormat,
  columns: readonly string[],
): Promise<Map<string, StoredCaption>> {
  const byHash = new Map<string, StoredCaption>();
  const size = (await stat(path)).size;
  await scanOutput(path, size, format, columns, (row) => {
    if (row.sha256) byHash.set(row.sha256, row);
  });
  return byHash;
}

/** Every complete row of OUT by path; empty when OUT does not exist. */
export async function readCaptionsByPath(
  path: string,
  format: OutputFormat,
  columns: readonly string[],
): Promise<Map<string, StoredCaption>> {
  const byPath = new Map<string, StoredCaption>();
  const size = await stat(path).then(
    (info) => info.size,
    () => 0,
  );
  await scanOutput(path, size, format, columns, (row) => {
    byPath.set(row.path, row);
  });
  return byPath;
}

/**
 * Looks captions up by content hash, reading OUT once and again only after it has grown. Copies
 * of earlier images are rare, so OUT is not held in memory until the first one turns up.
 */
export function storedCaptions(
  path: string,
  format: OutputFormat,
  columns: readonly string[],
): { get(sha256: string): Promise<StoredCaption | undefined>; forget(): void } {
  let byHash: Promise<Map<string, StoredCaption>> | null = null;
  return {
    async get(sha256) {
      byHash ??= readCaptionsByHash(path, format, columns).catch(() => new Map());
      return (await byHash).get(sha256);
    },
    forget() {
      byHash = null;
    },
  };
}

interface Scan {
  rows: number;
  /** Byte offset just past the last complete record; everything after it is a torn tail. */
  goodEnd: number;
}

function scanOutput(
  path: string,
  size: number,
  format: OutputFormat,
  columns: readonly string[],
  onRow: (row: StoredCaption) => void,
): Promise<Scan> {
  if (size === 0) return Promise.resolve({ rows: 0, goodEnd: 0 });
  if (format === "jsonl") return scanJsonl(path, onRow);
  // Tracking every record's byte offset costs more than the parse itself, and is only needed to
  // cut a torn tail; so the file is read without it, and again with it if its end looks torn.
  return scanCsvQuickly(path, size, columns, onRow).catch((error: unknown) => {
    if (error !== TORN) throw error;
    return scanCsv(path, size, columns, onRow);
  });
}

/** Thrown by the quick scan when the end of the file needs the careful one. */
const TORN = Symbol("torn");

async function scanCsvQuickly(
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
  const source = createReadStream(path, { highWaterMark: 1 << 20 });
  const parser = source.pipe(parse({ relax_column_count: true }));
  source.on("error", (error) => parser.destroy(error));
  try {
    for await (const record of parser as AsyncIterable<string[]>) {
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
  } finally {
    source.destroy();
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

function damaged(path: string, where: string, what: string): UsageError {
  return new UsageError([
    `${path}: ${where} ${what}; it was not written by caption or was edited. Fix or move the file`,
  ]);
}

async function endsWithNewline(path: string, size: number): Promise<boolean> {
  const stream = createReadStream(path, { start: size - 1, end: size - 1 });
  for await (const chunk of stream) return (chunk as Buffer)[0] === 0x0a;
  return false;
}

async function scanCsv(
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
  const source = createReadStream(path);
  const parser = source.pipe(
    parse({ info: true, relax_column_count: true, skip_empty_lines: false }),
  );
  // pipe() does not pass read errors on, and an early exit must not leave the file open.
  source.on("error", (error) => parser.destroy(error));
  try {
    for await (const item of parser as AsyncIterable<{
      record: string[];
      info: { bytes: number; lines: number };
    }>) {
      const { record, info } = item;
      if (!sawHeader) {
        sawHeader = true;
        if (info.bytes === size && !(await endsWithNewline(path, size))) {
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
        goodEnd = info.bytes;
        continue;
      }
      commit();
      pending = { record, end: info.bytes, line: info.lines };
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
  } finally {
    source.destroy();
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

async function scanJsonl(path: string, onRow: (row: StoredCaption) => void): Promise<Scan> {
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
        const row = fromJson(line);
        if (row === null) {
          throw damaged(path, `line ${lineNumber}`, "is not a JSON object with a path");
        }
        onRow(row);
        rows += 1;
      }
      offset += newline + 1;
      buffer = buffer.subarray(newline + 1);
      newline = buffer.indexOf(0x0a);
    }
    carry = Buffer.from(buffer);
  }
  // Bytes after the last newline are a record torn by a crash.
  return { rows, goodEnd: offset };
}

/**
 * OUT's rows are keyed by `path` and hold a `caption`; the Hugging Face metadata files this tool
 * also resumes from call the same two `file_name` and `text`.
 */
const KEY = ["path", "file_name"] as const;
const TEXT = ["caption", "text"] as const;

/**
 * Reads rows under one CSV header. Where each field lies is worked out once per header, not once
 * per row: a resume reads every row of OUT, 100,000 or more.
 */
function rowReader(columns: readonly string[]): (record: string[]) => StoredCaption {
  const at = (name: string) => columns.indexOf(name);
  const named = (names: readonly string[]) =>
    at(names.find((name) => columns.includes(name)) ?? "");
  const [key, text, sha256, model, width, height, truncated, flags, tags, promptHash] = [
    named(KEY),
    named(TEXT),
    at("sha256"),
    at("model"),
    at("width"),
    at("height"),
    at("truncated"),
    at("flags"),
    at("tags"),
    at("prompt_hash"),
  ];
  const answer =
    columns[0] === "path"
      ? columns.flatMap((name, index) =>
          (CAPTION_COLUMNS as readonly string[]).includes(name)
            ? []
            : [{ name: name.replace(/^data\./, ""), index }],
        )
      : [];
  // OUT's text cells may be guarded (--csv-formula-guard): read as they were before it. The Hugging
  // Face metadata files are never guarded, so their cells are read exactly as they are.
  const shown = columns[0] === "path" ? unguardFormula : (cell: string) => cell;
  return (record) => {
    const field = (index: number) => record[index] ?? "";
    const textOf = (index: number) => shown(record[index] ?? "");
    const flagText = textOf(flags);
    const tagText = textOf(tags);
    return {
      path: textOf(key),
      sha256: field(sha256) || null,
      caption: textOf(text),
      model: textOf(model),
      width: Number(field(width)),
      height: Number(field(height)),
      truncated: field(truncated) === "true",
      flags: flagText === "" ? [] : flagText.split(", "),
      ...(answer.length > 0
        ? { data: Object.fromEntries(answer.map(({ name, index }) => [name, textOf(index)])) }
        : {}),
      ...(tags >= 0 ? { tags: tagText === "" ? [] : tagText.split(", ") } : {}),
      prompt_hash: field(promptHash) || null,
    };
  };
}

function fromJson(line: string): StoredCaption | null {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return null;
  }
  if (typeof value !== "object" || value === null) return null;
  const row = value as Record<string, unknown>;
  const key = KEY.find((name) => typeof row[name] === "string");
  if (key === undefined) return null;
  const text = (name: string) => (typeof row[name] === "string" ? (row[name] as string) : "");
  const strings = (value: unknown) =>
    Array.isArray(value) ? value.filter((item): item is string => typeof item === "string") : [];
  const data = row.data;
  return {
    path: text(key),
    sha256: text("sha256") || null,
    caption: text(TEXT.find((name) => typeof row[name] === "string") ?? "caption"),
    model: text("model"),
    width: Number(row.width),
    height: Number(row.height),
    truncated: row.truncated === true,
    flags:
      typeof row.flags === "string" ? row.flags.split(", ").filter(Boolean) : strings(row.flags),
    ...(typeof data === "object" && data !== null && !Array.isArray(data)
      ? { data: data as Record<string, unknown> }
      : {}),
    ...(Array.isArray(row.tags) ? { tags: strings(row.tags) } : {}),
    prompt_hash: text("prompt_hash") || null,
  };
}
