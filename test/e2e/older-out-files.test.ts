import { writeFile } from "node:fs/promises";
import path from "node:path";
import { afterEach, beforeEach, expect, it } from "vitest";
import { type FakeEndpoint, startFakeEndpoint } from "../helpers/fake-endpoint.js";
import { runCli, TEST_KEY } from "../helpers/run-cli.js";
import { makeDistinctImages, makeWorkspace, readCsv } from "../helpers/workspace.js";

let dir: string;
let cleanup: () => Promise<void>;
let fake: FakeEndpoint;
beforeEach(async () => {
  ({ dir, cleanup } = await makeWorkspace());
  fake = await startFakeEndpoint({ apiKey: TEST_KEY });
});
afterEach(async () => {
  await fake.close();
  await cleanup();
});

it("resumes an OUT written before some of today's columns existed, keeping its columns", async () => {
  const images = await makeDistinctImages(dir, 3);
  // The shape of an OUT from before the sha256 column, with one image already done.
  const old = `path,caption,model,width,height\n${images[0]},"an old, quoted caption",m,32,32\n`;
  await writeFile(path.join(dir, "out.csv"), old);
  const result = await runCli(["photos", "-o", "out.csv"], { cwd: dir, baseUrl: fake.baseUrl });
  expect(result.code, result.stderr).toBe(0);
  expect(fake.requests).toHaveLength(2);
  const rows = await readCsv(path.join(dir, "out.csv"));
  expect(rows.map((row) => row.path).sort()).toEqual([...images].sort());
  expect(Object.keys(rows[2] ?? {})).toEqual(["path", "caption", "model", "width", "height"]);
  expect(rows[0]?.caption).toBe("an old, quoted caption");

  // A header with a column this tool never wrote is still another tool's file.
  await writeFile(path.join(dir, "other.csv"), "path,caption,score\n");
  const other = await runCli(["photos", "-o", "other.csv"], { cwd: dir, baseUrl: fake.baseUrl });
  expect(other.code).toBe(2);
  expect(other.stderr).toMatch(/other\.csv: the header is "path,caption,score"/);
});
