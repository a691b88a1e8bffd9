import { readdir, readFile, symlink, writeFile } from "node:fs/promises";
import path from "node:path";
import { asyncBufferFromFile, parquetMetadataAsync } from "hyparquet";
import { describe, expect, it } from "vitest";
import { UsageError } from "../../../src/errors.js";
import { chooseOutputFormat, formatFromContent } from "../../../src/settings/output-format.js";
import {
  cellValue,
  ParquetLayout,
  recordOfRow,
} from "../../../src/sinks/out-file/parquet-columns.js";
import { parquetRows, recordFromParquet } from "../../../src/sinks/out-file/parquet-read.js";
import { parquetRecordPath, rowsSource } from "../../../src/sinks/out-file/parquet-record.js";
import {
  ROW_GROUP_ROWS,
  writeParquetFromRecord,
} from "../../../src/sinks/out-file/parquet-write.js";
import { readRecords } from "../../../src/sinks/out-file/read.js";
import { readFinishedWork } from "../../../src/sinks/out-file/scan.js";
import {
  CAPTION_COLUMNS,
  CLIP_COLUMNS,
  openCaptionWriter,
  outColumns,
} from "../../../src/sinks/out-file/writers.js";
import type { CaptionRecord } from "../../../src/types.js";
import { captionRecord } from "../../helpers/caption-record.js";
import { readParquet } from "../../helpers/duckdb.js";
import { useWorkspace } from "../../helpers/workspace.js";

const ws = useWorkspace({ prefix: "caption-parquet-" });

const names = (layout: ParquetLayout) => layout.columns().map((column) => column.name);
const kinds = (layout: ParquetLayout) =>
  Object.fromEntries(layout.columns().map((column) => [column.name, column.kind]));

async function writeRecord(file: string, rows: readonly object[]): Promise<void> {
  await writeFile(file, rows.map((row) => `${JSON.stringify(row)}\n`).join(""));
}

describe("the row → column mapping", () => {
  it("has CSV's columns for a plain run, each of the kind a DuckDB or pandas user expects", () => {
    const layout = new ParquetLayout();
    expect(names(layout)).toEqual([...CAPTION_COLUMNS]);
    expect(kinds(layout)).toEqual({
      path: "string",
      caption: "string",
      model: "string",
      endpoint: "string",
      width: "int32",
      height: "int32",
      prompt_tokens: "int64",
      completion_tokens: "int64",
      reasoning_tokens: "int64",
      attempts: "int32",
      latency_ms: "int64",
      truncated: "boolean",
      flags: "strings",
      created_at: "timestamp",
      sha256: "string",
      prompt_hash: "string",
    });
  });

  it("names the answer's, several prompts' and a clip's columns as CSV does", () => {
    const properties = ["scene", "path", "tags"];
    expect(names(new ParquetLayout({ properties }))).toEqual(outColumns(properties));
    const prompts = { names: ["short", "facts"], fields: { facts: ["objects", "count"] } };
    expect(names(new ParquetLayout({ prompts, clips: true }))).toEqual(
      outColumns([], prompts, true),
    );
    const clips = new ParquetLayout({ clips: true }).columns().slice(CAPTION_COLUMNS.length);
    expect(clips.map((column) => column.name)).toEqual(CLIP_COLUMNS);
    expect(clips.map((column) => column.kind)).toEqual([
      "double",
      "string",
      "int32",
      "double",
      "double",
      "int32",
      "int64",
    ]);
  });

  it("types an answer's field by every value the rows hold, and keeps fields of earlier runs' rows", () => {
    const layout = new ParquetLayout({ properties: ["count", "score", "ok", "tags", "extra"] });
    const rows = [
      { data: { count: 3, score: 1, ok: true, tags: ["a", "b"], extra: { x: 1 }, old: "kept" } },
      { data: { count: null, score: 2.5, ok: false, tags: [], extra: "text" } },
      { data: { count: 7, score: 4, tags: ["c"] } },
    ];
    for (const row of rows) layout.observe(row);
    expect(kinds(layout)).toMatchObject({
      count: "int64",
      score: "double",
      ok: "boolean",
      tags: "strings",
      extra: "string",
      old: "string",
    });
    expect(names(layout).slice(CAPTION_COLUMNS.length)).toEqual([
      "count",
      "score",
      "ok",
      "tags",
      "extra",
      "old",
    ]);
    // A field no row answered yet is text.
    expect(kinds(new ParquetLayout({ properties: ["never"] })).never).toBe("string");
  });

  it("learns several prompts' answers and clips from the rows alone (a merge knows no prompts)", () => {
    const layout = new ParquetLayout();
    layout.observe({
      captions: { short: "A dog.", facts: '{"n":2}' },
      answers: { facts: { n: 2, objects: ["dog", "ball"] } },
      video: { mode: "frames", frames: 8, seconds: 8, segments: 1, bytes: 9000 },
    });
    expect(names(layout).slice(CAPTION_COLUMNS.length)).toEqual([
      "caption_short",
      "caption_facts",
      "facts.n",
      "facts.objects",
      ...CLIP_COLUMNS,
    ]);
    expect(kinds(layout)["facts.objects"]).toBe("strings");
    expect(kinds(layout)["facts.n"]).toBe("int64");
  });

  it("stores a missing or mistyped value as null, never as an empty string or a zero", () => {
    expect(cellValue("int64", null)).toBeNull();
    expect(cellValue("int64", 120)).toBe(120n);
    expect(cellValue("int64", "120")).toBeNull();
    expect(cellValue("int32", 640.5)).toBeNull();
    expect(cellValue("boolean", "true")).toBeNull();
    expect(cellValue("timestamp", "2026-01-02T03:04:05.678Z")).toEqual(
      new Date("2026-01-02T03:04:05.678Z"),
    );
    expect(cellValue("timestamp", "yesterday")).toBeNull();
    expect(cellValue("strings", ["repetition", "truncated"])).toEqual(["repetition", "truncated"]);
    // CSV's joined flags, in a row that came from one.
    expect(cellValue("strings", "repetition, truncated")).toEqual(["repetition", "truncated"]);
    expect(cellValue("string", { x: 1 })).toBe('{"x":1}');
    expect(cellValue("string", undefined)).toBeNull();
  });

  it("reads a row back as the record's row it was written from", () => {
    const row = recordOfRow({
      path: "a.jpg",
      prompt_tokens: 12n,
      completion_tokens: null,
      created_at: new Date("2026-01-02T03:04:05.678Z"),
      flags: ["refusal"],
      "data.path": "inner",
      tags: ["x", "y"],
      video_sent_as: null,
    });
    expect(row).toEqual({
      path: "a.jpg",
      prompt_tokens: 12,
      completion_tokens: null,
      created_at: "2026-01-02T03:04:05.678Z",
      flags: ["refusal"],
      data: { path: "inner", tags: ["x", "y"] },
      tags: ["x", "y"],
    });
  });
});

describe("a Parquet OUT written from its record", () => {
  it("has the columns and types DuckDB expects, nulls where a value is missing, one row per image", async () => {
    const record = path.join(ws.dir, ".out.parquet.jsonl");
    const out = path.join(ws.dir, "out.parquet");
    const clip = { duration: 12.5, mode: "native", frames: 12, fps: 1, seconds: 12, segments: 1 };
    await writeRecord(record, [
      { ...captionRecord("b.jpg"), caption: "old caption", data: { count: 1 } },
      {
        ...captionRecord("a.jpg"),
        caption: 'Ünïcødé, "quoted"\nand a newline 🎉',
        completion_tokens: null,
        truncated: true,
        flags: ["repetition", "truncated"],
        created_at: "2026-01-02T03:04:05.678Z",
        data: { count: 3, objects: ["dog", "ball"], score: 0.5 },
      },
      { ...captionRecord("c.mp4"), video: { ...clip, bytes: 123456 }, data: { count: 2 } },
      // b.jpg made again (a redo): its later row is the one written.
      { ...captionRecord("b.jpg"), caption: "new caption", data: { count: 4 } },
    ]);
    const written = await writeParquetFromRecord(record, out, {
      properties: ["count", "objects", "score"],
    });
    expect(written).toBe(3);
    const { rows, types } = await readParquet(out);
    expect(types).toEqual({
      path: "VARCHAR",
      caption: "VARCHAR",
      model: "VARCHAR",
      endpoint: "VARCHAR",
      width: "INTEGER",
      height: "INTEGER",
      prompt_tokens: "BIGINT",
      completion_tokens: "BIGINT",
      reasoning_tokens: "BIGINT",
      attempts: "INTEGER",
      latency_ms: "BIGINT",
      truncated: "BOOLEAN",
      flags: "VARCHAR[]",
      created_at: "TIMESTAMP WITH TIME ZONE",
      sha256: "VARCHAR",
      prompt_hash: "VARCHAR",
      count: "BIGINT",
      objects: "VARCHAR[]",
      score: "DOUBLE",
      video_duration: "DOUBLE",
      video_sent_as: "VARCHAR",
      video_frames: "INTEGER",
      video_fps: "DOUBLE",
      video_seconds: "DOUBLE",
      video_segments: "INTEGER",
      video_bytes: "BIGINT",
    });
    expect(rows.map((row) => row.path)).toEqual(["a.jpg", "b.jpg", "c.mp4"]);
    const [a, b, c] = rows;
    expect(a).toMatchObject({
      caption: 'Ünïcødé, "quoted"\nand a newline 🎉',
      prompt_tokens: "100",
      completion_tokens: null,
      reasoning_tokens: null,
      truncated: true,
      flags: ["repetition", "truncated"],
      created_at: "2026-01-02 03:04:05.678+00",
      count: "3",
      objects: ["dog", "ball"],
      score: 0.5,
      video_sent_as: null,
    });
    expect(b).toMatchObject({ caption: "new caption", flags: [], count: "4", objects: null });
    expect(c).toMatchObject({
      video_duration: 12.5,
      video_sent_as: "native",
      video_frames: 12,
      video_bytes: "123456",
    });
    // Nothing is left beside it but the record and OUT.
    expect((await readdir(ws.dir)).sort()).toEqual([".out.parquet.jsonl", "out.parquet"]);
  });

  it("writes row groups of ROW_GROUP_ROWS rows, and reads back every row as it was", async () => {
    const record = path.join(ws.dir, ".big.parquet.jsonl");
    const out = path.join(ws.dir, "big.parquet");
    const count = ROW_GROUP_ROWS * 2 + 7;
    const rows = Array.from({ length: count }, (_, i) => ({
      ...captionRecord(`img${String(i).padStart(6, "0")}.jpg`),
      sha256: i.toString(16).padStart(64, "0"),
    }));
    await writeRecord(record, rows);
    expect(await writeParquetFromRecord(record, out)).toBe(count);
    const metadata = await parquetMetadataAsync(await asyncBufferFromFile(out));
    expect(metadata.row_groups.map((group) => Number(group.num_rows))).toEqual([
      ROW_GROUP_ROWS,
      ROW_GROUP_ROWS,
      7,
    ]);
    const { rows: counted } = await readParquet(
      out,
      "select count(*) as n, count(distinct path) as paths from t",
    );
    expect(counted).toEqual([{ n: String(count), paths: String(count) }]);
    const back: Record<string, unknown>[] = [];
    for await (const row of parquetRows(out)) back.push(row);
    expect(back).toEqual(rows);
  });

  it("is written with its columns and no rows from an empty record", async () => {
    const record = path.join(ws.dir, ".empty.parquet.jsonl");
    const out = path.join(ws.dir, "empty.parquet");
    await writeFile(record, "");
    expect(await writeParquetFromRecord(record, out)).toBe(0);
    const { rows, types } = await readParquet(out);
    expect(rows).toEqual([]);
    expect(Object.keys(types)).toEqual([...CAPTION_COLUMNS]);
  });

  it("is never written through a symlink", async () => {
    const record = path.join(ws.dir, ".out.parquet.jsonl");
    await writeRecord(record, [captionRecord("a.jpg")]);
    await writeFile(path.join(ws.dir, "theirs"), "someone else's file");
    await symlink("theirs", path.join(ws.dir, "out.parquet"));
    await expect(
      writeParquetFromRecord(record, path.join(ws.dir, "out.parquet")),
    ).rejects.toMatchObject({ code: "ESYMLINK" });
    expect(await readFile(path.join(ws.dir, "theirs"), "utf8")).toBe("someone else's file");
  });
});

describe("reading a Parquet OUT back", () => {
  const rows: CaptionRecord[] = [
    { ...captionRecord("a.jpg"), sha256: "a".repeat(64) },
    { ...captionRecord("b.jpg"), sha256: "b".repeat(64), flags: ["refusal"] },
  ];

  it("reads the record while there is one, and the Parquet file without it", async () => {
    const out = path.join(ws.dir, "out.parquet");
    const record = parquetRecordPath(out);
    expect(record).toBe(path.join(ws.dir, ".out.parquet.jsonl"));
    expect(await rowsSource(out, "parquet")).toEqual({ file: record, format: "jsonl" });
    await writeRecord(record, rows);
    await writeParquetFromRecord(record, out);
    // The record holds a row the Parquet file does not yet (a run killed before writing it).
    await writeRecord(record, [...rows, captionRecord("c.jpg")]);
    const fromRecord = await readFinishedWork(out, "parquet", outColumns());
    expect([...fromRecord.done].sort()).toEqual(["a.jpg", "b.jpg", "c.jpg"]);

    // The Parquet file copied alone: it is read itself, every row with its hash.
    const { rm } = await import("node:fs/promises");
    await rm(record);
    expect(await rowsSource(out, "parquet")).toEqual({ file: out, format: "parquet" });
    const fromParquet = await readFinishedWork(out, "parquet", outColumns());
    expect([...fromParquet.done].sort()).toEqual(["a.jpg", "b.jpg"]);
    expect([...fromParquet.hashes].sort()).toEqual(["a".repeat(64), "b".repeat(64)]);
    const read: Record<string, unknown>[] = [];
    for await (const row of readRecords(out, "parquet")) read.push(row);
    expect(read).toEqual(rows);

    // Its record made again from it, row for row.
    expect(await recordFromParquet(out, record)).toBe(2);
    const lines = (await readFile(record, "utf8")).trimEnd().split("\n");
    expect(lines.map((line) => JSON.parse(line))).toEqual(rows);
  });

  it("refuses a file that is not a Parquet OUT of caption's, saying so", async () => {
    const out = path.join(ws.dir, "other.parquet");
    await writeFile(out, "PAR1 but nothing else");
    await expect(readFinishedWork(out, "parquet", outColumns())).rejects.toThrow(UsageError);
    await expect(readFinishedWork(out, "parquet", outColumns())).rejects.toThrow(/is not Parquet/);
  });

  it("is what openCaptionWriter writes for a program: rows to the record, OUT on close", async () => {
    const out = path.join(ws.dir, "lib.parquet");
    const writer = await openCaptionWriter(out, "parquet", { properties: ["count"] });
    await writer.write({ ...captionRecord("a.jpg"), data: { count: 2 } });
    await writer.write({ ...captionRecord("b.jpg"), data: { count: 5 } });
    await writer.close();
    const { rows: back, types } = await readParquet(out, "select path, count from t order by path");
    expect(back).toEqual([
      { path: "a.jpg", count: "2" },
      { path: "b.jpg", count: "5" },
    ]);
    expect(types.count).toBe("BIGINT");
  });
});

describe("OUT's format", () => {
  it("is Parquet for a .parquet name, and for a file that starts with PAR1 whatever its name", async () => {
    expect(await chooseOutputFormat(path.join(ws.dir, "new.parquet"), undefined)).toEqual({
      format: "parquet",
      warning: null,
    });
    const record = path.join(ws.dir, ".x.jsonl");
    await writeRecord(record, [captionRecord("a.jpg")]);
    const named = path.join(ws.dir, "captions.data");
    await writeParquetFromRecord(record, named);
    expect(await formatFromContent(named)).toBe("parquet");
    await expect(chooseOutputFormat(path.join(ws.dir, "new.parquet"), "csv")).rejects.toThrow(
      /--format csv contradicts -o new.parquet, whose extension means Parquet/,
    );
  });
});
