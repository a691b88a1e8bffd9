import { readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { parse } from "csv-parse/sync";
import { describe, expect, it } from "vitest";
import { UsageError } from "../../../src/errors.js";
import { readFinishedWork } from "../../../src/sinks/out-file/scan.js";
import { CAPTION_COLUMNS, openCaptionWriter } from "../../../src/sinks/out-file/writers.js";
import type { CaptionRecord } from "../../../src/types.js";
import { useWorkspace } from "../../helpers/workspace.js";

const ws = useWorkspace({ prefix: "caption-writers-" });

function record(p: string, caption = `caption of ${p}`): CaptionRecord {
  return {
    path: p,
    caption,
    model: "MiniCPM-V-4.6-Instruct",
    endpoint: "127.0.0.1:8000",
    width: 640,
    height: 480,
    prompt_tokens: 100,
    completion_tokens: null,
    reasoning_tokens: null,
    attempts: 1,
    latency_ms: 12,
    truncated: false,
    flags: [],
    created_at: "2026-11-25T00:00:00.000Z",
    sha256: "ab".repeat(32),
    prompt_hash: "0123456789ab",
  };
}

const tricky = [
  'a "quoted", comma\nnewline\r\nand crlf',
  "=SUM(A1) unicode ünïcødé 🎉",
  "",
  " leading and trailing space ",
];

describe.each(["csv", "jsonl"] as const)("%s writer", (format) => {
  const file = () => path.join(ws.dir, `out.${format}`);
  const readBack = async (): Promise<Record<string, string | number | boolean | null>[]> => {
    const text = await readFile(file(), "utf8");
    return format === "csv"
      ? parse(text, { columns: true })
      : text
          .trimEnd()
          .split("\n")
          .map((line) => JSON.parse(line));
  };

  it("round-trips hostile captions and file names exactly, with the header once", async () => {
    let writer = await openCaptionWriter(file(), format);
    await writer.write(record(tricky[0] as string, tricky[1]));
    await writer.close();
    writer = await openCaptionWriter(file(), format);
    await Promise.all(tricky.map((t, i) => writer.write(record(`img${i}, "x".jpg`, t))));
    await writer.close();
    const rows = await readBack();
    expect(rows.map((r) => r.caption)).toEqual([tricky[1], ...tricky]);
    expect(rows[0]?.path).toBe(tricky[0]);
    expect(Object.keys(rows[0] ?? {})).toEqual([...CAPTION_COLUMNS]);
    if (format === "csv") {
      const text = await readFile(file(), "utf8");
      expect(text.match(/^path,caption/gm)).toHaveLength(1);
      expect(rows[0]?.truncated).toBe("false");
      expect(rows[0]?.completion_tokens).toBe("");
    } else {
      expect(rows[0]?.truncated).toBe(false);
      expect(rows[0]?.completion_tokens).toBeNull();
    }
  });

  it("resume reads back every path written", async () => {
    const writer = await openCaptionWriter(file(), format);
    for (const t of tricky) await writer.write(record(t));
    await writer.close();
    const finished = await readFinishedWork(file(), format, CAPTION_COLUMNS);
    expect([...finished.done].sort()).toEqual([...tricky].sort());
    expect(finished.rows).toBe(tricky.length);
    expect(finished.repairedBytes).toBe(0);
  });

  it("cuts a torn last record at every possible byte and keeps the rest", async () => {
    const writer = await openCaptionWriter(file(), format);
    await writer.write(record("a.jpg"));
    await writer.write(record("b.jpg", 'multi\nline, "quoted" caption'));
    await writer.close();
    const whole = await readFile(file());
    const before = (await readFinishedWork(file(), format, CAPTION_COLUMNS, { repair: false }))
      .rows;
    expect(before).toBe(2);
    // Tear the file everywhere inside the second record.
    const firstEnd =
      whole.indexOf("a.jpg") + whole.subarray(whole.indexOf("a.jpg")).indexOf(0x0a) + 1;
    for (let cut = firstEnd + 1; cut < whole.length; cut += 1) {
      await writeFile(file(), whole.subarray(0, cut));
      const finished = await readFinishedWork(file(), format, CAPTION_COLUMNS);
      expect([...finished.done], `cut at ${cut}`).toEqual(["a.jpg"]);
      const after = await readFile(file());
      expect(after.length, `cut at ${cut}`).toBe(firstEnd);
      // And the repaired file takes more rows cleanly.
      const again = await openCaptionWriter(file(), format);
      await again.write(record("c.jpg"));
      await again.close();
      expect((await readBack()).map((r) => r.path)).toEqual(["a.jpg", "c.jpg"]);
    }
  });

  it("refuses a file damaged in the middle instead of guessing", async () => {
    const bad =
      format === "csv"
        ? `${CAPTION_COLUMNS.join(",")}\na.jpg,only two\n${Object.values(record("b.jpg")).join(",")}\n`
        : `{"path":"a.jpg"}\nnot json\n{"path":"b.jpg"}\n`;
    await writeFile(file(), bad);
    await expect(readFinishedWork(file(), format, CAPTION_COLUMNS)).rejects.toThrow(UsageError);
    expect(await readFile(file(), "utf8")).toBe(bad);
  });
});

describe("csv resume", () => {
  it("rejects a CSV whose header is not ours", async () => {
    const file = path.join(ws.dir, "other.csv");
    await writeFile(file, "name,text\nx,y\n");
    await expect(readFinishedWork(file, "csv", CAPTION_COLUMNS)).rejects.toThrow(/header/);
  });

  it("treats a torn header as an empty file", async () => {
    const file = path.join(ws.dir, "torn.csv");
    await writeFile(file, "path,capt");
    const finished = await readFinishedWork(file, "csv", CAPTION_COLUMNS);
    expect(finished.rows).toBe(0);
    expect(await readFile(file, "utf8")).toBe("");
  });
});
