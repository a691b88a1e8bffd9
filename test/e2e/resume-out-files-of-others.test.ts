import { writeFile } from "node:fs/promises";
import path from "node:path";
import { expect, it } from "vitest";
import { useFakeEndpoint } from "../helpers/fake-endpoint/use.js";
import { runCli, TEST_KEY } from "../helpers/run-cli.js";
import { makeDistinctImages, readCsv, useWorkspace } from "../helpers/workspace.js";

const ws = useWorkspace();
const fake = useFakeEndpoint({ apiKey: TEST_KEY });

it("resumes an OUT written before some of today's columns existed, keeping its columns", async () => {
  const images = await makeDistinctImages(ws.dir, 3);
  // The shape of an OUT from before the sha256 column, with one image already done.
  const old = `path,caption,model,width,height\n${images[0]},"an old, quoted caption",m,32,32\n`;
  await writeFile(path.join(ws.dir, "out.csv"), old);
  const result = await runCli(["photos", "-o", "out.csv"], { cwd: ws.dir, baseUrl: fake.baseUrl });
  expect(result.code, result.stderr).toBe(0);
  expect(fake.requests).toHaveLength(2);
  const rows = await readCsv(path.join(ws.dir, "out.csv"));
  expect(rows.map((row) => row.path).sort()).toEqual([...images].sort());
  expect(Object.keys(rows[2] ?? {})).toEqual(["path", "caption", "model", "width", "height"]);
  expect(rows[0]?.caption).toBe("an old, quoted caption");

  // A header with a column this tool never wrote is still another tool's file.
  await writeFile(path.join(ws.dir, "other.csv"), "path,caption,score\n");
  const other = await runCli(["photos", "-o", "other.csv"], { cwd: ws.dir, baseUrl: fake.baseUrl });
  expect(other.code).toBe(2);
  expect(other.stderr).toMatch(/other\.csv: the header is "path,caption,score"/);
});

it("resumes an OUT a spreadsheet saved with a byte-order mark: every new row has its path, twice over", async () => {
  const images = await makeDistinctImages(ws.dir, 3);
  const saved = `\ufeffpath,caption\n${images[0]},kept by hand\n`;
  await writeFile(path.join(ws.dir, "out.csv"), saved);
  const first = await runCli(["photos", "-o", "out.csv"], { cwd: ws.dir, baseUrl: fake.baseUrl });
  expect(first.code, first.stderr).toBe(0);
  expect(fake.requests).toHaveLength(2);
  // The rerun has nothing left to do: every row names its image.
  const again = await runCli(["photos", "-o", "out.csv"], { cwd: ws.dir, baseUrl: fake.baseUrl });
  expect(again.code, again.stderr).toBe(0);
  expect(fake.requests).toHaveLength(2);
  const rows = await readCsv(path.join(ws.dir, "out.csv"));
  const paths = rows.map((row) => row.path ?? row["\ufeffpath"]);
  expect(paths.sort()).toEqual([...images].sort());
  expect(rows.find((row) => (row.path ?? row["\ufeffpath"]) === images[0])?.caption).toBe(
    "kept by hand",
  );
});
