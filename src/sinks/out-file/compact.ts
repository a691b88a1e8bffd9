import { createWriteStream } from "node:fs";
import { chmod, lstat, open, rename, rm } from "node:fs/promises";
import { symlinkRefused } from "../../trust/links.js";
import type { OutputFormat } from "../../types.js";
import { loadWhenNeeded } from "../../util/load.js";
import { temporaryPath } from "../write-whole.js";
import { unguardFormula } from "./csv.js";
import { csvRecords, jsonlLines } from "./records.js";

/**
 * Rewrites a file of rows (OUT, a Hugging Face metadata file) with one row per key, the last one
 * written: a run appends a row that replaces an older one (`--redo`), and every reader takes the
 * later row, but a finished file holds only it. Written to a temporary file beside it and renamed
 * over it, so a crash leaves the file as it was or as it should be. Read twice and streamed, so a
 * file of a million rows costs a map of its keys, never the rows. A symlink is never written through.
 */
export async function keepLastRows(
  file: string,
  format: OutputFormat,
  keyColumn: string,
  /** OUT's cells may be guarded (`--csv-formula-guard`): keys are compared as every reader reads them. */
  guarded = false,
): Promise<void> {
  const rows = format === "csv" ? csvRows(file, keyColumn, guarded) : jsonlRows(file, keyColumn);
  const last = new Map<string, number>();
  let index = 0;
  let keyed = 0;
  for await (const { key } of rows()) {
    if (key !== null) {
      last.set(key, index);
      keyed += 1;
    }
    index += 1;
  }
  if (last.size === keyed) return;
  await rewrite(file, async function* () {
    let at = 0;
    for await (const { key, text } of rows()) {
      // A row with no key (a CSV's header) is kept where it is.
      if (key === null || last.get(key) === at) yield text();
      at += 1;
    }
  });
}

/**
 * Gives a CSV OUT the columns a run needs that it lacks (a prompt added to `--prompts`), empty in
 * every row so far, before a row needs them: rows appended to a CSV follow its header.
 */
export async function addCsvColumns(file: string, added: readonly string[]): Promise<void> {
  if (added.length === 0) return;
  const { stringify } = loadWhenNeeded("csv-stringify/sync") as typeof import("csv-stringify/sync");
  await rewrite(file, async function* () {
    let width = -1;
    for await (const { cells } of csvRecords(file)) {
      if (width === -1) {
        width = cells.length;
        yield stringify([[...cells, ...added]], { record_delimiter: "\n" });
        continue;
      }
      if (cells.length === 1 && cells[0] === "") continue;
      const padded = [...cells, ...Array<string>(Math.max(0, width - cells.length)).fill("")];
      yield stringify([[...padded, ...added.map(() => "")]], { record_delimiter: "\n" });
    }
  });
}

/**
 * Writes `file` anew from `lines`, through a temporary file beside it renamed over it (its mode
 * kept), so a crash leaves it as it was or as it should be. A symlink is never written through.
 */
async function rewrite(file: string, lines: () => AsyncIterable<string>): Promise<void> {
  const stats = await lstat(file);
  if (stats.isSymbolicLink()) throw symlinkRefused(file);
  const temporary = temporaryPath(file);
  try {
    const out = createWriteStream(temporary, { flags: "wx" });
    const done = new Promise<void>((resolve, reject) => {
      out.on("finish", resolve);
      out.on("error", reject);
    });
    for await (const text of lines()) {
      if (!out.write(text))
        await new Promise<void>((resolve) => out.once("drain", () => resolve()));
    }
    out.end();
    await done;
    const handle = await open(temporary, "r");
    await handle.sync().finally(() => handle.close());
    await chmod(temporary, stats.mode & 0o7777);
    await rename(temporary, file);
  } catch (error) {
    await rm(temporary, { force: true });
    throw error;
  }
}

interface KeyedRow {
  /** The row's key, or null for a row that has none (the header). */
  key: string | null;
  /** The row as it is written back: worked out only for the rows that are. */
  text: () => string;
}

function csvRows(
  file: string,
  keyColumn: string,
  guarded: boolean,
): () => AsyncGenerator<KeyedRow> {
  const read = guarded ? unguardFormula : (cell: string) => cell;
  const { stringify } = loadWhenNeeded("csv-stringify/sync") as typeof import("csv-stringify/sync");
  return async function* () {
    let keyAt = -1;
    for await (const { cells } of csvRecords(file)) {
      // Cells are written back as they were read: guarded text stays guarded.
      const text = () => stringify([cells], { record_delimiter: "\n" });
      if (keyAt === -1) {
        keyAt = cells.findIndex((cell) => read(cell) === keyColumn);
        yield { key: null, text };
        continue;
      }
      if (cells.length === 1 && cells[0] === "") continue;
      const key = cells[keyAt];
      yield { key: key === undefined ? null : read(key), text };
    }
  };
}

function jsonlRows(file: string, keyColumn: string): () => AsyncGenerator<KeyedRow> {
  return async function* () {
    for await (const { text, complete } of jsonlLines(file)) {
      if (!complete || text.trim() === "") continue;
      let key: string | null = null;
      try {
        const value = JSON.parse(text) as Record<string, unknown>;
        if (typeof value[keyColumn] === "string") key = value[keyColumn] as string;
      } catch {
        // Not a row: kept as it is, for the reader that reports it.
      }
      yield { key, text: () => `${text}\n` };
    }
  };
}
