/**
 * What a reader of Redis learns of the API key from the names caption keeps there: nothing they
 * can test guesses against cheaply. Through the real CLI against the real Redis of the machine,
 * under the same rules as scale.test.ts (skipped without Redis, an error in CI).
 */
import { createHash, randomBytes } from "node:crypto";
import { Redis } from "ioredis";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { useFakeEndpoint } from "../helpers/fake-endpoint/use.js";
import { REDIS_URL, redisAnswers } from "../helpers/redis.js";
import { collect, runCli, startCli } from "../helpers/run-cli.js";
import { makeDistinctImages, useWorkspace } from "../helpers/workspace.js";

const available = await redisAnswers();
if (!available && process.env.CI) {
  throw new Error(`CI: Redis does not answer at ${REDIS_URL}; .ci/run should have started it`);
}
if (!available) console.warn(`skipping the Redis key tests: no Redis answers at ${REDIS_URL}`);

const ws = useWorkspace();
const fake = useFakeEndpoint("manual");
let queue: string;
let redis: Redis;

beforeEach(() => {
  queue = `test-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  if (available) redis = new Redis(REDIS_URL);
});
afterEach(async () => {
  const port = fake.current?.port;
  await fake.close();
  if (available) {
    // This test's queue and endpoint only; the salt is shared by every queue, and stays.
    const patterns = [`bull:${queue}:*`, `caption:${queue}:*`];
    if (port) patterns.push(`caption:budget:127.0.0.1:${port}:*`);
    for (const pattern of patterns) {
      const keys = await redis.keys(pattern);
      if (keys.length > 0) await redis.del(...keys);
    }
    redis.disconnect();
  }
});

/** Every key name in the whole database, by SCAN. */
async function allNames(): Promise<string[]> {
  const names: string[] = [];
  let cursor = "0";
  do {
    const [next, batch] = await redis.scan(cursor, "COUNT", 1000);
    names.push(...batch);
    cursor = next;
  } while (cursor !== "0");
  return names;
}

/** `caption worker` with this key, until the queue is empty. */
function worker(apiKey: string) {
  return startCli(
    ["worker", "--queue", queue, "--until-empty", "--stall-seconds", "2", "-c", "2"],
    { cwd: ws.dir, baseUrl: fake.current?.baseUrl ?? "", env: { MINICPM_API_KEY: apiKey } },
  );
}

/** Runs `work` while every key name in Redis is gathered, every 50 ms and once after. */
async function namesDuring(work: Promise<unknown>): Promise<Set<string>> {
  const seen = new Set<string>();
  let running = true;
  const watching = (async () => {
    while (running) {
      for (const name of await allNames()) seen.add(name);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  })();
  try {
    await work;
  } finally {
    running = false;
    await watching;
  }
  for (const name of await allNames()) seen.add(name);
  return seen;
}

describe.skipIf(!available)("Redis key names", () => {
  it("hold nothing of the API key a reader could test guesses against, and workers sharing a key share one budget", async () => {
    await fake.start({ latencyMs: 30 });
    // Keys of this test alone, so that no other run's names can match their hashes.
    const keyA = `sk-trust-${randomBytes(12).toString("hex")}`;
    const keyB = `sk-trust-${randomBytes(12).toString("hex")}`;
    await makeDistinctImages(ws.dir, 24);
    const enqueued = await runCli(
      ["enqueue", "photos", "--queue", queue, "--out", "work", "--shard-size", "4"],
      { cwd: ws.dir, baseUrl: fake.baseUrl },
    );
    expect(enqueued.code, enqueued.stderr).toBe(0);

    // Two workers on one key, at once.
    const seenA = await namesDuring(
      Promise.all([collect(worker(keyA)), collect(worker(keyA))]).then((results) => {
        for (const result of results) expect(result.code, result.stderr).toBe(0);
      }),
    );
    // A third on another key, for images added since.
    await makeDistinctImages(ws.dir, 8, "more");
    const grown = await runCli(
      ["enqueue", "photos", "more", "--queue", queue, "--out", "work", "--shard-size", "4"],
      { cwd: ws.dir, baseUrl: fake.baseUrl },
    );
    expect(grown.code, grown.stderr).toBe(0);
    const seenB = await namesDuring(
      collect(worker(keyB)).then((result) => expect(result.code, result.stderr).toBe(0)),
    );

    for (const key of [keyA, keyB]) {
      const digest = createHash("sha256").update(key).digest("hex");
      for (const name of [...seenA, ...seenB]) {
        expect(name).not.toContain(key);
        // Any 6 hex digits of the digest's start: today's names held 12.
        expect(name.toLowerCase()).not.toContain(digest.slice(0, 6));
      }
    }

    // The budgets are still per endpoint and key: one name for the two workers of key A, another
    // for key B's.
    const budget = `caption:budget:127.0.0.1:${fake.port}:`;
    const idsOf = (names: Set<string>) =>
      new Set(
        [...names]
          .filter((name) => name.startsWith(budget))
          .map((name) => name.slice(budget.length).split(":")[0]),
      );
    const [idA, ...moreA] = idsOf(seenA);
    expect(idA).toBeDefined();
    expect(moreA).toEqual([]);
    const idsB = [...idsOf(seenB)].filter((id) => id !== idA);
    expect(idsB).toHaveLength(1);
    expect(idsB[0]).not.toBe(idA);
    // The salt they were made with is in Redis, for every worker to share.
    expect(await redis.get("caption:key-salt")).toMatch(/^[0-9a-f]{32}$/);
  }, 120_000);
});
