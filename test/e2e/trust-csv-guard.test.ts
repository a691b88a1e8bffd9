/**
 * `--csv-formula-guard` through the real CLI: every text cell of OUT a spreadsheet would run as a
 * formula is quoted (the path, the model, the caption, an answer's columns, the header), and read
 * back exactly wherever OUT is read (a rerun's resume, `caption report`, and OUT of a merge).
 */
import { spawnSync } from "node:child_process";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { parse } from "csv-parse/sync";
import { Redis } from "ioredis";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { guardFormula, unguardFormula } from "../../src/sinks/out-file/csv.js";
import { useFakeEndpoint } from "../helpers/fake-endpoint/use.js";
import { REDIS_URL, redisAnswers } from "../helpers/redis.js";
import { collect, runCli, startCli } from "../helpers/run-cli.js";
import { readCsv, useWorkspace } from "../helpers/workspace.js";

const available = await redisAnswers();
if (!available && process.env.CI) {
  throw new Error(`CI: Redis does not answer at ${REDIS_URL}; .ci/run should have started it`);
}
if (!available) console.warn(`skipping the merge test: no Redis answers at ${REDIS_URL}`);
if (spawnSync("redis-server", ["--version"]).status !== 0 && process.env.CI) {
  throw new Error("CI: redis-server is not installed; .ci/run should have installed it");
}

/** Names a spreadsheet runs as formulas, one already quoted, and one that is not. */
const NAMES = ["=8+1.jpg", "+x.jpg", "-y.jpg", "@z.jpg", "'=q.jpg", "plain.jpg"];
/** The cell OUT holds for each of NAMES under the guard. */
const GUARDED = ["'=8+1.jpg", "'+x.jpg", "'-y.jpg", "'@z.jpg", "''=q.jpg", "plain.jpg"];
const FORMULA = /^[=+\-@\t\r\uFF1D\uFF0B\uFF0D\uFF20]/;

const ws = useWorkspace();
const fake = useFakeEndpoint("manual");
let photos: string;

beforeEach(async () => {
  photos = path.join(ws.dir, "photos");
  await mkdir(photos);
  const { default: sharp } = await import("sharp");
  for (const [i, name] of NAMES.entries()) {
    // Distinct bytes each, or they would be captioned as copies of one another.
    await sharp({ create: { width: 40 + i, height: 30, channels: 3, background: "#468" } })
      .jpeg()
      .toFile(path.join(photos, name));
  }
});

/** A caption that spreadsheets would run, named after the image it is of. */
function captionOf(prompt: string | null): string {
  return `=HYPERLINK("http://x/${/Describe (.*)\.$/.exec(prompt ?? "")?.[1] ?? ""}")`;
}

/** `caption ARGS` from inside photos/, so that OUT's paths are the bare file names. */
const inPhotos = (args: string[]) =>
  runCli(args, { cwd: photos, baseUrl: fake.current?.baseUrl ?? "" });

/** The rows `caption report` put in its page. */
async function reportRows(page: string): Promise<{ p: string; c: string }[]> {
  const html = await readFile(page, "utf8");
  const json = /<script type="application\/json" id="rows">([\s\S]*?)<\/script>/.exec(html)?.[1];
  return JSON.parse(json ?? "null");
}

describe("--csv-formula-guard", () => {
  it("quotes every text a spreadsheet would run, and reading back undoes exactly that", () => {
    const texts = [
      ...["=", "+", "-", "@", "\t", "\r", "\uFF1D", "\uFF0B", "\uFF0D", "\uFF20"].map(
        (start) => `${start}1+1`,
      ),
      "'=x",
      "''-x",
      "'''@x",
      "'plain",
      "''",
      "'",
      "",
      "plain",
      " =x",
      "x=1",
    ];
    for (const text of texts) {
      const cell = guardFormula(text);
      expect(FORMULA.test(cell), JSON.stringify(cell)).toBe(false);
      expect(unguardFormula(cell), JSON.stringify(text)).toBe(text);
    }
    expect(new Set(texts.map(guardFormula)).size).toBe(texts.length);
    // Text the guard leaves alone is read as it is.
    for (const text of ["'plain", "''", "'", "plain", "x=1"]) {
      expect(guardFormula(text)).toBe(text);
      expect(unguardFormula(text)).toBe(text);
    }
  });

  it("quotes the path, model and caption cells; a rerun has nothing to do; the report shows the real names", async () => {
    await fake.start({
      models: [{ id: "=model" }],
      caption: (request) => captionOf(request.prompt),
    });
    const args = [".", "-o", "../out.csv", "-c", "2", "--csv-formula-guard", "--model", "=model"];
    const first = await inPhotos([...args, "-p", "Describe {stem}."]);
    expect(first.code, first.stderr).toBe(0);
    expect(first.stderr).toMatch(/6 captioned, 0 failed/);

    // A real CSV parser, as a user's tools read it: every text cell quoted where it would run.
    const rows = await readCsv(path.join(ws.dir, "out.csv"));
    expect(rows.map((row) => row.path).sort()).toEqual([...GUARDED].sort());
    for (const row of rows) {
      expect(row.model).toBe("'=model");
      expect(row.caption?.startsWith(`'=HYPERLINK("http://x/`)).toBe(true);
      for (const [column, cell] of Object.entries(row)) {
        expect(FORMULA.test(cell), `${column}: ${cell}`).toBe(false);
      }
    }

    // A rerun reads every row back as the image it is of: nothing sent, no row added.
    fake.resetStats();
    const again = await inPhotos([...args, "-p", "Describe {stem}."]);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stderr).toMatch(/nothing to do: all 6 images are already in/);
    expect(fake.requests.filter((request) => request.image !== null)).toHaveLength(0);
    expect(await readCsv(path.join(ws.dir, "out.csv"))).toHaveLength(6);

    // The report names the images as they are, finds each one, and shows the real captions.
    const report = await inPhotos(["report", "../out.csv", "-o", "../out.html"]);
    expect(report.code, report.stderr).toBe(0);
    expect(report.stderr).toMatch(/6 made/);
    expect(report.stderr).not.toMatch(/unreadable/);
    const shown = await reportRows(path.join(ws.dir, "out.html"));
    expect(shown.map((row) => row.p).sort()).toEqual([...NAMES].sort());
    for (const row of shown) {
      expect(row.c).toBe(captionOf(`Describe ${path.parse(row.p).name}.`));
    }
  }, 60_000);

  it("quotes a structured answer's columns and its header; a rerun still matches every row", async () => {
    await fake.start({ caption: () => "a sign" });
    await writeFile(
      path.join(ws.dir, "schema.json"),
      JSON.stringify({
        type: "object",
        properties: {
          caption: { type: "string" },
          "=note": { type: "string" },
          sign: { const: "-1" },
        },
        required: ["caption", "=note", "sign"],
      }),
    );
    const args = [".", "-o", "../out.csv", "-c", "2", "--csv-formula-guard"];
    const first = await inPhotos([...args, "--json-schema", "../schema.json"]);
    expect(first.code, first.stderr).toBe(0);
    const text = await readFile(path.join(ws.dir, "out.csv"), "utf8");
    const [header = [], ...records] = parse(text) as string[][];
    expect(header).toContain("'=note");
    expect(header).toContain("sign");
    expect(records).toHaveLength(6);
    const rows = await readCsv(path.join(ws.dir, "out.csv"));
    for (const row of rows) {
      expect(row["'=note"]).toBe("'=note of a sign");
      expect(row.sign).toBe("'-1");
    }

    fake.resetStats();
    const again = await inPhotos([...args, "--json-schema", "../schema.json"]);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stderr).toMatch(/nothing to do: all 6 images are already in/);
    expect(fake.requests.filter((request) => request.image !== null)).toHaveLength(0);
    expect(await readCsv(path.join(ws.dir, "out.csv"))).toHaveLength(6);
  }, 60_000);

  describe.skipIf(!available)("with a queue", () => {
    let queue: string;
    let redis: Redis;
    beforeEach(() => {
      queue = `test-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
      redis = new Redis(REDIS_URL);
    });
    afterEach(async () => {
      const patterns = [`bull:${queue}:*`, `caption:${queue}:*`];
      if (fake.current) patterns.push(`caption:budget:127.0.0.1:${fake.current.port}:*`);
      for (const pattern of patterns) {
        const keys = await redis.keys(pattern);
        if (keys.length > 0) await redis.del(...keys);
      }
      redis.disconnect();
    });

    it("merge writes the path cells quoted; report and a rerun read them as the real names", async () => {
      await fake.start({ caption: (request) => captionOf(request.prompt) });
      const enqueued = await inPhotos([
        "enqueue",
        ".",
        "--queue",
        queue,
        "--out",
        "../work",
        "-p",
        "Describe {stem}.",
      ]);
      expect(enqueued.code, enqueued.stderr).toBe(0);
      const worker = await collect(
        startCli(["worker", "--queue", queue, "--until-empty", "--stall-seconds", "2"], {
          cwd: ws.dir,
          baseUrl: fake.baseUrl,
        }),
      );
      expect(worker.code, worker.stderr).toBe(0);

      const merged = await inPhotos([
        "merge",
        "../work",
        "-o",
        "../all.csv",
        "--csv-formula-guard",
        "--sidecar",
      ]);
      expect(merged.code, merged.stderr).toBe(0);
      const rows = await readCsv(path.join(ws.dir, "all.csv"));
      expect(rows.map((row) => row.path).sort()).toEqual([...GUARDED].sort());
      // The dataset outputs are named after the images themselves.
      expect((await readFile(path.join(photos, "=8+1.txt"), "utf8")).trim()).toBe(
        captionOf("Describe =8+1."),
      );

      const report = await inPhotos(["report", "../all.csv", "-o", "../all.html"]);
      expect(report.code, report.stderr).toBe(0);
      expect(report.stderr).not.toMatch(/unreadable/);
      const shown = await reportRows(path.join(ws.dir, "all.html"));
      expect(shown.map((row) => row.p).sort()).toEqual([...NAMES].sort());

      // A run onto the merged OUT finds every image in it.
      fake.resetStats();
      const again = await inPhotos([
        ".",
        "-o",
        "../all.csv",
        "--csv-formula-guard",
        "-p",
        "Describe {stem}.",
      ]);
      expect(again.code, again.stderr).toBe(0);
      expect(again.stderr).toMatch(/nothing to do: all 6 images are already in/);
      expect(fake.requests.filter((request) => request.image !== null)).toHaveLength(0);
    }, 90_000);
  });
});
