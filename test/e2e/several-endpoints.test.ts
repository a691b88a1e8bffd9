/**
 * Several endpoints in one run, through the real CLI: work shared by speed, an endpoint that dies
 * taken out while the others finish, every endpoint dead ending the run resumably, and the config
 * file's `endpoints` with keys named by environment variable.
 */
import { writeFile } from "node:fs/promises";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { useFakeEndpoint } from "../helpers/fake-endpoint/use.js";
import type { FakeEndpoint, FakeEndpointOptions } from "../helpers/fake-endpoint.js";
import { runCli, TEST_KEY } from "../helpers/run-cli.js";
import {
  expectOneRowEach,
  makeDistinctImages,
  readCsv,
  useWorkspace,
} from "../helpers/workspace.js";

const ws = useWorkspace();
const fakes = useFakeEndpoint("manual");
/** One more endpoint for this test, closed after it. */
const serve = (options: FakeEndpointOptions = {}) => fakes.startAnother(options);
const label = (fake: FakeEndpoint) => `127.0.0.1:${fake.port}`;
const urls = (...servers: FakeEndpoint[]) =>
  servers.flatMap((fake) => ["--base-url", fake.baseUrl]);
/** The caption CLI with no endpoint from the environment: the flags or the config name them. */
const run = (args: string[], env: Record<string, string> = {}) =>
  runCli(args, { cwd: ws.dir, env: { MINICPM_BASE_URL: undefined, ...env } });

describe("several endpoints", () => {
  it("shares the work by speed: the faster server takes more of it", async () => {
    const images = await makeDistinctImages(ws.dir, 120);
    // Five times as fast, so that a busy machine's own delays cannot even out the two: the
    // fast one's share would be about 5/6, and is asserted only to pass half.
    const fast = await serve({ latencyMs: 40 });
    const slow = await serve({ latencyMs: 200 });
    const result = await run(["photos", "-o", "out.csv", "-c", "4", ...urls(fast, slow)]);
    expect(result.code, result.stderr).toBe(0);
    const rows = await readCsv(path.join(ws.dir, "out.csv"));
    expectOneRowEach(rows, images);
    const byFast = rows.filter((row) => row.endpoint === label(fast)).length;
    const bySlow = rows.filter((row) => row.endpoint === label(slow)).length;
    expect(byFast + bySlow).toBe(120);
    expect(byFast).toBeGreaterThan(bySlow);
    expect(bySlow).toBeGreaterThan(0);
    // Each request went to one server, and none was sent twice.
    expect(fast.requests.length + slow.requests.length).toBe(120);
    expect(result.stderr).toContain(
      `by endpoint: ${label(fast)} ${byFast}, ${label(slow)} ${bySlow}`,
    );
    expect(rows.every((row) => !row.endpoint?.includes(TEST_KEY))).toBe(true);
  }, 60_000);

  it("takes out an endpoint that dies mid-run and finishes on the other, exit 0", async () => {
    const images = await makeDistinctImages(ws.dir, 80);
    const survivor = await serve({ latencyMs: 40 });
    const doomed: FakeEndpoint = await serve({
      latencyMs: 40,
      // Killed at its tenth request: that one and those in flight get their sockets destroyed.
      respond: (request) => {
        if (request.index === 9) void doomed.close();
        return undefined;
      },
    });
    const result = await run(["photos", "-o", "out.csv", "-c", "3", ...urls(doomed, survivor)]);
    expect(result.code, result.stderr).toBe(0);
    expectOneRowEach(await readCsv(path.join(ws.dir, "out.csv")), images);
    expect(result.stderr).toMatch(
      new RegExp(`${label(doomed)} stopped answering .*its images go to the other endpoints`),
    );
    expect(result.stderr).toMatch(/80 captioned, 0 failed/);
  }, 60_000);

  it("ends with exit 1 when every endpoint is down, and a rerun resumes", async () => {
    const images = await makeDistinctImages(ws.dir, 60);
    const dying = async (at: number): Promise<FakeEndpoint> => {
      const fake: FakeEndpoint = await serve({
        latencyMs: 30,
        respond: (request) => {
          if (request.index === at) void fake.close();
          return undefined;
        },
      });
      return fake;
    };
    const a = await dying(8);
    const b = await dying(12);
    const result = await run(["photos", "-o", "out.csv", "-c", "2", ...urls(a, b)]);
    expect(result.code, result.stderr).toBe(1);
    expect(result.stderr).toMatch(/every endpoint stopped answering .*rerun to resume/);
    // The first down hands its images to the other; the last has no other to hand them to.
    const downs = result.stderr
      .split("\n")
      .filter((line) => /^caption: 127\.0\.0\.1:\d+ stopped answering/.test(line));
    expect(downs).toHaveLength(2);
    expect(downs[0]).toMatch(/its images go to the other endpoints, and it is tried again in 30 s/);
    expect(downs[1]).not.toMatch(/other endpoints|tried again/);
    const kept = await readCsv(path.join(ws.dir, "out.csv"));
    expect(kept.length).toBeGreaterThan(0);
    expect(kept.length).toBeLessThan(60);

    const c = await serve();
    const rerun = await run(["photos", "-o", "out.csv", ...urls(c)]);
    expect(rerun.code, rerun.stderr).toBe(0);
    expectOneRowEach(await readCsv(path.join(ws.dir, "out.csv")), images);
    expect(c.requests.length).toBe(60 - kept.length);
  }, 60_000);

  it("a lone endpoint that refuses connections is not said to hand its images to others", async () => {
    await makeDistinctImages(ws.dir, 4);
    const result = await run(["photos", "-o", "out.csv", "--base-url", "http://127.0.0.1:1/v1"]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/127\.0\.0\.1:1 stopped answering/);
    expect(result.stderr).not.toMatch(/other endpoints/);
  }, 60_000);

  it("names the config entry whose key was refused, not the run's own key", async () => {
    await makeDistinctImages(ws.dir, 6);
    const good = await serve();
    const locked = await serve({ apiKey: "sk-someone-else-000" });
    const config = {
      endpoints: [{ baseUrl: good.baseUrl }, { baseUrl: locked.baseUrl, apiKey: "$LOCKED_KEY" }],
    };
    await writeFile(path.join(ws.dir, "two.json"), JSON.stringify(config));
    const result = await run(["photos", "-o", "out.csv", "--config", "two.json"], {
      LOCKED_KEY: "sk-wrong-key-123456",
    });
    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr).toMatch(/check endpoints\[1\]\.apiKey in the config file/);
    expect(result.stderr).not.toContain("sk-wrong-key-123456");
  }, 60_000);

  it("leaves out an endpoint whose key is refused and captions everything on the other", async () => {
    const images = await makeDistinctImages(ws.dir, 30);
    const good = await serve({ latencyMs: 20 });
    const locked = await serve({ apiKey: "sk-someone-else-000" });
    const result = await run(["photos", "-o", "out.csv", "-c", "2", ...urls(locked, good)]);
    expect(result.code, result.stderr).toBe(0);
    expectOneRowEach(await readCsv(path.join(ws.dir, "out.csv")), images);
    expect(result.stderr).toMatch(
      new RegExp(`${label(locked)} is left out for the rest of the run \\(.*401`),
    );
    // Named once, at the start of its line, not again inside the reason.
    expect(result.stderr).not.toContain(`(${label(locked)}: `);
    // No config file: the key to check is the run's own.
    expect(result.stderr).toMatch(/check MINICPM_API_KEY or --api-key/);
    expect(result.stderr).not.toMatch(/endpoints\[\d\]\.apiKey/);
    expect(result.stderr).not.toContain(TEST_KEY);
  }, 60_000);

  it("reads endpoints from a config file, each key from the variable it names", async () => {
    const images = await makeDistinctImages(ws.dir, 20);
    const first = await serve({ apiKey: "sk-first-0000000000" });
    const second = await serve({ apiKey: "sk-second-111111111", models: [{ id: "other-model" }] });
    const config = {
      endpoints: [
        { baseUrl: first.baseUrl, apiKey: "$FIRST_KEY", concurrency: 2 },
        // biome-ignore lint/suspicious/noTemplateCurlyInString: the shell's form, read by caption.
        { baseUrl: second.baseUrl, apiKey: "${SECOND_KEY}", model: "other-model", rpm: 6000 },
      ],
    };
    await writeFile(path.join(ws.dir, "cluster.json"), JSON.stringify(config));
    // A base URL exported in the shell does not replace the file's list.
    const env = {
      FIRST_KEY: "sk-first-0000000000",
      SECOND_KEY: "sk-second-111111111",
      MINICPM_BASE_URL: "http://127.0.0.1:9/v1",
    };
    const result = await run(["photos", "-o", "out.csv", "--config", "cluster.json"], env);
    expect(result.code, result.stderr).toBe(0);
    const rows = await readCsv(path.join(ws.dir, "out.csv"));
    expectOneRowEach(rows, images);
    // Each server got its own key and model, and rows record the model that answered.
    for (const row of rows) {
      expect(row.model).toBe(
        row.endpoint === label(second) ? "other-model" : "MiniCPM-V-4.6-Instruct",
      );
    }
    expect(
      first.requests.every((r) => r.headers.authorization === "Bearer sk-first-0000000000"),
    ).toBe(true);
    expect(second.requests.every((r) => r.model === "other-model")).toBe(true);
    expect(result.stderr).not.toContain("sk-first");
    expect(result.stderr).not.toContain("sk-second");

    const unset = await run(["photos", "-o", "out2.csv", "--config", "cluster.json"], {
      FIRST_KEY: "sk-first-0000000000",
    });
    expect(unset.code).toBe(2);
    expect(unset.stderr).toContain(
      "cluster.json: endpoints[1].apiKey: names the environment variable SECOND_KEY, which is not set",
    );
  }, 60_000);

  it("holds each endpoint to its own concurrency and rpm from the config", async () => {
    const images = await makeDistinctImages(ws.dir, 60);
    const narrow = await serve({ latencyMs: 80 });
    const wide = await serve({ latencyMs: 80 });
    const paced = await serve({ latencyMs: 10 });
    const config = {
      concurrency: 3,
      endpoints: [
        { baseUrl: narrow.baseUrl, concurrency: 1 },
        { baseUrl: wide.baseUrl, concurrency: 6 },
        // One start every 200 ms at most, however fast it answers.
        { baseUrl: paced.baseUrl, rpm: 300 },
      ],
    };
    await writeFile(path.join(ws.dir, "three.json"), JSON.stringify(config));
    const result = await run(["photos", "-o", "out.csv", "--config", "three.json"]);
    expect(result.code, result.stderr).toBe(0);
    expectOneRowEach(await readCsv(path.join(ws.dir, "out.csv")), images);
    expect(narrow.maxInFlight).toBe(1);
    expect(wide.maxInFlight).toBeGreaterThan(3);
    expect(wide.maxInFlight).toBeLessThanOrEqual(6);
    // The paced one, the fastest server, took the fewest: its rpm held it back.
    expect(paced.requests.length).toBeLessThan(wide.requests.length);
    // Its starts were spaced 200 ms apart at the least: a busy machine only spaces them more,
    // and one late arrival shortens one gap, not the span of them all.
    const times = paced.requests.map((r) => r.decidedAt);
    expect(Math.max(...times) - Math.min(...times)).toBeGreaterThan(
      (times.length - 1) * 200 * 0.75,
    );
  }, 60_000);

  it("refuses a base URL given twice, and a bad entry, naming them", async () => {
    await makeDistinctImages(ws.dir, 1);
    const twice = await run([
      "photos",
      "-o",
      "out.csv",
      "--base-url",
      "http://127.0.0.1:9/v1",
      "--base-url",
      "http://127.0.0.1:9/v1/",
    ]);
    expect(twice.code).toBe(2);
    expect(twice.stderr).toContain("--base-url: http://127.0.0.1:9/v1 is given twice");
    await writeFile(
      path.join(ws.dir, "bad.json"),
      JSON.stringify({ endpoints: [{ baseUrl: "gpu1:8000" }, { baseURL: "http://x/v1" }] }),
    );
    const bad = await run(["photos", "-o", "out.csv", "--config", "bad.json"]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain(
      "bad.json: endpoints[0].baseUrl: expected an http:// or https:// URL",
    );
    expect(bad.stderr).toContain(
      'bad.json: endpoints[1]: unknown key "baseURL" (did you mean "baseUrl"?)',
    );
  }, 60_000);
});

/** A -c auto run of `count` images against a batching server, every image once. */
async function autoRun(count: number, batch: number, flags: string[], auto = ["-c", "auto"]) {
  const images = await makeDistinctImages(ws.dir, count);
  const server = await serve({ latencyMs: 100, batch });
  const result = await run(["photos", "-o", "out.csv", ...auto, ...flags, ...urls(server)]);
  expect(result.code, result.stderr).toBe(0);
  expectOneRowEach(await readCsv(path.join(ws.dir, "out.csv")), images);
  return { server, result };
}

describe("-c auto", () => {
  it("raises the number in flight on a batching server until the batch is full, and no further", async () => {
    const { server, result } = await autoRun(240, 12, ["--log-format", "json"]);
    const figures = result.stderr
      .split("\n")
      .filter((line) => line.includes('"event":"concurrency"'))
      .map((line) => JSON.parse(line).allowed as number);
    // It went past where it starts (8) to fill the batch of 12…
    expect(server.maxInFlight).toBeGreaterThan(12);
    // …and settled near it rather than at the maximum of 256.
    expect(figures.at(-1)).toBeGreaterThanOrEqual(12);
    expect(figures.at(-1)).toBeLessThanOrEqual(24);
    expect(server.maxInFlight).toBeLessThanOrEqual(64);
  }, 60_000);

  it("says under -v what -c auto chose, never that a server that sent no 429 is rate limiting", async () => {
    const { result } = await autoRun(120, 24, ["-v"]);
    expect(result.stderr).toMatch(/-c auto: 16 requests in flight/);
    expect(result.stderr).not.toMatch(/rate limiting/);
  }, 60_000);

  it("is what a run without -c gets from a server the user names", async () => {
    const { server, result } = await autoRun(120, 24, ["-v"], []);
    expect(result.stderr).toMatch(/-c auto: 16 requests in flight/);
    expect(server.maxInFlight).toBeGreaterThan(8);
  }, 60_000);

  it("never goes past --max-concurrency, however large the batch", async () => {
    const { server } = await autoRun(160, 64, ["--max-concurrency", "10"]);
    // It starts at 8 and would double to 16 and beyond on a batch of 64.
    expect(server.maxInFlight).toBeGreaterThan(8);
    expect(server.maxInFlight).toBeLessThanOrEqual(10);
  }, 60_000);

  it("warns that --max-concurrency does nothing beside a fixed -c, and only then", async () => {
    await makeDistinctImages(ws.dir, 3);
    const server = await serve();
    const fixed = await run([
      "photos",
      "-o",
      "a.csv",
      "-c",
      "4",
      "--max-concurrency",
      "16",
      ...urls(server),
    ]);
    expect(fixed.code, fixed.stderr).toBe(0);
    expect(fixed.stderr).toMatch(/--max-concurrency only bounds -c auto/);
    const auto = await run([
      "photos",
      "-o",
      "b.csv",
      "-c",
      "auto",
      "--max-concurrency",
      "16",
      ...urls(server),
    ]);
    expect(auto.code, auto.stderr).toBe(0);
    expect(auto.stderr).not.toMatch(/--max-concurrency only/);
  });

  it("refuses a concurrency that is neither a number nor auto, saying both are allowed", async () => {
    await makeDistinctImages(ws.dir, 1);
    const result = await run(["photos", "-o", "out.csv", "-c", "lots"]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(
      '--concurrency: expected a whole number from 1 to 1024 or auto, got "lots"',
    );
  }, 60_000);
});
