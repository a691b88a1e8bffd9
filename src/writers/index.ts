import type { CaptionRecord, OutputFormat } from "../types.js";
import { openCsvWriter } from "./csv.js";
import { openJsonlWriter } from "./jsonl.js";
import type { RecordWriter } from "./writer.js";

export { openCsvWriter } from "./csv.js";
export { openJsonlWriter } from "./jsonl.js";
export type { RecordWriter } from "./writer.js";

/** The columns of OUT, in order. */
export const CAPTION_COLUMNS = [
  "path",
  "caption",
  "model",
  "width",
  "height",
  "prompt_tokens",
  "completion_tokens",
  "attempts",
  "latency_ms",
  "truncated",
  "created_at",
  "sha256",
] as const satisfies readonly (keyof CaptionRecord)[];

export interface CaptionWriterOptions {
  /**
   * Prefix captions that a spreadsheet would run as a formula (=, +, -, @ …) with a quote. CSV only;
   * off by default because datasets need the text unchanged.
   */
  csvFormulaGuard?: boolean;
}

/** Opens OUT for appending in the given format. */
export function openCaptionWriter(
  path: string,
  format: OutputFormat,
  options: CaptionWriterOptions = {},
): Promise<RecordWriter<CaptionRecord>> {
  if (format === "jsonl") return openJsonlWriter<CaptionRecord>(path);
  const guard = options.csvFormulaGuard
    ? (record: CaptionRecord) => ({ ...record, caption: guardFormula(record.caption) })
    : undefined;
  return openCsvWriter<CaptionRecord>(path, CAPTION_COLUMNS, guard);
}

/** Characters that make Excel, LibreOffice and Google Sheets treat a cell as a formula. */
const FORMULA_START = /^[=+\-@\t\r\uFF1D\uFF0B\uFF0D\uFF20]/;

export function guardFormula(text: string): string {
  return FORMULA_START.test(text) ? `'${text}` : text;
}
