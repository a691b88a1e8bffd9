import { readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { readRecords } from "../../../src/sinks/out-file/read.js";
import { readFinishedWork } from "../../../src/sinks/out-file/scan.js";
import { CAPTION_COLUMNS } from "../../../src/sinks/out-file/writers.js";
import { useWorkspace } from "../../helpers/workspace.js";

const ws = useWorkspace();

async function recordsOf(file: string, format: "csv" | "jsonl") {
  const bad: number[] = [];
  const records: Record<string, unknown>[] = [];
  for await (const record of readRecords(file, format, (line) => bad.push(line))) {
    records.push(record);
  }
  return { records, bad };
}

describe("one reader of OUT: resume, merge and the review page see the same records", () => {
  it("a CSV saved with a byte-order mark (as spreadsheets do) is read the same by all", async () => {
    const file = path.join(ws.dir, "out.csv");
    await writeFile(file, '\ufeffpath,caption\nphotos/a.jpg,a cat\nphotos/b.jpg,"a dog, asleep"\n');
    const finished = await readFinishedWork(file, "csv", CAPTION_COLUMNS);
    expect([...finished.done].sort()).toEqual(["photos/a.jpg", "photos/b.jpg"]);
    expect(finished.repairedBytes).toBe(0);
    const { records } = await recordsOf(file, "csv");
    expect(records.map((record) => record.path)).toEqual(["photos/a.jpg", "photos/b.jpg"]);
    expect(records[1]?.caption).toBe("a dog, asleep");
  });

  it("a JSONL torn by a crash: resume cuts the tail, the lenient reader skips it unreported", async () => {
    const file = path.join(ws.dir, "out.jsonl");
    const whole = `${JSON.stringify({ path: "a.jpg", caption: "one" })}\n${JSON.stringify({ path: "b.jpg", caption: "two" })}\n`;
    await writeFile(file, `${whole}{"path":"c.jpg","capt`);
    const { records, bad } = await recordsOf(file, "jsonl");
    expect(records.map((record) => record.path)).toEqual(["a.jpg", "b.jpg"]);
    expect(bad).toEqual([]);
    const finished = await readFinishedWork(file, "jsonl", CAPTION_COLUMNS);
    expect([...finished.done].sort()).toEqual(["a.jpg", "b.jpg"]);
    expect(await readFile(file, "utf8")).toBe(whole);
  });

  it("a line longer than a read, full of two-byte letters, comes back whole", async () => {
    const file = path.join(ws.dir, "long.jsonl");
    const caption = "é".repeat(100_000);
    await writeFile(file, `${JSON.stringify({ path: "a.jpg", caption })}\n`);
    const { records } = await recordsOf(file, "jsonl");
    expect(records[0]?.caption).toBe(caption);
    const rows: string[] = [];
    await readFinishedWork(file, "jsonl", CAPTION_COLUMNS, {
      repair: false,
      onRow: (row) => rows.push(row.caption),
    });
    expect(rows).toEqual([caption]);
  });

  it("a bad line in the middle is reported by the lenient reader and refused by resume", async () => {
    const file = path.join(ws.dir, "bad.jsonl");
    await writeFile(
      file,
      '{"path":"a.jpg","caption":"x"}\nnot json\n{"path":"b.jpg","caption":"y"}\n',
    );
    const { records, bad } = await recordsOf(file, "jsonl");
    expect(records).toHaveLength(2);
    expect(bad).toEqual([2]);
    await expect(readFinishedWork(file, "jsonl", CAPTION_COLUMNS)).rejects.toThrow(
      /line 2 is not a JSON object with a path/,
    );
  });
});
