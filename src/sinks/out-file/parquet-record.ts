import path from "node:path";
import type { OutputFormat } from "../../types.js";
import { statOrNull } from "../../util/folders.js";

/**
 * A Parquet OUT's record: the JSONL file beside it that the run appends each row to. A Parquet
 * file has its footer at the end, so it cannot be appended to, and a run killed while writing one
 * would leave nothing readable; the record is kept the way a JSONL OUT is (crash-safe, resumed
 * from, compacted), and the Parquet is written from it. Hidden, so that discovery never takes it
 * for an input: `photos/captions.parquet` → `photos/.captions.parquet.jsonl`.
 */
export function parquetRecordPath(output: string): string {
  return path.join(path.dirname(output), `.${path.basename(output)}.jsonl`);
}

/**
 * Where OUT's rows are read from: for a Parquet OUT, its record when there is one (it holds every
 * row, those of a run still going or killed before it wrote the Parquet too), else the Parquet
 * file itself (copied without its record); any other OUT is read as it is.
 */
export async function rowsSource(
  output: string,
  format: OutputFormat,
): Promise<{ file: string; format: OutputFormat }> {
  if (format !== "parquet") return { file: output, format };
  const record = parquetRecordPath(output);
  if (await statOrNull(record)) return { file: record, format: "jsonl" };
  // An empty file is no Parquet file yet, as an empty CSV is no rows.
  if ((await statOrNull(output))?.size) return { file: output, format: "parquet" };
  return { file: record, format: "jsonl" };
}
