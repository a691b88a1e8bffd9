import { jsonlLines } from "./records.js";
import { damaged, type Scan } from "./scan-result.js";
import { fromJson, type StoredCaption } from "./stored-caption.js";

export async function scanJsonl(path: string, onRow: (row: StoredCaption) => void): Promise<Scan> {
  let rows = 0;
  let goodEnd = 0;
  for await (const { text, end, line, complete } of jsonlLines(path)) {
    // Bytes after the last newline are a record torn by a crash.
    if (!complete) break;
    if (text.trim() !== "") {
      const row = fromJson(text);
      if (row === null) throw damaged(path, `line ${line}`, "is not a JSON object with a path");
      onRow(row);
      rows += 1;
    }
    goodEnd = end;
  }
  return { rows, goodEnd };
}
