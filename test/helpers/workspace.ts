import { cp, mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parse } from "csv-parse/sync";
import { afterAll, afterEach, beforeAll, beforeEach, expect, vi } from "vitest";

export const FIXTURES = fileURLToPath(new URL("../../fixtures/", import.meta.url));

/** A scratch folder for one test, removed by the returned cleanup. */
export async function makeWorkspace(
  prefix = "caption-it-",
): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(path.join(tmpdir(), prefix));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

export interface Workspace {
  /** The scratch folder of the running test (of the file, for scope "all"). */
  readonly dir: string;
}

/**
 * A scratch folder made before each test of the file or `describe` this is called in and removed
 * after it (with scope "all", one for all of them), read as `ws.dir`. Called before
 * `useFakeEndpoint()`, the folder outlives the fake: vitest runs after-hooks in reverse.
 */
export function useWorkspace(options: { scope?: "each" | "all"; prefix?: string } = {}): Workspace {
  let current: { dir: string; cleanup: () => Promise<void> } | null = null;
  const make = async () => {
    current = await makeWorkspace(options.prefix);
  };
  const remove = async () => {
    const made = current;
    current = null;
    await made?.cleanup();
  };
  if (options.scope === "all") {
    beforeAll(make);
    afterAll(remove);
  } else {
    beforeEach(make);
    afterEach(remove);
  }
  return {
    get dir() {
      if (current === null) throw new Error("no workspace: read ws.dir inside a test or its hooks");
      return current.dir;
    },
  };
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

/**
 * Polls until `condition` holds. The limit is generous because a loaded CI box is slow; it only
 * ends a test that would otherwise hang, it is not a speed check.
 */
export async function waitFor(
  condition: () => boolean | Promise<boolean>,
  timeoutMs = 20_000,
): Promise<void> {
  await vi.waitUntil(condition, { timeout: timeoutMs, interval: 5 });
}

/** Waits until the CSV file holds at least `rows` rows after its header line. */
export function waitForRows(file: string, rows: number): Promise<void> {
  return waitFor(async () => {
    const text = await readFile(file, "utf8").catch(() => "");
    return text.split("\n").length > rows + 1;
  });
}

/**
 * Writes `count` small JPEGs to dir/name and returns their display paths. Sizes differ so that no
 * two files have the same bytes: identical files would be sent once, as copies.
 */
export async function makeDistinctImages(
  dir: string,
  count: number,
  name = "photos",
  size = 32,
): Promise<string[]> {
  const { default: sharp } = await import("sharp");
  const { mkdir } = await import("node:fs/promises");
  await mkdir(path.join(dir, name), { recursive: true });
  const paths: string[] = [];
  for (let i = 0; i < count; i += 1) {
    const file = `img-${String(i).padStart(4, "0")}.jpg`;
    await sharp({
      create: {
        width: size + (i % 64),
        height: size + Math.floor(i / 64),
        channels: 3,
        background: { r: i % 256, g: 90, b: 7 },
      },
    })
      .jpeg()
      .toFile(path.join(dir, name, file));
    paths.push(`${name}/${file}`);
  }
  return paths;
}

/** OUT holds exactly the expected paths, each once. */
export function expectOneRowEach(rows: { path?: unknown }[], expected: string[]): void {
  const seen = rows.map((r) => String(r.path));
  expect(seen.length, "duplicate rows in OUT").toBe(new Set(seen).size);
  expect(seen.sort()).toEqual([...expected].sort());
}
