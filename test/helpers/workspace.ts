import { cp, mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parse } from "csv-parse/sync";

export const FIXTURES = fileURLToPath(new URL("../../fixtures/", import.meta.url));

/** A scratch folder for one test, removed by the returned cleanup. */
export async function makeWorkspace(): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(path.join(tmpdir(), "caption-it-"));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/** Copies a fixtures subfolder into the workspace under the same name. */
export async function copyFixtures(dir: string, name: string): Promise<string> {
  const target = path.join(dir, name);
  await cp(path.join(FIXTURES, name), target, { recursive: true });
  return target;
}

export type Row = Record<string, string>;

/** Parses OUT with a real CSV parser, as a user's tools would. */
export async function readCsv(file: string): Promise<Row[]> {
  return parse(await readFile(file, "utf8"), { columns: true });
}

export async function readJsonl(file: string): Promise<Record<string, unknown>[]> {
  const text = await readFile(file, "utf8");
  return text
    .split("\n")
    .filter((line) => line.trim() !== "")
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}
