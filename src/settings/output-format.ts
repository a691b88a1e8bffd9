import { open } from "node:fs/promises";
import path from "node:path";
import { UsageError } from "../errors.js";
import type { OutputFormat } from "../types.js";
import { statOrNull } from "../util/folders.js";

/** The format a file name implies, or null when its extension names none. */
export function formatFromName(output: string): OutputFormat | null {
  const ext = path.extname(output).toLowerCase();
  if (ext === ".csv") return "csv";
  if (ext === ".jsonl" || ext === ".ndjson") return "jsonl";
  if (ext === ".parquet") return "parquet";
  return null;
}

/**
 * The format an existing OUT was written in, from its first bytes: a Parquet file starts with
 * `PAR1`, JSONL rows are objects, a CSV starts with its header. Null when the file is missing or
 * empty.
 */
export async function formatFromContent(output: string): Promise<OutputFormat | null> {
  // Opening a FIFO to read it would wait for a writer forever.
  if (!(await statOrNull(output))?.isFile()) return null;
  let handle: Awaited<ReturnType<typeof open>>;
  try {
    handle = await open(output, "r");
  } catch {
    return null;
  }
  try {
    const { buffer, bytesRead } = await handle.read(Buffer.alloc(4096), 0, 4096, 0);
    if (bytesRead >= 4 && buffer.toString("latin1", 0, 4) === "PAR1") return "parquet";
    const text = buffer.subarray(0, bytesRead).toString("utf8").trimStart();
    if (text === "") return null;
    return text.startsWith("{") ? "jsonl" : "csv";
  } finally {
    await handle.close();
  }
}

/**
 * Decides OUT's format. An existing OUT is read in the format it holds, whatever its name; a new
 * one takes `--format`, else its extension. A `--format` that contradicts the extension or the
 * content is refused, since writing JSONL into a `.csv` makes a file neither kind of tool reads.
 */
export async function chooseOutputFormat(
  output: string,
  requested: OutputFormat | undefined,
): Promise<{ format: OutputFormat; warning: string | null }> {
  const shown = path.basename(output);
  const byName = formatFromName(output);
  const byContent = await formatFromContent(output);
  if (requested && byContent && requested !== byContent) {
    throw new UsageError([
      `--format ${requested}: ${shown} already holds ${label(byContent)} rows; drop --format to go on with it, or name another -o`,
    ]);
  }
  if (requested && byName && requested !== byName) {
    throw new UsageError([
      `--format ${requested} contradicts -o ${shown}, whose extension means ${label(byName)}; name OUT *.${requested} or drop --format`,
    ]);
  }
  if (byContent) {
    const warning =
      byName && byName !== byContent
        ? `warning: ${shown} holds ${label(byContent)} despite its name; going on in ${label(byContent)} (rename it to avoid surprises in other tools)`
        : null;
    return { format: byContent, warning };
  }
  const format = requested ?? byName;
  if (!format) {
    throw new UsageError([
      `format: cannot tell the format of ${shown} from its name; name it *.csv, *.jsonl or *.parquet, or give the format: csv, jsonl or parquet`,
    ]);
  }
  return { format, warning: null };
}

function label(format: OutputFormat): string {
  return format === "csv" ? "CSV" : format === "jsonl" ? "JSONL" : "Parquet";
}

/** `<OUT stem>.errors.jsonl` beside OUT. */
export function defaultErrorsPath(output: string): string {
  const ext = path.extname(output);
  return path.join(path.dirname(output), `${path.basename(output, ext)}.errors.jsonl`);
}
