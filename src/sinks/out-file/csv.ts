import { open } from "node:fs/promises";
import { loadWhenNeeded } from "../../util/load.js";
import { csvRecords } from "./records.js";
import { appendingWriter, type RecordWriter } from "./writer.js";

function stringify(...args: Parameters<typeof import("csv-stringify/sync").stringify>): string {
  const { stringify } = loadWhenNeeded("csv-stringify/sync") as typeof import("csv-stringify/sync");
  return stringify(...args);
}

const CSV_OPTIONS = {
  // csv-stringify writes booleans as "1"/"" by default, which reads as noise in a spreadsheet.
  cast: { boolean: (value: boolean) => (value ? "true" : "false") },
  record_delimiter: "\n",
} as const;

/**
 * A cell a spreadsheet (Excel, LibreOffice, Google Sheets) runs as a formula starts with `=`, `+`,
 * `-`, `@`, tab, CR, or a full-width form of the first four. The guard quotes such a start after
 * any number of quotes (so that it can be undone); what it wrote is quotes, then such a start.
 */
const GUARDED = /^'*[=+\-@\t\r\uFF1D\uFF0B\uFF0D\uFF20]/;
const UNGUARD = /^'+[=+\-@\t\r\uFF1D\uFF0B\uFF0D\uFF20]/;

/**
 * `--csv-formula-guard`: a text cell a spreadsheet would run as a formula gets a `'` before it.
 * So that reading OUT back can undo it exactly, a cell that already starts with quotes and then a
 * trigger (`'=x`, `''-x`) gets one more too: the guard maps every text to a distinct cell, and
 * `unguardFormula` takes exactly one quote off every cell of the form quotes-then-trigger.
 *
 * Without the guard, a cell of that form (a file `'=x.jpg`, someone else's folder may hold one)
 * still gets its one more quote (`quoteQuoted`), so reading back is the same whether the guard was
 * on or not. Only a CSV written by a version before this one can hold such a cell unquoted: it is
 * read back with one quote fewer once (that image is captioned again, a second row). JSONL is
 * never guarded and never affected.
 */
export function guardFormula(text: string): string {
  return GUARDED.test(text) ? `'${text}` : text;
}

/** A cell that starts with quotes and then a trigger gets one more, guard or not (see above). */
export function quoteQuoted(text: string): string {
  return text.charCodeAt(0) === 0x27 && UNGUARD.test(text) ? `'${text}` : text;
}

/** What `guardFormula` was given, from what it wrote; text it leaves alone comes back alone. */
export function unguardFormula(text: string): string {
  // A cell rarely starts with a quote: the test of one character keeps reading 100,000 rows cheap.
  return text.charCodeAt(0) === 0x27 && UNGUARD.test(text) ? text.slice(1) : text;
}

export interface CsvWriterOptions {
  /** Guard every text cell, the header's included, with `guardFormula` (else `quoteQuoted`). */
  formulaGuard?: boolean;
}

/** RFC 4180 CSV with the header written once, when the file is new or empty. */
export async function openCsvWriter<T extends object>(
  path: string,
  columns: readonly string[],
  toRow: (record: T) => Record<string, unknown> = (record) => record as Record<string, unknown>,
  options: CsvWriterOptions = {},
): Promise<RecordWriter<T>> {
  const handle = await open(path, "a+");
  const { size } = await handle.stat();
  // A file begun by an older version keeps its own columns, a subset of today's (see scan-csv.ts).
  const written = size === 0 ? columns : await headerOf(path);
  const quote = options.formulaGuard ? guardFormula : quoteQuoted;
  const cell = (value: unknown) => (typeof value === "string" ? quote(value) : value);
  if (size === 0) await handle.write(stringify([columns.map(cell)], CSV_OPTIONS));
  return appendingWriter<T>(handle, (record) => {
    const shown = toRow(record);
    return stringify([written.map((column) => cell(shown[column] ?? ""))], CSV_OPTIONS);
  });
}

/**
 * The columns named by a file's header line, in its order, read as resume reads them
 * (records.ts): rows are written in the file's own columns, leaving empty those this run has no
 * value for (see scan-csv.ts acceptableHeader).
 */
async function headerOf(path: string): Promise<readonly string[]> {
  for await (const { cells } of csvRecords(path)) return cells.map(unguardFormula);
  return [];
}

/** The header of a CSV file, or null when there is no file or nothing in it. */
export async function readCsvHeader(path: string): Promise<readonly string[] | null> {
  try {
    const header = await headerOf(path);
    return header.length > 0 && header.some((name) => name !== "") ? header : null;
  } catch {
    return null;
  }
}
