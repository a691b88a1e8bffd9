import { createReadStream } from "node:fs";
import { loadWhenNeeded } from "../../util/load.js";

const csvParse = () => (loadWhenNeeded("csv-parse") as typeof import("csv-parse")).parse;

/**
 * The one reader of OUT's records, and of the JSONL files beside it (the errors file, a shard's
 * captions): resume reads them strictly through it (sinks/out-file/scan*.ts), merge and the
 * review page leniently (read.ts). Whatever a file holds, both see the same records.
 */

/** A CSV record as it lies in the file: its cells, and, when asked, the byte just past it. */
export interface CsvRecord {
  cells: string[];
  /** Byte offset just past the record (0 unless `positions`). */
  end: number;
  /** The record's last line (0 unless `positions`). */
  line: number;
}

/**
 * The records of a CSV file in order, a byte-order mark skipped. `positions` tracks where each
 * ends, which costs more than the parse itself: only a caller cutting a torn tail asks for it.
 * A file that is not CSV throws csv-parse's error (its `code` starts with "CSV_").
 */
export async function* csvRecords(path: string, positions = false): AsyncGenerator<CsvRecord> {
  const source = createReadStream(path, { highWaterMark: 1 << 20 });
  const parser = source.pipe(
    csvParse()({ info: positions, relax_column_count: true, skip_empty_lines: false, bom: true }),
  );
  // pipe() does not pass read errors on, and an early exit must not leave the file open.
  source.on("error", (error) => parser.destroy(error));
  try {
    for await (const item of parser as AsyncIterable<
      string[] | { record: string[]; info: { bytes: number; lines: number } }
    >) {
      if (Array.isArray(item)) yield { cells: item, end: 0, line: 0 };
      else yield { cells: item.record, end: item.info.bytes, line: item.info.lines };
    }
  } finally {
    source.destroy();
  }
}

/** A line of a JSONL file: its text, the byte just past its newline, and its number. */
export interface JsonlLine {
  text: string;
  end: number;
  line: number;
  /** False for bytes after the last newline: a record a crash may have cut short. */
  complete: boolean;
}

/** The lines of a JSONL file in order, each decoded whole, so a character is never split. */
export async function* jsonlLines(path: string): AsyncGenerator<JsonlLine> {
  let offset = 0;
  let line = 0;
  let carry: Buffer = Buffer.alloc(0);
  for await (const chunk of createReadStream(path)) {
    let buffer = carry.length > 0 ? Buffer.concat([carry, chunk as Buffer]) : (chunk as Buffer);
    let newline = buffer.indexOf(0x0a);
    while (newline !== -1) {
      line += 1;
      offset += newline + 1;
      yield {
        text: buffer.subarray(0, newline).toString("utf8"),
        end: offset,
        line,
        complete: true,
      };
      buffer = buffer.subarray(newline + 1);
      newline = buffer.indexOf(0x0a);
    }
    carry = Buffer.from(buffer);
  }
  if (carry.length > 0) {
    yield {
      text: carry.toString("utf8"),
      end: offset + carry.length,
      line: line + 1,
      complete: false,
    };
  }
}
