import { cellOf } from "../../answer/json-answer.js";
import type { CaptionRecord, OutputFormat } from "../../types.js";
import {
  answerColumns,
  CLIP_CELLS,
  outColumns,
  type PromptColumns,
  promptColumns,
} from "./columns.js";
import { openCsvWriter } from "./csv.js";
import { openJsonlWriter } from "./jsonl.js";
import type { RecordWriter } from "./writer.js";

// OUT's columns live in columns.ts, which the Parquet writer reads too; named here as before.
export {
  answerColumns,
  CAPTION_COLUMNS,
  CAPTION_PREFIX,
  CLIP_COLUMNS,
  outColumns,
  type PromptColumns,
} from "./columns.js";
export { guardFormula, openCsvWriter, readCsvHeader, unguardFormula } from "./csv.js";
export { openJsonlWriter } from "./jsonl.js";
export type { RecordWriter } from "./writer.js";

export interface CaptionWriterOptions {
  /** The structured answer's top-level properties, when a JSON Schema was asked for. */
  properties?: readonly string[];
  /** Several prompts' columns (`--prompts`), instead of `properties`. */
  prompts?: PromptColumns | undefined;
  /**
   * Prefix every text cell (the path, the caption, the model, the flags, an answer's columns, the
   * header) that a spreadsheet would run as a formula (=, +, -, @ …) with a quote, undone wherever
   * OUT is read back (`guardFormula`). CSV only; off by default because datasets need the text
   * unchanged.
   */
  csvFormulaGuard?: boolean;
  /** The run may caption clips: CLIP_COLUMNS too. */
  clips?: boolean | undefined;
}

/**
 * Opens OUT for appending in the given format. A Parquet OUT's rows are appended to its record
 * beside it, and OUT is written from the record on close (parquet-write.ts).
 */
export async function openCaptionWriter(
  path: string,
  format: OutputFormat,
  options: CaptionWriterOptions = {},
): Promise<RecordWriter<CaptionRecord>> {
  if (format === "jsonl") return openJsonlWriter<CaptionRecord>(path);
  if (format === "parquet") {
    // Loaded when asked for: most runs never write Parquet.
    const { openParquetWriter } = await import("./parquet-write.js");
    return openParquetWriter(path, options);
  }
  const extra = [
    ...(options.prompts
      ? promptColumns(options.prompts)
      : answerColumns(options.properties ?? []).map(({ property, column }) => ({
          column,
          cell: (record: CaptionRecord) => cellOf(record.data?.[property]),
        }))),
    ...(options.clips
      ? CLIP_CELLS.map(({ column, cell }) => ({
          column,
          cell: (record: CaptionRecord) => (record.video ? cell(record.video) : ""),
        }))
      : []),
  ];
  return openCsvWriter<CaptionRecord>(
    path,
    outColumns(options.properties, options.prompts, options.clips),
    (record) => {
      const { video: _clip, ...fields } = record;
      const row: Record<string, unknown> = { ...fields, flags: record.flags.join(", ") };
      for (const { column, cell } of extra) row[column] = cell(record);
      return row;
    },
    { formulaGuard: options.csvFormulaGuard === true },
  );
}
