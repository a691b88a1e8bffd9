/**
 * A Parquet OUT through the real CLI: what DuckDB (another Parquet implementation than the
 * writer's) reads of it, column types included; resume after a kill, after failures and from a
 * Parquet file alone; Ctrl-C; --redo; the review page; the library.
 */
import { readFile, rm, stat, symlink, writeFile } from "node:fs/promises";
import path from "node:path";
import { DuckDBInstance } from "@duckdb/node-api";
import { Redis } from "ioredis";
import { afterEach, describe, expect, it } from "vitest";
import { readParquet } from "../helpers/duckdb.js";
import type { RecordedRequest } from "../helpers/fake-endpoint/types.js";
import { useFakeEndpoint } from "../helpers/fake-endpoint/use.js";
import { REDIS_URL, redisAnswers } from "../helpers/redis.js";
import { collect, runCli, startCli } from "../helpers/run-cli.js";
import {
  expectOneRowEach,
  makeDistinctImages,
  readJsonl,
  useWorkspace,
  waitFor,
} from "../helpers/workspace.js";

const ws = useWorkspace();
const fake = useFakeEndpoint("manual");

const run = (args: string[]) => runCli(args, { cwd: ws.dir, baseUrl: fake.current?.baseUrl ?? "" });
const out = () => path.join(ws.dir, "out.parquet");
const record = () => path.join(ws.dir, ".out.parquet.jsonl");
const paths = async (file = out()) =>
  (await readParquet(file, "select path from t order by path")).rows.map(
    (row) => row.path as string,
  );

/** Images are told apart by the width they are sent at: 32 + their number (makeDistinctImages). */
const widthOf = (request: RecordedRequest) => request.image?.width ?? 0;

const CORE_TYPES = {
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
};

describe("-o out.parquet", () => {
  it("writes one row per image with the types DuckDB expects; a rerun sends nothing; --redo replaces a row", async () => {
    const images = await makeDistinctImages(ws.dir, 4);
    let cutting = true;
    await fake.start({
      respond: (request) => {
        // One reply reports no usage, one stops at max_tokens (a flagged, truncated row).
        if (widthOf(request) === 33) return { kind: "ok", usage: null };
        if (cutting && widthOf(request) === 34) {
          return { kind: "ok", content: "A dog on a", finishReason: "length" };
        }
        return undefined;
      },
    });
    const first = await run(["photos", "-o", "out.parquet"]);
    expect(first.code, first.stderr).toBe(0);
    expect(first.stderr).toContain("4 captioned");
    expect(first.stderr).toContain("→ out.parquet");
    const { rows, types } = await readParquet(out());
    expect(types).toEqual(CORE_TYPES);
    expectOneRowEach(rows, images);
    const byWidth = (width: number) => rows.find((row) => row.width === width);
    expect(byWidth(33)).toMatchObject({ prompt_tokens: null, completion_tokens: null });
    expect(byWidth(34)).toMatchObject({ truncated: true, flags: ["truncated"] });
    expect(byWidth(32)).toMatchObject({ truncated: false, flags: [], reasoning_tokens: null });
    expect(Number(byWidth(32)?.prompt_tokens)).toBeGreaterThan(0);
    for (const row of rows) {
      expect(row.caption).toMatch(/^A (test caption|dog)/);
      expect(row.sha256).toMatch(/^[0-9a-f]{64}$/);
    }
    // The run's record beside it, hidden: what resume reads. Its times are the rows' instants.
    const kept = await readJsonl(record());
    expect(kept).toHaveLength(4);
    const times = await readParquet(out(), "select path, epoch_ms(created_at) as ms from t");
    for (const { path: image, ms } of times.rows) {
      const row = kept.find((entry) => entry.path === image);
      expect(Number(ms)).toBe(Date.parse(String(row?.created_at)));
    }

    const sent = fake.requests.length;
    const again = await run(["photos", "-o", "out.parquet"]);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stderr).toContain("nothing to do: all 4 images are already in out.parquet");
    expect(fake.requests.length).toBe(sent);
    expect(await paths()).toEqual([...images].sort());
    // A Parquet file deleted since is written again from the record, with nothing to send.
    await rm(out());
    const restored = await run(["photos", "-o", "out.parquet"]);
    expect(restored.code, restored.stderr).toBe(0);
    expect(fake.requests.length).toBe(sent);
    expect(await paths()).toEqual([...images].sort());

    cutting = false;
    const redo = await run(["photos", "-o", "out.parquet", "--redo", "truncated"]);
    expect(redo.code, redo.stderr).toBe(0);
    expect(fake.requests.length).toBe(sent + 1);
    const after = await readParquet(out());
    expectOneRowEach(after.rows, images);
    expect(after.rows.filter((row) => row.truncated)).toEqual([]);
    // The record was rewritten with one row per image too.
    expect(await readJsonl(record())).toHaveLength(4);

    // The review page reads it like any OUT.
    const report = await run(["report", "out.parquet"]);
    expect(report.code, report.stderr).toBe(0);
    expect(report.stderr).toMatch(/report: 4 captioned, 0 failed, 0 flagged/);
  });

  it("gives a structured answer's fields columns of their own kinds, and several prompts a column each", async () => {
    await makeDistinctImages(ws.dir, 3);
    await fake.start();
    const schema = {
      type: "object",
      properties: {
        description: { type: "string" },
        objects: { type: "array", items: { type: "string" } },
        count: { type: "integer", minimum: 2 },
        score: { type: "number" },
        has_text: { type: "boolean" },
        details: { type: "object", properties: { light: { type: "string" } } },
      },
      required: ["description", "objects", "count", "score", "has_text"],
    };
    await writeFile(path.join(ws.dir, "schema.json"), JSON.stringify(schema));
    const result = await run(["photos", "-o", "out.parquet", "--json-schema", "schema.json"]);
    expect(result.code, result.stderr).toBe(0);
    const { rows, types } = await readParquet(out());
    expect(types).toEqual({
      ...CORE_TYPES,
      description: "VARCHAR",
      objects: "VARCHAR[]",
      count: "BIGINT",
      score: "DOUBLE",
      has_text: "BOOLEAN",
      details: "VARCHAR",
    });
    expect(rows).toHaveLength(3);
    for (const row of rows) {
      expect(row.description).toBe(row.caption);
      expect(row.objects).toHaveLength(3);
      expect(row).toMatchObject({ count: "2", score: 0.5, has_text: true });
      expect(JSON.parse(String(row.details))).toEqual({ light: `light of ${row.caption}` });
    }

    await writeFile(
      path.join(ws.dir, "prompts.yaml"),
      "short: One sentence about the image.\nlong: Describe it in detail.\n",
    );
    const several = await run(["photos", "-o", "two.parquet", "--prompts", "prompts.yaml"]);
    expect(several.code, several.stderr).toBe(0);
    const two = await readParquet(path.join(ws.dir, "two.parquet"));
    expect(two.types).toMatchObject({ caption_short: "VARCHAR", caption_long: "VARCHAR" });
    expect(two.rows).toHaveLength(3);
    for (const row of two.rows) {
      expect(row.caption_short).toMatch(/^A test caption/);
      expect(row.caption_long).toMatch(/^A test caption/);
    }
  });
});

describe("resume", () => {
  it("after SIGKILL: the rerun finishes from the record, and the Parquet file has each image once", async () => {
    const images = await makeDistinctImages(ws.dir, 40);
    await fake.start({ latencyMs: 25 });
    const child = startCli(["photos", "-o", "out.parquet", "-c", "4"], {
      cwd: ws.dir,
      baseUrl: fake.baseUrl,
    });
    const done = collect(child);
    await waitFor(async () => (await readJsonl(record()).catch(() => [])).length >= 5);
    child.kill("SIGKILL");
    expect((await done).signal).toBe("SIGKILL");
    // Killed before the end, the run wrote no Parquet file: its rows are in the record.
    await expect(stat(out())).rejects.toThrow();
    const kept = (await readJsonl(record())).length;
    expect(kept).toBeLessThan(images.length);

    const rerun = await run(["photos", "-o", "out.parquet", "-c", "4"]);
    expect(rerun.code, rerun.stderr).toBe(0);
    expect(rerun.stderr).toMatch(/already done/);
    expect(await paths()).toEqual([...images].sort());
    // Only what was in flight at the kill was sent again.
    expect(fake.requests.length).toBeLessThanOrEqual(images.length + 5);
  }, 60_000);

  it("after failures: exit 3 with the captioned rows in the Parquet file, then a rerun completes it", async () => {
    const images = await makeDistinctImages(ws.dir, 6);
    let failing = true;
    await fake.start({
      respond: (request) =>
        failing && [33, 35].includes(widthOf(request))
          ? { kind: "status", status: 400, body: { error: { message: "bad image" } } }
          : undefined,
    });
    const first = await run(["photos", "-o", "out.parquet"]);
    expect(first.code, first.stderr).toBe(3);
    expect(await paths()).toHaveLength(4);
    expect(await readJsonl(path.join(ws.dir, "out.errors.jsonl"))).toHaveLength(2);
    failing = false;
    const rerun = await run(["photos", "-o", "out.parquet"]);
    expect(rerun.code, rerun.stderr).toBe(0);
    expect(rerun.stderr).toContain("2 captioned");
    expect(await paths()).toEqual([...images].sort());
  });

  it("on Ctrl-C writes the Parquet file of what was done before exiting 130", async () => {
    const images = await makeDistinctImages(ws.dir, 12);
    const server = await fake.start({ latencyMs: 300 });
    const child = startCli(["photos", "-o", "out.parquet", "-c", "2"], {
      cwd: ws.dir,
      baseUrl: server.baseUrl,
    });
    const done = collect(child);
    await waitFor(() => server.inFlight >= 2);
    child.kill("SIGINT");
    const result = await done;
    expect(result.code, result.stderr).toBe(130);
    const written = await paths();
    expect(written.length).toBe(server.requests.length);
    expect(written.length).toBeLessThan(images.length);
  });

  it("from a Parquet file without its record: only the new images are sent, and the record is made again", async () => {
    const first = await makeDistinctImages(ws.dir, 3);
    await fake.start();
    expect((await run(["photos", "-o", "out.parquet"])).code).toBe(0);
    // Copied elsewhere without the hidden record, say.
    await rm(record());
    const all = await makeDistinctImages(ws.dir, 5);
    const sent = fake.requests.length;
    const rerun = await run(["photos", "-o", "out.parquet"]);
    expect(rerun.code, rerun.stderr).toBe(0);
    expect(rerun.stderr).toContain("3 already done");
    expect(fake.requests.length).toBe(sent + all.length - first.length);
    expect(await paths()).toEqual([...all].sort());
    expect(await readJsonl(record())).toHaveLength(5);
  });

  it("refuses a Parquet file caption did not write, and a symlink, before anything is sent", async () => {
    await makeDistinctImages(ws.dir, 2);
    await fake.start();
    const instance = await DuckDBInstance.create(":memory:");
    const connection = await instance.connect();
    await connection.run(
      `copy (select 1 as id, 'x' as name) to '${path.join(ws.dir, "theirs.parquet")}' (format parquet)`,
    );
    connection.closeSync();
    instance.closeSync();
    const result = await run(["photos", "-o", "theirs.parquet"]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('has no "path" and "caption" columns (it has id, name)');
    expect(result.stderr).toContain("or set --overwrite to start a fresh one");
    // Nor is one written through a link, which would be someone else's file.
    await symlink("theirs.parquet", path.join(ws.dir, "link.parquet"));
    const linked = await run(["photos", "-o", "link.parquet"]);
    expect(linked.code).toBe(2);
    expect(linked.stderr).toContain(
      "link.parquet is a symlink, and a Parquet OUT is written whole, never through a link",
    );
    expect(fake.requests).toHaveLength(0);
  });
});

describe("the library", () => {
  it("captionImages({ output: 'x.parquet' }) writes the same Parquet file", async () => {
    const images = await makeDistinctImages(ws.dir, 2);
    await fake.start();
    const { captionImages } = await import("../../src/index.js");
    const summary = await captionImages({
      inputs: ["photos"],
      cwd: ws.dir,
      output: "lib.parquet",
      baseUrl: fake.baseUrl,
      apiKey: "sk-test",
    });
    expect(summary.captioned).toBe(2);
    const { rows, types } = await readParquet(path.join(ws.dir, "lib.parquet"));
    expect(types).toEqual(CORE_TYPES);
    expectOneRowEach(rows, images);
    expect(await readFile(path.join(ws.dir, ".lib.parquet.jsonl"), "utf8")).toContain('"path"');
  });
});

const redis = await redisAnswers(REDIS_URL);
if (!redis && process.env.CI) throw new Error(`CI: Redis does not answer at ${REDIS_URL}`);

describe.skipIf(!redis)("caption merge -o all.parquet", () => {
  const queue = `test-parquet-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  afterEach(async () => {
    const client = new Redis(REDIS_URL);
    try {
      for (const pattern of [`bull:${queue}:*`, `caption:${queue}:*`]) {
        const keys = await client.keys(pattern);
        if (keys.length > 0) await client.del(...keys);
      }
    } finally {
      client.disconnect();
    }
  });

  it("merges the shards into one Parquet file, each image once with its answer's columns, and a run onto it resumes", async () => {
    const images = await makeDistinctImages(ws.dir, 12);
    await fake.start();
    await writeFile(
      path.join(ws.dir, "schema.json"),
      JSON.stringify({
        type: "object",
        properties: { description: { type: "string" }, count: { type: "integer", minimum: 3 } },
        required: ["description", "count"],
      }),
    );
    const enqueued = await run([
      "enqueue",
      "photos",
      "--queue",
      queue,
      "--out",
      "work",
      "--shard-size",
      "5",
      "--json-schema",
      "schema.json",
    ]);
    expect(enqueued.code, enqueued.stderr).toBe(0);
    const worker = await collect(
      startCli(["worker", "--queue", queue, "--until-empty", "--stall-seconds", "2", "-c", "4"], {
        cwd: ws.dir,
        baseUrl: fake.baseUrl,
      }),
    );
    expect(worker.code, worker.stderr).toBe(0);
    const merged = await run(["merge", "work", "-o", "all.parquet"]);
    expect(merged.code, merged.stderr).toBe(0);
    expect(merged.stderr).toMatch(/merged 3 shards: 12 captions → all.parquet, 0 failures/);
    const all = path.join(ws.dir, "all.parquet");
    const { rows, types } = await readParquet(all);
    expect(types).toEqual({ ...CORE_TYPES, description: "VARCHAR", count: "BIGINT" });
    expectOneRowEach(rows, images);
    for (const row of rows) expect(row).toMatchObject({ description: row.caption, count: "3" });

    // A run onto the merged OUT, with the queue's settings, finds every image done.
    const sent = fake.requests.length;
    const onto = await run(["photos", "-o", "all.parquet", "--json-schema", "schema.json"]);
    expect(onto.code, onto.stderr).toBe(0);
    expect(onto.stderr).toContain("nothing to do: all 12 images are already in all.parquet");
    expect(fake.requests.length).toBe(sent);
  }, 60_000);
});
