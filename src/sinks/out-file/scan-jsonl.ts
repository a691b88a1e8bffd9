import { createReadStream } from "node:fs";
import { damaged, type Scan } from "./scan-result.js";
import { fromJson, type StoredCaption } from "./stored-caption.js";

export async function scanJsonl(path: string, onRow: (row: StoredCaption) => void): Promise<Scan> {
  let rows = 0;
  let offset = 0;
  let lineNumber = 0;
  let carry: Buffer = Buffer.alloc(0);
  for await (const chunk of createReadStream(path)) {
    let buffer = carry.length > 0 ? Buffer.concat([carry, chunk as Buffer]) : (chunk as Buffer);
    let newline = buffer.indexOf(0x0a);
    while (newline !== -1) {
      const line = buffer.subarray(0, newline).toString("utf8");
      lineNumber += 1;
      if (line.trim() !== "") {
        const row = fromJson(line);
        if (row === null) {
          throw damaged(path, `line ${lineNumber}`, "is not a JSON object with a path");
        }
        onRow(row);
        rows += 1;
      }
      offset += newline + 1;
      buffer = buffer.subarray(newline + 1);
      newline = buffer.indexOf(0x0a);
    }
    carry = Buffer.from(buffer);
  }
  // Bytes after the last newline are a record torn by a crash.
  return { rows, goodEnd: offset };
}
