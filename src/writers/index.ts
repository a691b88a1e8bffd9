import type { CaptionRecord, OutputFormat } from "../types.js";
import { openCsvWriter } from "./csv.js";
import { openJsonlWriter } from "./jsonl.js";
import type { RecordWriter } from "./writer.js";

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
] as const satisfies readonly (keyof CaptionRecord)[];

/** Opens OUT for appending in the given format. */
export function openCaptionWriter(
  path: string,
  format: OutputFormat,
): Promise<RecordWriter<CaptionRecord>> {
  return format === "csv"
    ? openCsvWriter<CaptionRecord>(path, CAPTION_COLUMNS)
    : openJsonlWriter<CaptionRecord>(path);
}
