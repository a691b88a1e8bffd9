/**
 * Many machines on one BullMQ queue, through the real CLI against the real Redis of the machine:
 * enqueue, workers (one killed with SIGKILL mid-shard), merge, enqueue again, a grown folder, a
 * rate limit shared by every worker, SIGTERM releasing a shard, Redis away, the done count after a
 * kill, and the next shard taken while the last images of one are in flight.
 */
import { spawn, spawnSync } from "node:child_process";
import { mkdir, readdir, readFile, rm, symlink, writeFile } from "node:fs/promises";
import path from "node:path";
import { Redis } from "ioredis";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { makeClip } from "../helpers/clips.js";
import { readParquet } from "../helpers/duckdb.js";
import { fakeTotals } from "../helpers/fake-endpoint/usage.js";
import { useFakeEndpoint } from "../helpers/fake-endpoint/use.js";
import type { FakeEndpoint, RecordedRequest } from "../helpers/fake-endpoint.js";
import { freePort } from "../helpers/llama-peer.js";
import { REDIS_URL, redisAnswers } from "../helpers/redis.js";
import { type CliResult, collect, runCli, startCli } from "../helpers/run-cli.js";
import { img2datasetMembers, writeShard } from "../helpers/shards.js";
import { makeDistinctImages, readCsv, useWorkspace } from "../helpers/workspace.js";

const available = await redisAnswers();
/** redis-server itself, to start and stop one of the test's own. */
const redisServer = spawnSync("redis-server", ["--version"]).status === 0;
if (!redisServer && process.env.CI) {
  throw new Error("CI: redis-server is not installed; .ci/run should have installed it");
}
if (available && !redisServer) {
  console.warn("skipping the lost-Redis test: no redis-server binary to start and stop");
}
if (!available && process.env.CI) {
  throw new Error(`CI: Redis does not answer at ${REDIS_URL}; .ci/run should have started it`);
}
if (!available) console.warn(`skipping the scale-out tests: no Redis answers at ${REDIS_URL}`);

const ws = useWorkspace();
const fake = useFakeEndpoint("manual");
let queue: string;
let redis: Redis;

beforeAll(() => {
  if (available) redis = new Redis(REDIS_URL);
});
afterAll(() => {
  redis?.disconnect();
});
beforeEach(() => {
  queue = `test-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
});
afterEach(async () => {
  const port = fake.current?.port;
  await fake.close();
  if (available) {
    // Every key BullMQ and caption keep for this queue and this test's endpoint, nothing else.
    const patterns = [
      `bull:${queue}:*`,
      `bull:${queue}-other:*`,
      `caption:${queue}:*`,
      `caption:${queue}-other:*`,
    ];
    if (port) patterns.push(`caption:budget:127.0.0.1:${port}:*`);
    for (const pattern of patterns) {
      const keys = await redis.keys(pattern);
      if (keys.length > 0) await redis.del(...keys);
    }
  }
});

const run = (args: string[], env: Record<string, string | undefined> = {}) =>
  runCli(args, { cwd: ws.dir, baseUrl: fake.current?.baseUrl ?? "", env });
/** `caption enqueue` of these inputs on this test's queue, into DIR "work". */
const enqueue = (inputs: string[], ...flags: string[]) =>
  run(["enqueue", ...inputs, "--queue", queue, "--out", "work", ...flags]);
/** A worker that exits once the queue is empty, with -c 4 unless `args` say otherwise. */
const worker = (args: string[] = []) =>
  startCli(
    [
      "worker",
      "--queue",
      queue,
      "--until-empty",
      "--stall-seconds",
      "2",
      ...(args.includes("-c") ? [] : ["-c", "4"]),
      ...args,
    ],
    { cwd: ws.dir, baseUrl: fake.current?.baseUrl ?? "" },
  );

async function status(): Promise<{
  shards: Record<string, number>;
  active: { id: string; worker: string | null; done: number }[];
  failed: { id: string; reason: string }[];
  images: { done: number; total: number };
}> {
  const result = await run(["status", "--queue", queue, "--json"]);
  expect(result.code, result.stderr).toBe(0);
  return JSON.parse(result.stdout);
}

async function jobCount(): Promise<number> {
  const counts = await Promise.all(
    ["wait", "active", "completed", "failed", "delayed"].map((state) =>
      state === "wait" || state === "active"
        ? redis.llen(`bull:${queue}:${state}`)
        : redis.zcard(`bull:${queue}:${state}`),
    ),
  );
  return counts.reduce((a, b) => a + b, 0);
}

async function waitFor<T>(what: string, check: () => Promise<T | null>, ms = 30_000): Promise<T> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    const value = await check();
    if (value !== null) return value;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
}

async function rowsOf(file: string): Promise<{ path: string; created_at: string }[]> {
  const text = await readFile(file, "utf8").catch(() => "");
  return text
    .split("\n")
    .filter((line) => line.trim() !== "")
    .flatMap((line) => {
      try {
        return [JSON.parse(line)];
      } catch {
        return [];
      }
    });
}

/** Rows in all the shards' outputs of DIR "work", as a worker left them. */
async function rowsOnDisk(): Promise<number> {
  const shards = path.join(ws.dir, "work", "shards");
  const names = await readdir(shards).catch(() => []);
  const outputs = names.filter((name) => /^shard-[0-9a-f]{16}\.jsonl$/.test(name));
  const counts = await Promise.all(outputs.map((name) => rowsOf(path.join(shards, name))));
  return counts.reduce((sum, rows) => sum + rows.length, 0);
}

/** Images the fake was asked for more than once (told apart by their bytes). */
function sentAgain(endpoint: FakeEndpoint): number {
  const times = new Map<string, number>();
  for (const request of endpoint.requests) {
    const key = request.image?.sha256 ?? "";
    times.set(key, (times.get(key) ?? 0) + 1);
  }
  return [...times.values()].filter((count) => count > 1).length;
}

/** The image a request asks about, from a prompt of "Describe {stem}.", and its shard of 5. */
function imageOf(request: RecordedRequest): { stem: string; shard: number } | null {
  const stem = /Describe (img-(\d{4}))\./.exec(request.prompt ?? "");
  if (!stem?.[1] || !stem[2]) return null;
  return { stem: stem[1], shard: Math.floor(Number(stem[2]) / 5) };
}

describe.skipIf(!available)("many machines on one queue", () => {
  it("three workers, one killed mid-shard: every image once, the killed shard's rows kept; enqueue again adds nothing, a grown folder only new shards", async () => {
    await fake.start({ latencyMs: 150 });
    const images = await makeDistinctImages(ws.dir, 240);
    const enqueued = await enqueue(["photos"], "--shard-size", "40");
    expect(enqueued.code, enqueued.stderr).toBe(0);
    expect(enqueued.stderr).toMatch(/6 new shards \(240 images\)/);
    expect(await jobCount()).toBe(6);

    // -c 2 against 150 ms: a shard of 40 takes about 3 s, time enough to catch one half done.
    const victim = worker(["-c", "2"]);
    const others = [worker(["-c", "2"]), worker(["-c", "2"])];
    const victimName = `:${victim.pid}`;
    // Kill the first worker once its shard has some rows written.
    const held = await waitFor("the victim's shard to be half written", async () => {
      const now = await status();
      const shard = now.active.find((entry) => entry.worker?.endsWith(victimName));
      return shard && shard.done >= 10 ? shard.id : null;
    });
    const victimExit = collect(victim);
    victim.kill("SIGKILL");
    await victimExit;
    const before = await rowsOf(path.join(ws.dir, "work", "shards", `${held}.jsonl`));
    expect(before.length).toBeGreaterThanOrEqual(10);
    const requestsAtKill = fake.requests.length;

    const results: CliResult[] = await Promise.all(others.map(collect));
    for (const result of results) expect(result.code, result.stderr).toBe(0);
    // The killed shard was taken over and finished, from where it stood.
    const after = await rowsOf(path.join(ws.dir, "work", "shards", `${held}.jsonl`));
    for (const row of before) {
      expect(after).toContainEqual(
        expect.objectContaining({ path: row.path, created_at: row.created_at }),
      );
    }
    // Only what the killed worker had in flight was sent again: at most its -c 2.
    expect(fake.requests.length).toBeLessThanOrEqual(240 + 2);
    expect(requestsAtKill).toBeLessThan(240);

    const merged = await run(["merge", "work", "-o", "all.csv"]);
    expect(merged.code, merged.stderr).toBe(0);
    const rows = await readCsv(path.join(ws.dir, "all.csv"));
    expect(rows.map((row) => row.path).sort()).toEqual([...images].sort());
    expect(new Set(rows.map((row) => row.path)).size).toBe(240);
    // Stable: shards in the order made, each by path, so the file is sorted here.
    expect(rows.map((row) => row.path)).toEqual([...rows.map((row) => row.path)].sort());

    const again = await enqueue(["photos"], "--shard-size", "40");
    expect(again.code, again.stderr).toBe(0);
    expect(again.stderr).toMatch(/0 new shards \(0 images\), 0 already queued, 6 done/);
    expect(await jobCount()).toBe(6);

    await makeDistinctImages(ws.dir, 30, "more");
    const grown = await enqueue(["photos", "more"], "--shard-size", "40");
    expect(grown.code, grown.stderr).toBe(0);
    expect(grown.stderr).toMatch(/1 new shards \(30 images\)/);
    expect(await jobCount()).toBe(7);
    const manifests = (await readdir(path.join(ws.dir, "work", "shards"))).filter((name) =>
      /^shard-[0-9a-f]{16}\.json$/.test(name),
    );
    expect(manifests).toHaveLength(7);
  }, 120_000);

  it("clips queued with --video: workers cut them as the queue says, and the merged CSV records what was sent", async () => {
    await fake.start({});
    await makeClip(path.join(ws.dir, "media", "a.mp4"), { seconds: 6, rate: 10 });
    await makeClip(path.join(ws.dir, "media", "b.mkv"), { seconds: 3, rate: 5 });
    await makeDistinctImages(ws.dir, 1, "media");
    const enqueued = await enqueue(["media"], "--video", "--video-seconds", "2");
    expect(enqueued.code, enqueued.stderr).toBe(0);
    expect(enqueued.stderr).toMatch(/\(3 images\)/);
    const result = await collect(worker());
    expect(result.code, result.stderr).toBe(0);
    const merged = await run(["merge", "work", "-o", "all.csv"]);
    expect(merged.code, merged.stderr).toBe(0);
    const rows = await readCsv(path.join(ws.dir, "all.csv"));
    expect(rows.map((row) => [row.path, row.video_sent_as, row.video_seconds])).toEqual([
      ["media/a.mp4", "native", "2"],
      ["media/b.mkv", "native", "2"],
      ["media/img-0000.jpg", "", ""],
    ]);
    const sent = fake.requests.flatMap((request) => (request.video ? [request.video] : []));
    expect(sent.map((video) => Math.round(video.duration ?? 0))).toEqual([2, 2]);
  });

  it("shards queued by their samples: workers read each from inside its shard, and merge writes one row per sample", async () => {
    await fake.start({});
    await writeShard(path.join(ws.dir, "shards", "00000.tar"), await img2datasetMembers(0, 3));
    await writeShard(path.join(ws.dir, "shards", "00001.tar"), [
      ...(await img2datasetMembers(3, 2)),
      { name: "000000009.txt", data: "no image" },
    ]);
    await writeFile(path.join(ws.dir, "shards", "00002.tar"), "not a tar at all ".repeat(64));
    const enqueued = await enqueue(["shards/*.tar"], "--shard-size", "2");
    expect(enqueued.code, enqueued.stderr).toBe(0);
    expect(enqueued.stderr).toMatch(/\(5 images\)/);
    expect(enqueued.stderr).toMatch(/1 sample with no image member .* in shards\/00001\.tar/);
    expect(enqueued.stderr).toMatch(/shards\/00002\.tar is not queued: not a tar archive/);
    const result = await collect(worker());
    expect(result.code, result.stderr).toBe(0);
    const merged = await run(["merge", "work", "-o", "all.parquet", "--sidecar"]);
    expect(merged.code, merged.stderr).toBe(0);
    expect(merged.stderr).toMatch(/5 captioned images lie inside shards or Parquet files/);
    const { rows } = await readParquet(
      path.join(ws.dir, "all.parquet"),
      "select path from t order by path",
    );
    expect(rows.map((row) => String(row.path).replace(`${ws.dir}/`, ""))).toEqual([
      "shards/00000.tar#000000000",
      "shards/00000.tar#000000001",
      "shards/00000.tar#000000002",
      "shards/00001.tar#000000003",
      "shards/00001.tar#000000004",
    ]);
    expect(fake.requests).toHaveLength(5);
  });

  it("workers keep to one token budget for the queue through Redis, stop with exit 4, and a fresh budget at enqueue lets them finish", async () => {
    await fake.start({ latencyMs: 40 });
    const images = await makeDistinctImages(ws.dir, 40);
    // Some eight images' worth: each costs about 35 tokens, its prompt and caption together.
    const budget = 300;
    const enqueued = await enqueue(
      ["photos"],
      "--shard-size",
      "5",
      "--budget-tokens",
      String(budget),
    );
    expect(enqueued.code, enqueued.stderr).toBe(0);
    expect(enqueued.stderr).toContain(`a fresh budget of ${budget} tokens for all its workers`);
    const stopped = await Promise.all([worker(["-c", "2"]), worker(["-c", "2"])].map(collect));
    for (const result of stopped) {
      expect(result.code, result.stderr).toBe(4);
      expect(result.stderr).toContain(`the queue's token budget of ${budget} is reached`);
    }
    const totals = fakeTotals(fake.current as FakeEndpoint);
    const spent = totals.prompt + totals.completion;
    const answers = fake.requests.length;
    expect(answers).toBeLessThan(images.length);
    // Together they pass it by no more than an image's worth per request in flight (2 workers ×
    // -c 2), and one more a worker: what it sent before Redis told it of the other's answers.
    expect(spent).toBeLessThanOrEqual(budget + (4 + 2) * (spent / answers));
    expect(spent).toBeGreaterThan(budget / 2);
    // Status says what the workers spent of it, as the server counted.
    const { budget: shown } = (await status()) as unknown as {
      budget: { tokens: number; spent: { promptTokens: number; completionTokens: number } };
    };
    expect(shown.tokens).toBe(budget);
    expect(shown.spent.promptTokens + shown.spent.completionTokens).toBe(spent);

    const fresh = await enqueue(["photos"], "--budget-tokens", "1000000");
    expect(fresh.code, fresh.stderr).toBe(0);
    const finished = await Promise.all([worker(["-c", "2"]), worker(["-c", "2"])].map(collect));
    for (const result of finished) expect(result.code, result.stderr).toBe(0);
    // Nothing was sent twice: the budget's stop kept every answer it paid for.
    expect(fake.requests.length).toBe(images.length);
    const merged = await run(["merge", "work", "-o", "all.csv"]);
    expect(merged.code, merged.stderr).toBe(0);
    const rows = await readCsv(path.join(ws.dir, "all.csv"));
    expect(rows.map((row) => row.path).sort()).toEqual([...images].sort());
  }, 120_000);

  it("workers share one endpoint's rate limit through Redis: together under it, few 429s", async () => {
    await fake.start({
      latencyMs: 50,
      rateLimit: { perSecond: 20, retryAfter: "1" },
    });
    await makeDistinctImages(ws.dir, 150);
    const enqueued = await enqueue(["photos"], "--shard-size", "25", "--rpm", "1200");
    expect(enqueued.code, enqueued.stderr).toBe(0);
    const results = await Promise.all(
      [worker(["-c", "8"]), worker(["-c", "8"]), worker(["-c", "8"])].map(collect),
    );
    for (const result of results) expect(result.code, result.stderr).toBe(0);
    const limited = fake.requests.filter((r) => r.behavior === "rate-limit").length;
    const accepted = fake.requests.filter((r) => r.behavior !== "rate-limit");
    expect(accepted.length).toBe(150);
    // Three workers alone would each send 20 a second, three times what the server takes, and
    // be refused a third of the time or more; together they kept to the one limit.
    expect(limited / fake.requests.length).toBeLessThan(0.05);
  }, 120_000);

  it("workers with no --rpm learn the limit together from the 429s: under it, few 429s", async () => {
    await fake.start({
      latencyMs: 50,
      rateLimit: { perSecond: 20, retryAfter: "1" },
    });
    await makeDistinctImages(ws.dir, 200);
    await enqueue(["photos"], "--shard-size", "25");
    const results = await Promise.all(
      [worker(["-c", "8"]), worker(["-c", "8"]), worker(["-c", "8"])].map(collect),
    );
    for (const result of results) expect(result.code, result.stderr).toBe(0);
    const limited = fake.requests.filter((r) => r.behavior === "rate-limit").length;
    const accepted = fake.requests.filter((r) => r.behavior !== "rate-limit");
    expect(accepted.length).toBe(200);
    const seen = `${limited} 429s of ${fake.requests.length} requests`;
    // What the workers did, not how fast (the rate they reach is the bench's, P11): they met the
    // limit, and learned one pace for all of them, kept in Redis under the endpoint and key, at
    // most what the server allows.
    expect(limited, seen).toBeGreaterThan(0);
    const paces = await redis.keys(`caption:budget:127.0.0.1:${fake.port}:*:pace`);
    expect(paces, "one learned pace for the endpoint and key").toHaveLength(1);
    const base = Number(await redis.hget(paces[0] as string, "base"));
    expect(base).toBeGreaterThan(0);
    expect(base).toBeLessThanOrEqual(20);
    // Few refusals: a busy machine's jitter costs some, but sending blind against 20/s with 24 in
    // flight every 50 ms would have most of them refused. (Learning alone, each worker refuses
    // the others' share: about 11 %; together, fewer; the margin here is a loaded machine's.)
    expect(limited / fake.requests.length, seen).toBeLessThan(0.25);
  }, 120_000);

  it("SIGTERM finishes the requests in flight and puts the shard back; another worker finishes it", async () => {
    await fake.start({ latencyMs: 100 });
    await makeDistinctImages(ws.dir, 60);
    await enqueue(["photos"], "--shard-size", "60");
    const first = worker();
    const firstExit = collect(first);
    const held = await waitFor("a shard under way", async () => {
      const shard = (await status()).active[0];
      return shard && shard.done >= 8 ? shard.id : null;
    });
    first.kill("SIGTERM");
    const stopped = await firstExit;
    expect(stopped.code).toBe(143);
    expect(stopped.stderr).toMatch(new RegExp(`shard ${held}: released`));
    const back = await status();
    expect((back.shards.waiting ?? 0) + (back.shards.delayed ?? 0)).toBe(1);
    expect(back.failed).toEqual([]);
    const kept = await rowsOf(path.join(ws.dir, "work", "shards", `${held}.jsonl`));
    expect(kept.length).toBeGreaterThanOrEqual(8);

    const second = await collect(worker());
    expect(second.code, second.stderr).toBe(0);
    // Nothing in flight was cut off, so nothing was asked twice.
    expect(fake.requests.length).toBe(60);
    const merged = await run(["merge", "work", "-o", "all.jsonl"]);
    expect(merged.code, merged.stderr).toBe(0);
    const lines = (await readFile(path.join(ws.dir, "all.jsonl"), "utf8")).trim().split("\n");
    expect(lines).toHaveLength(60);
  }, 120_000);

  it("kill -9 of a worker between its progress updates: status counts done as the rows merge writes; at most its -c 4 requests are sent again", async () => {
    await fake.start({ latencyMs: 150 });
    await makeDistinctImages(ws.dir, 40);
    await enqueue(["photos"], "--shard-size", "20");
    const victim = worker();
    const victimExit = collect(victim);
    await waitFor("the victim's first rows", async () => ((await rowsOnDisk()) >= 6 ? true : null));
    // Frozen, it holds rows on disk its last progress update did not count: killed then.
    await waitFor("rows the victim wrote and had not counted yet", async () => {
      victim.kill("SIGSTOP");
      const onDisk = await rowsOnDisk();
      const counted = (await status()).images.done;
      if (onDisk > counted && onDisk < 40) return true;
      victim.kill("SIGCONT");
      await new Promise((resolve) => setTimeout(resolve, 50));
      return null;
    });
    victim.kill("SIGKILL");
    await victimExit;

    const taker = await collect(worker());
    expect(taker.code, taker.stderr).toBe(0);
    const merged = await run(["merge", "work", "-o", "all.csv"]);
    expect(merged.code, merged.stderr).toBe(0);
    expect(await readCsv(path.join(ws.dir, "all.csv"))).toHaveLength(40);
    expect((await status()).images).toMatchObject({ done: 40, total: 40 });
    // Every image asked once, but those the killed worker had out: at most its -c 4.
    expect(sentAgain(fake)).toBeLessThanOrEqual(4);
    expect(fake.requests.length).toBeLessThanOrEqual(40 + 4);
  }, 120_000);

  it("a worker takes its next shard while the last images of the one before are in flight, never more than its -c at once", async () => {
    /** Shard by shard, the images with a request out now. */
    const out = new Map<string, number>();
    /** Shards whose request went out while the shard before still had one out. */
    const overlapped = new Set<number>();
    await fake.start({
      latencyMs: 100,
      respond: (request) => {
        const image = imageOf(request);
        if (!image) return undefined;
        if ([...out.values()].includes(image.shard - 1)) overlapped.add(image.shard);
        out.set(image.stem, image.shard);
        // A shard's first image is slow: the last of its shard in flight, long after the rest.
        return image.stem.endsWith("0") || image.stem.endsWith("5")
          ? { kind: "ok", latencyMs: 2000 }
          : undefined;
      },
      caption: (request) => {
        const image = imageOf(request);
        if (image) out.delete(image.stem);
        return `A small test image named ${image?.stem ?? "unknown"}, plain and square.`;
      },
    });
    await makeDistinctImages(ws.dir, 15);
    const enqueued = await enqueue(["photos"], "--shard-size", "5", "--prompt", "Describe {stem}.");
    expect(enqueued.code, enqueued.stderr).toBe(0);
    const done = await collect(worker());
    expect(done.code, done.stderr).toBe(0);
    // The second and the third shard were sent while the one before was still out.
    expect([...overlapped].sort()).toEqual([1, 2]);
    expect(fake.maxInFlight).toBeLessThanOrEqual(4);
    expect(fake.requests).toHaveLength(15);
    expect((await status()).images).toMatchObject({ done: 15, total: 15 });
  }, 60_000);

  it("a worker killed while it holds two shards costs at most its -c 4 requests", async () => {
    let slow = true;
    const out = new Map<string, number>();
    await fake.start({
      latencyMs: 100,
      respond: (request) => {
        const image = imageOf(request);
        if (!image) return undefined;
        out.set(image.stem, image.shard);
        // The first shard's first image, and every image of the next, are slow: killed then,
        // the worker has its first shard's last image out and as many of the next as -c leaves.
        const held = image.stem === "img-0000" || image.shard === 1;
        return slow && held ? { kind: "ok", latencyMs: 60_000 } : undefined;
      },
      caption: (request) => {
        const image = imageOf(request);
        if (image) out.delete(image.stem);
        return `A small test image named ${image?.stem ?? "unknown"}, plain and square.`;
      },
    });
    await makeDistinctImages(ws.dir, 15);
    await enqueue(["photos"], "--shard-size", "5", "--prompt", "Describe {stem}.");
    const victim = worker();
    const victimExit = collect(victim);
    const outOf = (shard: number) => [...out.values()].filter((of) => of === shard).length;
    await waitFor("the next shard's requests beside the first's last", async () =>
      outOf(0) === 1 && outOf(1) >= 3 ? true : null,
    );
    // Room for one more, if the worker would take it.
    await new Promise((resolve) => setTimeout(resolve, 500));
    const atKill = fake.inFlight;
    victim.kill("SIGKILL");
    await victimExit;
    slow = false;
    expect(atKill).toBeLessThanOrEqual(4);

    const taker = await collect(worker());
    expect(taker.code, taker.stderr).toBe(0);
    expect(sentAgain(fake)).toBeLessThanOrEqual(4);
    expect(fake.requests.length).toBeLessThanOrEqual(15 + 4);
    const merged = await run(["merge", "work", "-o", "all.csv"]);
    expect(merged.code, merged.stderr).toBe(0);
    expect(await readCsv(path.join(ws.dir, "all.csv"))).toHaveLength(15);
    expect((await status()).images).toMatchObject({ done: 15, total: 15 });
  }, 120_000);

  it("SIGINT puts the shard back as waiting, and status says so, not delayed", async () => {
    await fake.start({ latencyMs: 100 });
    await makeDistinctImages(ws.dir, 40);
    await enqueue(["photos"], "--shard-size", "40");
    const first = worker();
    const firstExit = collect(first);
    await waitFor("a shard under way", async () => ((await rowsOnDisk()) >= 4 ? true : null));
    first.kill("SIGINT");
    const stopped = await firstExit;
    expect(stopped.code).toBe(130);
    expect(stopped.stderr).toMatch(/released/);
    const back = await status();
    expect(back.shards).toMatchObject({ waiting: 1, delayed: 0, failed: 0 });
    const shown = await run(["status", "--queue", queue]);
    expect(shown.stdout).toMatch(/: 1 shards waiting, 0 active, 0 completed, 0 failed\n/);
    expect(shown.stdout).not.toMatch(/delayed|retrying/);
  }, 60_000);

  it("enqueue walks no folder link out of its input, unless --follow-symlinks", async () => {
    await makeDistinctImages(ws.dir, 3, "photos");
    await makeDistinctImages(ws.dir, 2, "elsewhere");
    await symlink(path.join(ws.dir, "elsewhere"), path.join(ws.dir, "photos", "link"));
    const plain = await enqueue(["photos"]);
    expect(plain.code, plain.stderr).toBe(0);
    expect(plain.stderr).toMatch(/1 symlink to a folder outside the input was not followed/);
    expect(plain.stderr).toMatch(/3 images in all/);
    const followed = await enqueue(["photos"], "--follow-symlinks");
    expect(followed.code, followed.stderr).toBe(0);
    expect(followed.stderr).toMatch(/5 images in all/);
  }, 60_000);

  it("a model the worker's server does not serve puts the shard back and stops that worker, exit 1", async () => {
    await fake.start({
      models: [{ id: "MiniCPM-V-4.6-1B" }, { id: "MiniCPM-V-4.6-Thinking" }],
    });
    await makeDistinctImages(ws.dir, 20);
    await enqueue(["photos"], "--shard-size", "5", "-m", "MiniCPM-V-4.6-Instruc");
    const stopped = await collect(worker());
    expect(stopped.code, stopped.stderr).toBe(1);
    expect(stopped.stderr).toMatch(/does not serve MiniCPM-V-4\.6-Instruc/);
    expect(stopped.stderr).toMatch(/every shard would fail alike/);
    expect(stopped.stderr.match(/worker stopped/g)).toHaveLength(1);
    // Nothing was sent, no shard failed or used an attempt.
    expect(fake.requests).toHaveLength(0);
    const after = await status();
    expect(after.failed).toEqual([]);
    expect(after.shards.waiting).toBe(4);
  }, 60_000);

  it("a wrong key at one worker puts the shard back for others and stops that worker, no attempt used", async () => {
    await fake.start({ apiKey: "sk-the-right-one-0000" });
    await makeDistinctImages(ws.dir, 30);
    await enqueue(["photos"], "--shard-size", "10");
    const wrong = await collect(worker());
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toMatch(/rejected the API key/);
    expect(wrong.stderr).toMatch(/every shard would fail alike/);
    // What it advises is a command that works as written (with the key fixed).
    const advised = /then start the worker again \((caption worker --queue \S+) …\)/.exec(
      wrong.stderr,
    )?.[1];
    expect(advised, wrong.stderr).toBe(`caption worker --queue ${queue}`);
    // One shard tried, and given back; no image was asked more than once.
    expect(fake.requests.length).toBeLessThanOrEqual(4);
    const after = await status();
    expect(after.failed).toEqual([]);
    expect((after.shards.waiting ?? 0) + (after.shards.delayed ?? 0)).toBe(3);

    const right = await collect(
      startCli([...(advised ?? "").split(" ").slice(1), "--until-empty", "--stall-seconds", "2"], {
        cwd: ws.dir,
        baseUrl: fake.baseUrl,
        env: { MINICPM_API_KEY: "sk-the-right-one-0000" },
      }),
    );
    expect(right.code, right.stderr).toBe(0);
    const merged = await run(["merge", "work", "-o", "all.csv"]);
    expect(merged.code, merged.stderr).toBe(0);
    expect(await readCsv(path.join(ws.dir, "all.csv"))).toHaveLength(30);
    expect(merged.stderr + right.stderr).not.toContain("sk-the-right-one");
  }, 60_000);

  it("a worker's message about a setting the queue fixed sends the user to enqueue, not to the worker's config", async () => {
    await fake.start({
      respond: () => ({
        kind: "ok",
        content: null,
        reasoning: "Let me think",
        finishReason: "length",
      }),
    });
    await makeDistinctImages(ws.dir, 2);
    await writeFile(path.join(ws.dir, "run.json"), JSON.stringify({ maxTokens: 99 }));
    expect((await enqueue(["photos"], "--max-tokens", "64")).code).toBe(0);
    const done = await collect(worker(["--config", "run.json"]));
    expect(done.code, done.stderr).toBe(0);
    const shards = path.join(ws.dir, "work", "shards");
    const errors = (await readdir(shards)).filter((name) => name.endsWith(".errors.jsonl"));
    const rows = (await Promise.all(errors.map((name) => rowsOf(path.join(shards, name))))).flat();
    expect(rows).toHaveLength(2);
    for (const row of rows) {
      expect(String((row as { message?: unknown }).message)).toMatch(
        new RegExp(
          `raise --max-tokens of a new \`caption enqueue\` \\(queue ${queue} keeps its own\\)`,
        ),
      );
    }
    expect(fake.requests[0]?.body).toMatchObject({ max_tokens: 64 });
  }, 60_000);

  it("a shard whose own output is damaged fails with its reason, and --retry-failed gives it its attempts again", async () => {
    await fake.start();
    await makeDistinctImages(ws.dir, 10);
    await enqueue(["photos"], "--shard-attempts", "1");
    const id = (await readdir(path.join(ws.dir, "work", "shards")))
      .find((name) => name.endsWith(".json"))
      ?.replace(/\.json$/, "");
    const output = path.join(ws.dir, "work", "shards", `${id}.jsonl`);
    // Damage in the middle of the file, not a torn last line: not the worker's to guess at.
    await writeFile(
      output,
      `{"path":"photos/img-0000.jpg"}\nnot json at all\n{"path":"photos/img-0001.jpg"}\n`,
    );
    const failing = await collect(worker());
    expect(failing.code, failing.stderr).toBe(0);
    const failed = await status();
    expect(failed.failed).toHaveLength(1);
    expect(failed.failed[0]?.reason).toContain(`${id}.jsonl`);
    expect(fake.requests.length).toBe(0);

    await rm(output);
    const retried = await enqueue(["photos"], "--retry-failed");
    expect(retried.code, retried.stderr).toBe(0);
    expect(retried.stderr).toMatch(/1 failed shards retried/);
    const done = await collect(worker());
    expect(done.code, done.stderr).toBe(0);
    expect((await status()).shards.completed).toBe(1);
  }, 60_000);

  it("an image deleted after enqueue is a failure row, not lost; a DIR belongs to one queue", async () => {
    await fake.start();
    await makeDistinctImages(ws.dir, 6);
    await enqueue(["photos"]);
    await rm(path.join(ws.dir, "photos", "img-0002.jpg"));
    const done = await collect(worker());
    expect(done.code, done.stderr).toBe(0);
    expect(done.stderr).toMatch(/1 images are gone since they were enqueued/);
    const merged = await run(["merge", "work", "-o", "all.csv"]);
    expect(merged.code).toBe(3);
    expect(await readCsv(path.join(ws.dir, "all.csv"))).toHaveLength(5);
    const errors = (await readFile(path.join(ws.dir, "all.errors.jsonl"), "utf8"))
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line));
    expect(errors).toEqual([
      expect.objectContaining({ path: "photos/img-0002.jpg", code: "file_missing" }),
    ]);
    const other = await run(["enqueue", "photos", "--queue", `${queue}-other`, "--out", "work"]);
    expect(other.code).toBe(2);
    expect(other.stderr).toContain(`holds the shards of queue ${queue}`);
  }, 60_000);

  it.skipIf(!redisServer)(
    "a worker that loses Redis mid-shard keeps the shard, reconnects, and finishes",
    async () => {
      // A Redis of its own, so stopping it leaves the machine's alone; it keeps its data on disk
      // across the restart, as a production Redis would.
      const port = await freePort();
      const data = path.join(ws.dir, "redis-data");
      await mkdir(data);
      const startRedis = () =>
        spawn(
          "redis-server",
          [
            "--port",
            String(port),
            "--bind",
            "127.0.0.1",
            "--dir",
            data,
            "--appendonly",
            "yes",
            "--save",
            "",
          ],
          { stdio: "ignore" },
        );
      let server = startRedis();
      const url = `redis://127.0.0.1:${port}`;
      await waitFor("its Redis", async () => ((await redisAnswers(url)) ? true : null));
      await fake.start({ latencyMs: 150 });
      await makeDistinctImages(ws.dir, 40);
      const enqueued = await enqueue(["photos"], "--shard-size", "20", "--redis", url);
      expect(enqueued.code, enqueued.stderr).toBe(0);
      const child = startCli(
        [
          "worker",
          "--queue",
          queue,
          "--until-empty",
          "--stall-seconds",
          "5",
          "-c",
          "2",
          "--redis",
          url,
        ],
        { cwd: ws.dir, baseUrl: fake.baseUrl },
      );
      const exit = collect(child);
      await waitFor("the first shard under way", async () =>
        fake.requests.length >= 4 ? true : null,
      );
      server.kill("SIGKILL");
      await new Promise((resolve) => server.once("exit", resolve));
      const during = fake.requests.length;
      await new Promise((resolve) => setTimeout(resolve, 1500));
      // The shard in hand went on without Redis.
      expect(fake.requests.length).toBeGreaterThan(during);
      server = startRedis();
      try {
        const result = await exit;
        expect(result.code, result.stderr).toBe(0);
        expect(result.stderr).toMatch(/lost Redis/);
        expect(result.stderr).toMatch(/Redis is back/);
        expect(fake.requests.length).toBe(40);
        const merged = await run(["merge", "work", "-o", "all.csv"]);
        expect(merged.code, merged.stderr).toBe(0);
        expect(await readCsv(path.join(ws.dir, "all.csv"))).toHaveLength(40);
      } finally {
        server.kill("SIGKILL");
      }
    },
    90_000,
  );

  it("merges into the dataset outputs: sidecars beside the images and Hugging Face metadata, a user's own sidecar kept", async () => {
    await fake.start();
    const images = await makeDistinctImages(ws.dir, 12);
    await writeFile(path.join(ws.dir, "photos", "img-0003.txt"), "my own words");
    await enqueue(["photos"], "--shard-size", "5");
    const done = await collect(worker());
    expect(done.code, done.stderr).toBe(0);
    const merged = await run(["merge", "work", "--sidecar", "--hf-metadata"]);
    expect(merged.code, merged.stderr).toBe(0);
    for (const image of images) {
      const sidecar = path.join(ws.dir, image.replace(/\.jpg$/, ".txt"));
      const text = await readFile(sidecar, "utf8");
      if (image.endsWith("img-0003.jpg")) expect(text).toBe("my own words");
      else expect(text.length).toBeGreaterThan(10);
    }
    const metadata = (await readFile(path.join(ws.dir, "photos", "metadata.jsonl"), "utf8"))
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line));
    expect(metadata.map((row) => row.file_name).sort()).toEqual(
      images.map((image) => path.basename(image)).sort(),
    );
    // Merging again adds nothing twice.
    const again = await run(["merge", "work", "--hf-metadata"]);
    expect(again.code, again.stderr).toBe(0);
    expect(
      (await readFile(path.join(ws.dir, "photos", "metadata.jsonl"), "utf8")).trim().split("\n"),
    ).toHaveLength(12);
  }, 60_000);

  it("refuses other settings for a queue, and a merge of unfinished shards without --partial", async () => {
    await fake.start();
    await makeDistinctImages(ws.dir, 5);
    const first = await enqueue(["photos"], "--prompt", "Describe it.");
    expect(first.code, first.stderr).toBe(0);
    const other = await enqueue(["photos"], "--prompt", "Tag it.");
    expect(other.code).toBe(2);
    expect(other.stderr).toMatch(
      /--queue .*: was enqueued with prompt "Describe it\.", not "Tag it\."/,
    );
    // Piped, status prints its lines once.
    const shown = await run(["status", "--queue", queue]);
    expect(shown.code, shown.stderr).toBe(0);
    expect(shown.stdout).toMatch(
      new RegExp(
        `^queue ${queue}: 1 shards waiting, 0 active, 0 completed, 0 failed\nimages: 0 of 5 done`,
      ),
    );
    const early = await run(["merge", "work", "-o", "all.csv"]);
    expect(early.code).toBe(2);
    expect(early.stderr).toMatch(/1 of 1 shards are not finished yet .*--partial/);
    const partial = await run(["merge", "work", "-o", "all.csv", "--partial"]);
    expect(partial.code, partial.stderr).toBe(0);
    expect(await readCsv(path.join(ws.dir, "all.csv"))).toHaveLength(0);
  }, 60_000);

  it("takes the queue and Redis from a config file, as every worker's --config", async () => {
    await fake.start();
    await makeDistinctImages(ws.dir, 3);
    await writeFile(
      path.join(ws.dir, "queue.json"),
      JSON.stringify({ queue, redis: REDIS_URL, shardSize: 2, shardFolder: "work" }),
    );
    const enqueued = await run(["enqueue", "photos", "--config", "queue.json"]);
    expect(enqueued.code, enqueued.stderr).toBe(0);
    expect(enqueued.stderr).toContain("2 new shards (3 images)");
    const done = await collect(
      startCli(["worker", "--config", "queue.json", "--until-empty", "-c", "2"], {
        cwd: ws.dir,
        baseUrl: fake.current?.baseUrl ?? "",
      }),
    );
    expect(done.code, done.stderr).toBe(0);
    const shown = await run(["status", "--config", "queue.json", "--json"]);
    expect(shown.code, shown.stderr).toBe(0);
    expect(JSON.parse(shown.stdout).images).toMatchObject({ done: 3, total: 3 });
    // The folder is relative to the config file, as every path in one is.
    expect(await readdir(path.join(ws.dir, "work"))).toContain("queue.json");
  });
});

describe("Redis away", () => {
  it("reports every bad or missing setting of enqueue and worker at once, exit 2, before Redis", async () => {
    const enqueued = await runCli(
      [
        "enqueue",
        "photos",
        "--shard-size",
        "0",
        "--shard-backoff",
        "soon",
        "--redis",
        "http://u:pw@host",
      ],
      { cwd: ws.dir },
    );
    expect(enqueued.code).toBe(2);
    const lines = enqueued.stderr.split("\n");
    for (const problem of [
      /--shard-size: expected a whole number from 1 to 1000000, got 0/,
      /--shard-backoff: expected a whole number .* got "soon"/,
      /--redis: expected a redis:\/\/ or rediss:\/\/ URL/,
      /--queue: required/,
      /--out: required/,
    ]) {
      expect(
        lines.some((line) => problem.test(line)),
        `${problem} in ${enqueued.stderr}`,
      ).toBe(true);
    }
    expect(enqueued.stderr).not.toContain("pw");
    const worked = await runCli(["worker", "--queue", "a:b", "--stall-seconds", "0"], {
      cwd: ws.dir,
    });
    expect(worked.code).toBe(2);
    expect(worked.stderr).toMatch(/--queue: expected a name of letters.*got "a:b"/);
    expect(worked.stderr).toMatch(/--stall-seconds: expected a whole number/);
  });

  it("says so and exits 1 when Redis does not answer at start", async () => {
    const result = await runCli(["worker", "--queue", "q", "--redis", "redis://127.0.0.1:9"], {
      cwd: ws.dir,
    });
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(
      /cannot reach Redis at redis:\/\/127\.0\.0\.1:9 \(.*ECONNREFUSED.*\); start it \(redis-server\) or point --redis or CAPTION_REDIS_URL at it/,
    );
    expect(result.stderr).not.toMatch(/\n\s+at /);
  });
});
