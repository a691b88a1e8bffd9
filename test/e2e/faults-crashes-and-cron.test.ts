import { copyFile, mkdir, readdir, readFile, stat, writeFile } from "node:fs/promises";
import path from "node:path";
import { setTimeout as delay } from "node:timers/promises";
import { describe, expect, it } from "vitest";
import { useFakeEndpoint } from "../helpers/fake-endpoint/use.js";
import type { FakeEndpoint } from "../helpers/fake-endpoint.js";
import { collect, runCli, startCli, TEST_KEY } from "../helpers/run-cli.js";
import {
  expectOneRowEach,
  makeDistinctImages,
  readCsv,
  readJsonl,
  useWorkspace,
  waitFor,
  waitForRows,
} from "../helpers/workspace.js";

const ws = useWorkspace();
const fake = useFakeEndpoint("manual");

/** Starts `caption photos -o out.csv -c N` against `server`; `done` is its result to come. */
function startRun(server: FakeEndpoint, concurrency: number) {
  const child = startCli(["photos", "-o", "out.csv", "-c", String(concurrency)], {
    cwd: ws.dir,
    baseUrl: server.baseUrl,
  });
  return { child, done: collect(child) };
}

describe("endpoint faults", () => {
  it("soaks 200 images through 30 % faults of every kind: each captioned exactly once, exit 0", async () => {
    const images = await makeDistinctImages(ws.dir, 200);
    await fake.start({
      faultRate: 0.3,
      faults: ["429", "500", "503", "reset", "hang", "malformed", "html502", "empty-choices"],
      seed: 2026,
      latencyMs: 2,
    });
    const result = await runCli(
      ["photos", "-o", "out.jsonl", "-c", "16", "--retries", "15", "--timeout", "0.5"],
      {
        cwd: ws.dir,
        baseUrl: fake.baseUrl,
      },
    );
    expect(result.code).toBe(0);
    expect(result.stderr).toMatch(/200 captioned, 0 failed/);
    expect(result.stderr).not.toMatch(/Warning/);
    const rows = await readJsonl(path.join(ws.dir, "out.jsonl"));
    expectOneRowEach(rows, images);
    const faults = fake.requests.filter((r) => r.behavior !== "ok");
    expect(faults.length).toBeGreaterThan(40);
    expect(new Set(faults.map((r) => r.behavior)).size).toBeGreaterThanOrEqual(6);
    // One successful request per image: no image was sent again after it was captioned.
    expect(fake.requests.length - faults.length).toBe(200);
  }, 120_000);

  it("stops early with exit 1 when the endpoint is down, without failing every image; a rerun resumes", async () => {
    const images = await makeDistinctImages(ws.dir, 60);
    const gone = await fake.startAnother();
    const deadUrl = gone.baseUrl;
    await gone.close();
    const result = await runCli(["photos", "-o", "out.csv", "-c", "4"], {
      cwd: ws.dir,
      baseUrl: deadUrl,
    });
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(
      /could not reach http:\/\/127\.0\.0\.1:\d+: ECONNREFUSED.*many requests in a row failed to connect.*rerun to resume/,
    );
    expect(result.stderr).not.toMatch(/failed photos\//);
    await expect(stat(path.join(ws.dir, "out.errors.jsonl"))).rejects.toThrow();

    await fake.start();
    const rerun = await runCli(["photos", "-o", "out.csv"], { cwd: ws.dir, baseUrl: fake.baseUrl });
    expect(rerun.code).toBe(0);
    expectOneRowEach(await readCsv(path.join(ws.dir, "out.csv")), images);
  }, 60_000);

  it("backs off when the endpoint rate-limits, instead of hammering it", async () => {
    const images = await makeDistinctImages(ws.dir, 150);
    await fake.start({ rateLimit: { perSecond: 30, retryAfter: "1" } });
    const result = await runCli(["photos", "-o", "out.csv", "-c", "32", "--retries", "20"], {
      cwd: ws.dir,
      baseUrl: fake.baseUrl,
    });
    expect(result.code).toBe(0);
    expectOneRowEach(await readCsv(path.join(ws.dir, "out.csv")), images);
    const limited = fake.requests.filter(
      (r) => r.behavior === "rate-limit" || r.behavior === "429",
    ).length;
    // The first burst meets the limit; after that the pool pauses and sends fewer at once.
    expect(limited).toBeLessThan(fake.requests.length / 5);
  }, 60_000);

  it("sends nothing while a 429's Retry-After lasts, and on SIGINT does not sit it out", async () => {
    await makeDistinctImages(ws.dir, 6);
    let answered = 0;
    const server = await fake.start({
      // The first request is answered slowly; the second, sent meanwhile, is told to wait 40 s.
      respond: () => {
        answered += 1;
        if (answered === 1) return { kind: "ok", latencyMs: 1500 };
        if (answered === 2) return { kind: "rate-limit", retryAfter: "40" };
        return undefined;
      },
    });
    const out = path.join(ws.dir, "out.csv");
    const { child, done } = startRun(server, 2);
    await waitFor(() => server.requests.length >= 2);
    await waitForRows(out, 1);
    // The slow reply landed about 1.5 s after the 429. A client that ignored Retry-After would
    // have retried within its 0.5 s backoff by then, and the slot the reply freed would have taken
    // the next image; this one held both back.
    expect(server.requests.map((r) => r.behavior).sort()).toEqual(["ok", "rate-limit"]);
    child.kill("SIGINT");
    // The test's own 15 s limit is the other check: waiting out the 40 s pause would fail it.
    const result = await done;
    expect(result.code).toBe(130);
    expect(result.stderr).toMatch(/left for the next run/);
    expect(await readCsv(out)).toHaveLength(1);
    expect(server.requests).toHaveLength(2);
  }, 15_000);

  it("never has more requests in flight than -c", async () => {
    await makeDistinctImages(ws.dir, 40);
    await fake.start({ latencyMs: 60 });
    for (const [concurrency, out] of [
      [5, "five.csv"],
      [1, "one.csv"],
    ] as const) {
      fake.resetStats();
      const result = await runCli(["photos", "-o", out, "-c", String(concurrency)], {
        cwd: ws.dir,
        baseUrl: fake.baseUrl,
      });
      expect(result.code).toBe(0);
      expect(fake.maxInFlight).toBe(concurrency);
    }
  }, 30_000);

  it("sends an image refused with 413 once more at a quarter of the pixels", async () => {
    await makeDistinctImages(ws.dir, 1, "photos", 1200);
    await fake.start({
      script: [
        { kind: "status", status: 413, body: { error: { message: "Request Entity Too Large" } } },
      ],
    });
    const result = await runCli(["photos", "-o", "out.csv"], {
      cwd: ws.dir,
      baseUrl: fake.baseUrl,
    });
    expect(result.code).toBe(0);
    const [first, second] = fake.requests;
    const pixels = (r: typeof first) => (r?.image?.width ?? 0) * (r?.image?.height ?? 0);
    expect(pixels(first)).toBe(1200 * 1200);
    expect(pixels(second)).toBeLessThanOrEqual(pixels(first) / 4);
    const [row] = await readCsv(path.join(ws.dir, "out.csv"));
    expect(Number(row?.width) * Number(row?.height)).toBe(pixels(second));
  });

  it("fails an image after a second 413 instead of shrinking forever", async () => {
    await makeDistinctImages(ws.dir, 1, "photos", 600);
    await fake.start({ respond: () => ({ kind: "status", status: 413 }) });
    const result = await runCli(["photos", "-o", "out.csv"], {
      cwd: ws.dir,
      baseUrl: fake.baseUrl,
    });
    expect(result.code).toBe(3);
    expect(fake.requests).toHaveLength(2);
    const [failure] = await readJsonl(path.join(ws.dir, "out.errors.jsonl"));
    expect(failure).toMatchObject({ code: "http_413", status: 413 });
  });
});

describe("bad surroundings", () => {
  it("fails only the image whose connection keeps being reset, not the run", async () => {
    await makeDistinctImages(ws.dir, 3);
    await fake.start({ script: [{ kind: "reset" }, { kind: "reset" }] });
    const result = await runCli(["photos", "-o", "out.csv", "-c", "1", "--retries", "1"], {
      cwd: ws.dir,
      baseUrl: fake.baseUrl,
    });
    expect(result.code).toBe(3);
    expect(await readCsv(path.join(ws.dir, "out.csv"))).toHaveLength(2);
    const [failure] = await readJsonl(path.join(ws.dir, "out.errors.jsonl"));
    expect(failure).toMatchObject({
      path: "photos/img-0000.jpg",
      code: "connection_failed",
      attempts: 2,
    });
  });

  it("says so in one line when OUT cannot be read, is a folder, or the errors file cannot be replaced", async () => {
    await makeDistinctImages(ws.dir, 1);
    await fake.start();
    await mkdir(path.join(ws.dir, "folder.csv"));
    await mkdir(path.join(ws.dir, "errs.jsonl"));
    await writeFile(path.join(ws.dir, "afile"), "");
    // A folder where a file belongs is a usage error (2); a place that cannot be written aborts (1).
    const cases: [string[], RegExp, number][] = [
      [["-o", "folder.csv"], /-o\/--output: .*folder\.csv is a folder; name a file inside it/, 2],
      [["-o", "ok.csv", "--errors", "errs.jsonl"], /--errors: .*errs\.jsonl is a folder/, 2],
      [["-o", "afile/out.csv"], /cannot create .*afile\/out\.csv or its lock beside it/, 1],
    ];
    for (const [args, message, code] of cases) {
      const result = await runCli(["photos", ...args], { cwd: ws.dir, baseUrl: fake.baseUrl });
      expect(result.code, args.join(" ")).toBe(code);
      expect(result.stderr).toMatch(message);
      expect(result.stderr).not.toMatch(/internal error|\n\s+at /);
    }
  });

  it("matches glob patterns under folders whose names hold brackets", async () => {
    await makeDistinctImages(ws.dir, 2, "Photos (2023) [best]");
    await fake.start();
    const result = await runCli(["Photos (2023) [best]/*.jpg", "-o", "out.csv"], {
      cwd: ws.dir,
      baseUrl: fake.baseUrl,
    });
    expect(result.code).toBe(0);
    expect((await readCsv(path.join(ws.dir, "out.csv"))).map((r) => r.path).sort()).toEqual([
      "Photos (2023) [best]/img-0000.jpg",
      "Photos (2023) [best]/img-0001.jpg",
    ]);
  });

  it("stops quietly when the reader of --dry-run output goes away", async () => {
    await makeDistinctImages(ws.dir, 30);
    const child = startCli(["photos", "-o", "out.csv", "--dry-run", "-c", "1"], {
      cwd: ws.dir,
      baseUrl: "http://127.0.0.1:9/v1",
    });
    const done = collect(child);
    child.stdout?.once("data", () => child.stdout?.destroy());
    const result = await done;
    expect(result.stderr).not.toMatch(/EPIPE|\n\s+at /);
    expect(result.code).toBe(0);
  });
});

describe("crash safety", () => {
  it("survives SIGKILL at several random points: one row per image, at most about -c resent per crash", async () => {
    const images = await makeDistinctImages(ws.dir, 80);
    await fake.start({ latencyMs: 25 });
    const out = path.join(ws.dir, "out.csv");
    const concurrency = 4;
    let crashes = 0;
    let seed = 42;
    const random = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    for (let i = 0; i < 5; i += 1) {
      const before = (await readCsv(out).catch(() => [])).length;
      if (before >= images.length - concurrency) break;
      const { child, done } = startRun(fake, concurrency);
      await waitForRows(out, before + 1 + Math.floor(random() * 10));
      await delay(Math.floor(random() * 20));
      child.kill("SIGKILL");
      expect((await done).signal).toBe("SIGKILL");
      crashes += 1;
      // Whatever the moment, what is on disk parses (a torn tail at most, repaired on the next start).
      expect((await readFile(out, "utf8")).startsWith("path,caption,")).toBe(true);
    }
    const rerun = await runCli(["photos", "-o", "out.csv", "-c", String(concurrency)], {
      cwd: ws.dir,
      baseUrl: fake.baseUrl,
    });
    expect(rerun.code).toBe(0);
    expect(rerun.stderr).toMatch(/already done/);
    expectOneRowEach(await readCsv(out), images);
    expect(crashes).toBeGreaterThanOrEqual(3);
    // Each crash can lose the requests in flight and one torn row.
    expect(fake.requests.length).toBeLessThanOrEqual(images.length + crashes * (concurrency + 1));
  }, 120_000);

  it("repairs a row torn by a crash and captions that image again", async () => {
    const images = await makeDistinctImages(ws.dir, 3);
    await fake.start();
    const out = path.join(ws.dir, "out.csv");
    expect(
      (await runCli(["photos", "-o", "out.csv"], { cwd: ws.dir, baseUrl: fake.baseUrl })).code,
    ).toBe(0);
    const whole = await readFile(out, "utf8");
    await writeFile(out, whole.slice(0, whole.length - 20));
    fake.resetStats();
    const rerun = await runCli(["photos", "-o", "out.csv"], { cwd: ws.dir, baseUrl: fake.baseUrl });
    expect(rerun.code).toBe(0);
    expect(rerun.stderr).toMatch(/repaired the output/);
    expect(fake.requests).toHaveLength(1);
    expectOneRowEach(await readCsv(out), images);
  });

  it.each([
    ["SIGINT", 130],
    ["SIGTERM", 143],
  ] as const)(
    "on %s finishes the requests in flight, flushes OUT and exits %i; a rerun completes",
    async (signal, code) => {
      const images = await makeDistinctImages(ws.dir, 30);
      const server = await fake.start({ latencyMs: 300 });
      const out = path.join(ws.dir, "out.csv");
      const { child, done } = startRun(server, 3);
      await waitFor(() => server.inFlight >= 3);
      child.kill(signal);
      const result = await done;
      expect(result.code).toBe(code);
      expect(result.stderr).toMatch(new RegExp(`${signal}: finishing requests in flight`));
      expect(result.stderr).toMatch(/left for the next run/);
      const rows = await readCsv(out);
      // The three requests in flight when the signal came were finished and written, and nothing
      // new was started.
      expect(rows.length).toBeGreaterThanOrEqual(3);
      expect(rows.length).toBe(server.requests.length);
      expect(rows.length).toBeLessThan(images.length);
      const rerun = await runCli(["photos", "-o", "out.csv", "-c", "8"], {
        cwd: ws.dir,
        baseUrl: server.baseUrl,
      });
      expect(rerun.code).toBe(0);
      expectOneRowEach(await readCsv(out), images);
      await expect(stat(path.join(ws.dir, "out.errors.jsonl"))).rejects.toThrow();
    },
    30_000,
  );
});

describe("cron safety", () => {
  it("refuses a second run on the same OUT at once, naming the first", async () => {
    await makeDistinctImages(ws.dir, 30);
    // The first run is slow until the second has been answered, however long a busy machine
    // takes to start it: it cannot finish first.
    let secondAnswered = false;
    await fake.start({
      respond: () => ({ kind: "ok", latencyMs: secondAnswered ? 0 : 1500 }),
    });
    const { child: first, done: firstDone } = startRun(fake, 2);
    await waitForRows(path.join(ws.dir, "out.csv"), 1);
    const second = await runCli(["photos", "-o", "out.csv"], {
      cwd: ws.dir,
      baseUrl: fake.baseUrl,
    });
    secondAnswered = true;
    expect(second.code).toBe(1);
    expect(second.stderr).toMatch(
      new RegExp(
        `another caption run \\(pid ${first.pid} on .+, started .+\\) is writing .*out\\.csv`,
      ),
    );
    const firstResult = await firstDone;
    expect(firstResult.code).toBe(0);
    expect(await readCsv(path.join(ws.dir, "out.csv"))).toHaveLength(30);
    expect((await readdir(ws.dir)).filter((f) => f.endsWith(".lock"))).toEqual([]);
  }, 30_000);

  it("takes over the lock of a run that was killed", async () => {
    const images = await makeDistinctImages(ws.dir, 20);
    await fake.start({ latencyMs: 50 });
    const { child, done } = startRun(fake, 2);
    await waitForRows(path.join(ws.dir, "out.csv"), 2);
    child.kill("SIGKILL");
    await done;
    expect((await stat(path.join(ws.dir, "out.csv.lock"))).isDirectory()).toBe(true);
    const rerun = await runCli(["photos", "-o", "out.csv"], { cwd: ws.dir, baseUrl: fake.baseUrl });
    expect(rerun.code).toBe(0);
    expectOneRowEach(await readCsv(path.join(ws.dir, "out.csv")), images);
  });

  it("--quiet prints only the failures and the summary", async () => {
    await makeDistinctImages(ws.dir, 5);
    await writeFile(path.join(ws.dir, "photos", "broken.jpg"), "not a jpeg");
    await fake.start({ script: [{ kind: "status", status: 500 }] });
    const result = await runCli(["photos", "-o", "out.csv", "-q", "-c", "1"], {
      cwd: ws.dir,
      baseUrl: fake.baseUrl,
    });
    expect(result.code).toBe(3);
    const lines = result.stderr.trimEnd().split("\n");
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(/^caption: failed photos\/broken\.jpg: /);
    expect(lines[1]).toMatch(/^caption: 5 captioned, 1 failed/);
    expect(result.stdout).toBe("");
  });

  it("--log-format json writes one JSON object per line for log collectors", async () => {
    await makeDistinctImages(ws.dir, 3);
    await writeFile(path.join(ws.dir, "photos", "broken.jpg"), "");
    await fake.start();
    const result = await runCli(["photos", "-o", "out.csv", "--log-format", "json"], {
      cwd: ws.dir,
      baseUrl: fake.baseUrl,
    });
    expect(result.code).toBe(3);
    const events = result.stderr
      .trimEnd()
      .split("\n")
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(events[0]).toMatchObject({ event: "discovered", found: 4, todo: 4 });
    expect(events.filter((e) => e.event === "captioned")).toHaveLength(3);
    expect(events.find((e) => e.event === "failed")).toMatchObject({
      path: "photos/broken.jpg",
      code: "empty_file",
    });
    expect(events.at(-1)).toMatchObject({
      event: "summary",
      exit_code: 3,
      captioned: 3,
      failed: 1,
    });

    const usage = await runCli(["photos", "--log-format", "json"], {
      cwd: ws.dir,
      baseUrl: fake.baseUrl,
    });
    expect(usage.code).toBe(2);
    expect(JSON.parse(usage.stderr.split("\n")[0] ?? "")).toMatchObject({
      event: "message",
      level: "error",
    });
  });
});

describe("secrets", () => {
  it("never shows the key, even when the server echoes it in messages and URLs", async () => {
    await makeDistinctImages(ws.dir, 4);
    const encoded = encodeURIComponent(TEST_KEY);
    await fake.start({
      script: [
        {
          kind: "status",
          status: 400,
          body: { error: { message: `Bad header Authorization: Bearer ${TEST_KEY}` } },
        },
        {
          kind: "status",
          status: 422,
          body: `<html><title>see https://api.example/v1?key=${encoded}</title></html>`,
        },
        { kind: "status", status: 500, body: { message: `upstream https://u:${TEST_KEY}@x/` } },
      ],
    });
    const outputs: string[] = [];
    for (const args of [
      ["photos", "-o", "out.csv", "-c", "1", "--retries", "0", "-v"],
      ["photos", "-o", "out.jsonl", "--log-format", "json", "--dry-run"],
      ["check"],
      ["check", "--api-key", "sk-other-secret-value", "--base-url", `${fake.baseUrl}`],
    ]) {
      const result = await runCli(args, { cwd: ws.dir, baseUrl: fake.baseUrl });
      outputs.push(result.stdout, result.stderr);
    }
    const files = await readdir(ws.dir, { recursive: true });
    for (const file of files) {
      const full = path.join(ws.dir, String(file));
      if ((await stat(full)).isFile() && !String(file).endsWith(".jpg"))
        outputs.push(await readFile(full, "utf8"));
    }
    const everything = outputs.join("\n");
    expect(everything).toContain("[redacted]");
    expect(everything).not.toContain(TEST_KEY);
    expect(everything).not.toContain(encoded);
    expect(everything).not.toContain("sk-other-secret-value");
  });
});

describe("CSV formula guard", () => {
  it("leaves captions as they are by default and quotes formula-like ones with --csv-formula-guard", async () => {
    await makeDistinctImages(ws.dir, 4);
    const captions = ['=HYPERLINK("http://x")', "+1 sunny day", "-a dash", "@mention a cat"];
    let n = 0;
    const server = await fake.start({ caption: () => captions[n++ % 4] ?? "" });
    await runCli(["photos", "-o", "plain.csv", "-c", "1"], {
      cwd: ws.dir,
      baseUrl: server.baseUrl,
    });
    n = 0;
    await runCli(["photos", "-o", "guarded.csv", "-c", "1", "--csv-formula-guard"], {
      cwd: ws.dir,
      baseUrl: server.baseUrl,
    });
    const plain = (await readCsv(path.join(ws.dir, "plain.csv"))).map((r) => r.caption);
    const guarded = (await readCsv(path.join(ws.dir, "guarded.csv"))).map((r) => r.caption);
    expect(plain).toEqual(captions);
    expect(guarded).toEqual(captions.map((c) => `'${c}`));
    // Resume is unaffected: a rerun finds every image done.
    server.resetStats();
    const again = await runCli(["photos", "-o", "guarded.csv", "--csv-formula-guard"], {
      cwd: ws.dir,
      baseUrl: server.baseUrl,
    });
    expect(again.code).toBe(0);
    expect(server.requests).toHaveLength(0);
  });
});

describe("content-hash dedup", () => {
  it("counts copies once in a dry run", async () => {
    await makeDistinctImages(ws.dir, 3);
    for (const name of ["c1", "c2", "c3", "c4"]) {
      await copyFile(
        path.join(ws.dir, "photos/img-0000.jpg"),
        path.join(ws.dir, `photos/${name}.jpg`),
      );
    }
    const result = await runCli(["photos", "-o", "out.csv", "--dry-run", "-c", "1"], {
      cwd: ws.dir,
      baseUrl: "http://127.0.0.1:9/v1",
    });
    expect(result.code).toBe(0);
    expect(result.stderr).toMatch(/dry run: 3 images would be sent/);
    expect(result.stdout.trim().split("\n")).toHaveLength(3);
  });

  it("sends identical bytes once per run and across runs, giving every path its row", async () => {
    await makeDistinctImages(ws.dir, 2);
    await copyFile(
      path.join(ws.dir, "photos/img-0000.jpg"),
      path.join(ws.dir, "photos/same-a.jpg"),
    );
    await copyFile(
      path.join(ws.dir, "photos/img-0000.jpg"),
      path.join(ws.dir, "photos/same-b.jpg"),
    );
    await fake.start({ latencyMs: 30 });
    const first = await runCli(["photos", "-o", "out.csv"], { cwd: ws.dir, baseUrl: fake.baseUrl });
    expect(first.code).toBe(0);
    expect(first.stderr).toMatch(/4 captioned \(2 as copies of identical files\)/);
    expect(fake.requests).toHaveLength(2);
    let rows = await readCsv(path.join(ws.dir, "out.csv"));
    const caption = rows.find((r) => r.path === "photos/img-0000.jpg")?.caption;
    expect(
      rows
        .filter((r) => r.caption === caption)
        .map((r) => r.path)
        .sort(),
    ).toEqual(["photos/img-0000.jpg", "photos/same-a.jpg", "photos/same-b.jpg"]);

    // A new copy turns up the next night: resume knows its bytes.
    await copyFile(path.join(ws.dir, "photos/img-0001.jpg"), path.join(ws.dir, "photos/later.jpg"));
    fake.resetStats();
    const second = await runCli(["photos", "-o", "out.csv"], {
      cwd: ws.dir,
      baseUrl: fake.baseUrl,
    });
    expect(second.code).toBe(0);
    expect(fake.requests).toHaveLength(0);
    rows = await readCsv(path.join(ws.dir, "out.csv"));
    expect(rows.find((r) => r.path === "photos/later.jpg")?.caption).toBe(
      rows.find((r) => r.path === "photos/img-0001.jpg")?.caption,
    );
    expect(rows).toHaveLength(5);
  });
});
