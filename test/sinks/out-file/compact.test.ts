import { readFile, stat, writeFile } from "node:fs/promises";
import path from "node:path";
import { parse } from "csv-parse/sync";
import { describe, expect, it } from "vitest";
import { keepLastRows } from "../../../src/sinks/out-file/compact.js";
import { useWorkspace } from "../../helpers/workspace.js";

const ws = useWorkspace();

describe("keepLastRows", () => {
  it("keeps each key's last row, in the order the last rows were written", async () => {
    const file = path.join(ws.dir, "out.jsonl");
    const lines = [
      { path: "a", caption: "old a" },
      { path: "b", caption: "b" },
      { path: "a", caption: "new a" },
      { path: "c", caption: "c" },
    ];
    await writeFile(file, lines.map((line) => `${JSON.stringify(line)}\n`).join(""), {
      mode: 0o640,
    });
    await keepLastRows(file, "jsonl", "path");
    const rows = (await readFile(file, "utf8"))
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line));
    expect(rows).toEqual([lines[1], lines[2], lines[3]]);
    expect((await stat(file)).mode & 0o777).toBe(0o640);
  });

  it("keeps a CSV's header and its cells as they were, quotes and line breaks included", async () => {
    const file = path.join(ws.dir, "out.csv");
    await writeFile(
      file,
      'path,caption\na,"old, with a comma"\nb,"two\nlines"\na,"new ""quoted"""\n',
    );
    await keepLastRows(file, "csv", "path");
    expect(parse(await readFile(file, "utf8"), { columns: true })).toEqual([
      { path: "b", caption: "two\nlines" },
      { path: "a", caption: 'new "quoted"' },
    ]);
  });

  it("leaves a file with one row per key untouched", async () => {
    const file = path.join(ws.dir, "metadata.jsonl");
    await writeFile(file, '{"file_name":"a"}\n{"file_name":"b"}\n');
    const before = (await stat(file)).mtimeMs;
    await keepLastRows(file, "jsonl", "file_name");
    expect((await stat(file)).mtimeMs).toBe(before);
  });
});
