import { readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { parse } from "csv-parse/sync";
import sharp from "sharp";
import { describe, expect, it } from "vitest";
import { useFakeEndpoint } from "../helpers/fake-endpoint/use.js";
import { collect, runCli, startCli, TEST_KEY } from "../helpers/run-cli.js";
import {
  makeDistinctImages,
  readCsv,
  readJsonl,
  useWorkspace,
  waitFor,
} from "../helpers/workspace.js";

const ws = useWorkspace();
const fake = useFakeEndpoint({ apiKey: TEST_KEY });

const run = (args: string[]) => runCli(args, { cwd: ws.dir, baseUrl: fake.baseUrl });

/** A dataset folder with a nested subfolder, as `datasets`' imagefolder reads them. */
async function dataset(): Promise<string[]> {
  return [
    ...(await makeDistinctImages(ws.dir, 3, "data")),
    ...(await makeDistinctImages(ws.dir, 2, "data/train/cats", 48)),
  ];
}

async function expectRowsMatchImages(rows: Record<string, unknown>[], images: string[]) {
  const names = rows.map((row) => String(row.file_name));
  expect(names.length, "duplicate rows").toBe(new Set(names).size);
  expect(names.sort()).toEqual(images.map((image) => image.replace(/^data\//, "")).sort());
  for (const row of rows) {
    const original = await sharp(path.join(ws.dir, "data", String(row.file_name))).metadata();
    expect(Number(row.width)).toBe(original.width);
    expect(Number(row.height)).toBe(original.height);
    expect(String(row.text)).toMatch(/^A test caption/);
    expect(String(row.sha256)).toMatch(/^[0-9a-f]{64}$/);
  }
}

describe("--hf-metadata", () => {
  it("writes metadata.jsonl at the folder's root, one row per image, and a rerun adds nothing", async () => {
    const images = await dataset();
    const result = await run(["data", "--hf-metadata"]);
    expect(result.code, result.stderr).toBe(0);
    const rows = await readJsonl(path.join(ws.dir, "data", "metadata.jsonl"));
    await expectRowsMatchImages(rows, images);
    expect(rows.map((row) => row.file_name)).toContain("train/cats/img-0001.jpg");

    fake.resetStats();
    expect((await run(["data", "--hf-metadata"])).code).toBe(0);
    expect(fake.requests).toHaveLength(0);
    await expectRowsMatchImages(
      await readJsonl(path.join(ws.dir, "data", "metadata.jsonl")),
      images,
    );
  });

  it("writes metadata.csv that a CSV parser reads back, with captions holding commas and quotes", async () => {
    await fake.start({
      apiKey: TEST_KEY,
      caption: (request) => `A test caption, "quoted", for ${request.image?.sha256.slice(0, 12)}`,
    });
    const images = await dataset();
    expect((await run(["data", "--hf-metadata", "csv"])).code).toBe(0);
    const text = await readFile(path.join(ws.dir, "data", "metadata.csv"), "utf8");
    const rows = parse(text, { columns: true }) as Record<string, string>[];
    expect(Object.keys(rows[0] ?? {})).toEqual([
      "file_name",
      "text",
      "width",
      "height",
      "sha256",
      "flags",
    ]);
    await expectRowsMatchImages(rows, images);
    expect(rows[0]?.text).toContain('"quoted"');
  });

  it("after kill -9 mid-run, a rerun leaves exactly one row per image", async () => {
    await fake.start({ apiKey: TEST_KEY, latencyMs: 40 });
    const images = await makeDistinctImages(ws.dir, 40, "data");
    const child = startCli(["data", "--hf-metadata", "-c", "4"], {
      cwd: ws.dir,
      baseUrl: fake.baseUrl,
    });
    const done = collect(child);
    await waitFor(async () => {
      const text = await readFile(path.join(ws.dir, "data", "metadata.jsonl"), "utf8").catch(
        () => "",
      );
      return text.split("\n").length > 10;
    });
    child.kill("SIGKILL");
    await done;
    expect((await run(["data", "--hf-metadata"])).code).toBe(0);
    await expectRowsMatchImages(
      await readJsonl(path.join(ws.dir, "data", "metadata.jsonl")),
      images,
    );
  }, 30_000);

  it("OUT, sidecars and metadata from one run agree", async () => {
    const images = await dataset();
    const result = await run(["data", "-o", "out.csv", "--sidecar", "--hf-metadata"]);
    expect(result.code, result.stderr).toBe(0);
    const out = await readCsv(path.join(ws.dir, "out.csv"));
    const meta = await readJsonl(path.join(ws.dir, "data", "metadata.jsonl"));
    expect(out).toHaveLength(images.length);
    for (const row of out) {
      const fileName = String(row.path).replace(/^data\//, "");
      const entry = meta.find((candidate) => candidate.file_name === fileName);
      expect(entry?.text).toBe(row.caption);
      expect(entry?.sha256).toBe(row.sha256);
      const sidecar = path.join(ws.dir, String(row.path).replace(/\.jpg$/, ".txt"));
      expect(await readFile(sidecar, "utf8")).toBe(`${row.caption}\n`);
    }
  });

  it("bad combinations are exit 2 naming the flags, before anything is sent", async () => {
    await dataset();
    const cases: [string[], RegExp][] = [
      [["data", "--hf-metadata", "parquet"], /--hf-metadata: expected jsonl or csv, got "parquet"/],
      [
        ["data/*.jpg", "--hf-metadata"],
        /--hf-metadata writes metadata\.jsonl at the root of each folder/,
      ],
      [
        ["data", "-o", "data/metadata.jsonl", "--hf-metadata"],
        /-o\/--output: that is the metadata file/,
      ],
    ];
    for (const [args, message] of cases) {
      const result = await run(args);
      expect(result.code, args.join(" ")).toBe(2);
      expect(result.stderr).toMatch(message);
    }
    expect(fake.requests).toHaveLength(0);
  });
});

describe("--hf-metadata beside sidecars", () => {
  it("a row lost in a crash after its sidecar is put back from the record, without a request", async () => {
    const images = await dataset();
    const args = ["data", "-o", "out.jsonl", "--sidecar", "--hf-metadata"];
    expect((await run(args)).code).toBe(0);
    const file = path.join(ws.dir, "data", "metadata.jsonl");
    const lines = (await readFile(file, "utf8")).split("\n");
    // As if the run died with two sidecars written and their rows not yet.
    await writeFile(file, `${lines.slice(0, 3).join("\n")}\n`);
    fake.resetStats();
    expect((await run(args)).code).toBe(0);
    expect(fake.requests).toHaveLength(0);
    const rows = await readJsonl(file);
    await expectRowsMatchImages(rows, images);
    const out = await readJsonl(path.join(ws.dir, "out.jsonl"));
    for (const row of rows) {
      expect(out.find((line) => line.path === `data/${row.file_name}`)?.caption).toBe(row.text);
    }
  });
});
