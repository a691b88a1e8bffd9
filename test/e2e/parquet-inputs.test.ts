import { mkdir, readFile, symlink, writeFile } from "node:fs/promises";
import path from "node:path";
import { DuckDBInstance } from "@duckdb/node-api";
import { describe, expect, it } from "vitest";
import { useFakeEndpoint } from "../helpers/fake-endpoint/use.js";
import { runCli, TEST_KEY } from "../helpers/run-cli.js";
import { sampleJpeg } from "../helpers/shards.js";
import { readCsv, readJsonl, useWorkspace } from "../helpers/workspace.js";

const ws = useWorkspace();
const fake = useFakeEndpoint({ apiKey: TEST_KEY });
const run = (args: string[]) => runCli(args, { cwd: ws.dir, baseUrl: fake.baseUrl });
const at = (name: string) => path.join(ws.dir, name);

/**
 * A Parquet file as DuckDB writes it (another implementation than the reader): `count` JPEGs in
 * `column`, as Hugging Face's Image struct of bytes and path or as raw bytes, beside a text
 * column, two rows per row group so the images span several.
 */
async function writeParquet(
  file: string,
  count: number,
  shape: "struct" | "bytes",
  column = "image",
  compression = "snappy",
): Promise<void> {
  const folder = at(`jpegs-${path.basename(file)}`);
  await mkdir(folder, { recursive: true });
  for (let i = 0; i < count; i += 1) {
    await writeFile(path.join(folder, `${String(i).padStart(3, "0")}.jpg`), await sampleJpeg(i));
  }
  const image =
    shape === "struct" ? "{'bytes': content, 'path': parse_filename(filename)}" : "content";
  const db = await DuckDBInstance.create(":memory:");
  const connection = await db.connect();
  await connection.run(
    `COPY (SELECT ${image} AS "${column}", 'label ' || parse_filename(filename) AS text FROM read_blob('${folder}/*.jpg') ORDER BY filename) TO '${file}' (FORMAT parquet, ROW_GROUP_SIZE 2, COMPRESSION ${compression})`,
  );
  connection.closeSync();
}

describe("Parquet files as inputs", () => {
  it("captions each row of Hugging Face's Image column, named file.parquet#row, in row order across row groups", async () => {
    await writeParquet(at("train.parquet"), 5, "struct");
    const result = await run(["train.parquet", "-o", "out.csv"]);
    expect(result.code, result.stderr).toBe(0);
    const rows = await readCsv(at("out.csv"));
    expect(rows.map((row) => row.path).sort()).toEqual([
      "train.parquet#0",
      "train.parquet#1",
      "train.parquet#2",
      "train.parquet#3",
      "train.parquet#4",
    ]);
    // Each row's own image was sent: sampleJpeg(i) is 40 + i pixels wide.
    for (const row of rows) {
      expect(Number(row.width)).toBe(40 + Number(row.path?.split("#")[1]));
    }
    expect(fake.requests).toHaveLength(5);
    const report = await run(["report", "out.csv"]);
    expect(report.code, report.stderr).toBe(0);
    expect(report.stderr).toMatch(/5 made, 0 kept\)/);
    const again = await run(["train.parquet", "-o", "out.csv"]);
    expect(again.code, again.stderr).toBe(0);
    expect(fake.requests).toHaveLength(5);
  });

  it("reads ZSTD-compressed files (Polars' default), and never takes a dataset's Parquet for OUT", async () => {
    await writeParquet(at("zstd.parquet"), 2, "struct", "image", "zstd");
    const result = await run(["zstd.parquet", "-o", "out.csv"]);
    expect(result.code, result.stderr).toBe(0);
    expect(await readCsv(at("out.csv"))).toHaveLength(2);
    // The Image struct holds a `path` of its own: the file is still no OUT of caption's.
    const before = await readFile(at("zstd.parquet"));
    const clobber = await run(["zstd.parquet", "-o", "zstd.parquet"]);
    expect(clobber.code).toBe(2);
    expect(await readFile(at("zstd.parquet"))).toEqual(before);
    // Not even asked to start afresh: an input is never OUT.
    const overwrite = await run(["zstd.parquet", "-o", "zstd.parquet", "--overwrite"]);
    expect(overwrite.code).toBe(2);
    expect(overwrite.stderr).toMatch(/zstd\.parquet is this run's own output/);
    expect(await readFile(at("zstd.parquet"))).toEqual(before);
    // Named through a link, it is the same file.
    await symlink("zstd.parquet", at("link.parquet"));
    const linked = await run(["link.parquet", "-o", "zstd.parquet", "--overwrite"]);
    expect(linked.code).toBe(2);
    expect(await readFile(at("zstd.parquet"))).toEqual(before);
  });

  it("caption estimate forecasts rows of a Parquet file from the images inside it", async () => {
    await writeParquet(at("train.parquet"), 4, "struct");
    const result = await run([
      "estimate",
      "train.parquet",
      "--sample",
      "2",
      "-o",
      "est.csv",
      "--json",
    ]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr).not.toMatch(/cannot be read/);
    const forecast = JSON.parse(result.stdout) as { prompt_tokens: { expected: number } };
    expect(forecast.prompt_tokens.expected).toBeGreaterThan(0);
  });

  it("a pattern of Parquet files never takes the run's own Parquet OUT for an input", async () => {
    await mkdir(at("data"), { recursive: true });
    await writeParquet(at("data/train.parquet"), 2, "struct");
    const first = await run(["data/*.parquet", "-o", "data/captions.parquet"]);
    expect(first.code, first.stderr).toBe(0);
    const second = await run(["data/*.parquet", "-o", "data/captions.parquet"]);
    expect(second.code, second.stderr).toBe(0);
    expect(second.stderr).toMatch(/nothing to do: all 2 images/);
    expect(fake.requests).toHaveLength(2);
  });

  it("takes a raw bytes column too, and one row named file.parquet#row", async () => {
    await writeParquet(at("raw.parquet"), 3, "bytes", "jpg");
    const result = await run(["raw.parquet#2", "-o", "out.jsonl"]);
    expect(result.code, result.stderr).toBe(0);
    const rows = await readJsonl(at("out.jsonl"));
    expect(rows.map((row) => [row.path, row.width])).toEqual([["raw.parquet#2", 42]]);
  });

  it("a Parquet file with no image column, or no Parquet at all, fails alone as one row", async () => {
    await writeParquet(at("good.parquet"), 2, "struct");
    const db = await DuckDBInstance.create(":memory:");
    const connection = await db.connect();
    await connection.run(
      `COPY (SELECT 1 AS id, 'x' AS text) TO '${at("text.parquet")}' (FORMAT parquet)`,
    );
    connection.closeSync();
    await writeFile(at("fake.parquet"), "PAR1 but nothing else");
    const result = await run(["good.parquet", "text.parquet", "fake.parquet", "-o", "out.csv"]);
    expect(result.code).toBe(3);
    expect((await readCsv(at("out.csv"))).map((row) => row.path).sort()).toEqual([
      "good.parquet#0",
      "good.parquet#1",
    ]);
    const failures = await readJsonl(at("out.errors.jsonl"));
    const byPath = new Map(failures.map((row) => [row.path, row]));
    expect(byPath.get("text.parquet")?.code).toBe("parquet_unreadable");
    expect(String(byPath.get("text.parquet")?.message)).toMatch(/no image column/);
    expect(String(byPath.get("fake.parquet")?.message)).toMatch(/not a Parquet file/);
  });

  it("refuses --webdataset-out and --sidecar with Parquet inputs", async () => {
    await writeParquet(at("train.parquet"), 1, "struct");
    const shards = await run(["train.parquet", "-o", "o.csv", "--webdataset-out", "new"]);
    expect(shards.code).toBe(2);
    expect(shards.stderr).toMatch(/train\.parquet is a Parquet file, not a shard/);
    const sidecar = await run(["train.parquet", "-o", "o.csv", "--sidecar"]);
    expect(sidecar.code).toBe(2);
    expect(sidecar.stderr).toMatch(/--webdataset-out DIR/);
    expect(fake.requests).toHaveLength(0);
  });
});
