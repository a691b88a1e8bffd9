import { createReadStream } from "node:fs";
import { createInterface } from "node:readline";
import { parse } from "csv-parse";
import type { OutputFormat } from "../../types.js";
import { unguardFormula } from "./csv.js";

/**
 * The records of OUT (or the errors file) one at a time, as objects keyed by column, streamed so
 * that a file of 100,000 rows is never held whole. A torn last line (a run killed mid-write) is
 * skipped, as resume skips it; `onBad` hears of any other line that is not a record.
 */
export async function* readRecords(
  file: string,
  format: OutputFormat,
  onBad: (line: number) => void = () => {},
): AsyncGenerator<Record<string, unknown>> {
  if (format === "csv") {
    // OUT's cells may be guarded (--csv-formula-guard): each is read as it was before. Other CSV
    // files (Hugging Face metadata) are never guarded, and are read exactly as they are.
    let out = false;
    const parser = parse({
      columns: (header: string[]) => {
        const names = header.map(unguardFormula);
        out = names[0] === "path";
        return names;
      },
      relax_column_count: true,
      skip_empty_lines: true,
      bom: true,
    });
    const source = createReadStream(file);
    // A read error (a permission, a disk) ends the parse with it rather than going unheard.
    source.on("error", (error) => parser.destroy(error));
    source.pipe(parser);
    try {
      for await (const record of parser as AsyncIterable<Record<string, unknown>>) {
        yield out ? unguarded(record) : record;
      }
    } catch (error) {
      // A quote left open at the end is the last record torn by a kill: the rest is good.
      if ((error as { code?: string }).code === "CSV_QUOTE_NOT_CLOSED") {
        onBad(-1);
        return;
      }
      throw error;
    }
    return;
  }
  const lines = createInterface({
    input: createReadStream(file),
    crlfDelay: Number.POSITIVE_INFINITY,
  });
  let number = 0;
  let pendingBad: number | null = null;
  for await (const line of lines) {
    number += 1;
    if (line.trim() === "") continue;
    // A bad line is only reported once a good one follows: the last may be a torn write.
    if (pendingBad !== null) {
      onBad(pendingBad);
      pendingBad = null;
    }
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      pendingBad = number;
      continue;
    }
    if (typeof value === "object" && value !== null && !Array.isArray(value)) {
      yield value as Record<string, unknown>;
    }
  }
}

function unguarded(record: Record<string, unknown>): Record<string, unknown> {
  for (const [name, value] of Object.entries(record)) {
    if (typeof value === "string") record[name] = unguardFormula(value);
  }
  return record;
}
