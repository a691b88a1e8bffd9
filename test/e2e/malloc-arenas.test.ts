/**
 * The CLI caps glibc's malloc arenas from inside the process (bin/malloc-arenas.cjs), which is
 * most of what keeps a run on large photos under its memory figure. glibc itself says how many
 * arenas a process has: a preloaded hook prints its malloc_stats() when the real CLI exits.
 */
import { mkdir } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import sharp from "sharp";
import { beforeEach, describe, expect, it } from "vitest";
import { useFakeEndpoint } from "../helpers/fake-endpoint/use.js";
import { runCli } from "../helpers/run-cli.js";
import { readCsv, useWorkspace } from "../helpers/workspace.js";

const PRINT_ARENAS = fileURLToPath(new URL("../helpers/print-arenas.cjs", import.meta.url));
const onLinux = process.platform === "linux";
if (!onLinux) console.warn("skipping the malloc arena tests: glibc malloc is Linux's");

const ws = useWorkspace();
const fake = useFakeEndpoint({ latencyMs: 20 });
beforeEach(async () => {
  // Large enough that libvips works on several threads at once, as on real photos.
  const photo = await sharp({
    create: {
      width: 3000,
      height: 2000,
      channels: 3,
      background: "#808080",
      noise: { type: "gaussian", mean: 128, sigma: 40 },
    },
  })
    .jpeg({ quality: 85 })
    .toBuffer();
  await mkdir(path.join(ws.dir, "photos"));
  for (let i = 0; i < 12; i += 1) {
    // A different first pixel row each time, so no image is a duplicate of another.
    const distinct = await sharp(photo)
      .composite([
        {
          input: {
            create: { width: 8, height: 8, channels: 3, background: { r: i * 20, g: 0, b: 0 } },
          },
          left: 0,
          top: 0,
        },
      ])
      .jpeg({ quality: 85 })
      .toBuffer();
    await sharp(distinct).toFile(path.join(ws.dir, "photos", `p${i}.jpg`));
  }
});

async function arenasOfARun(env: Record<string, string>) {
  const result = await runCli(["photos", "-o", "out.csv", "-c", "8"], {
    cwd: ws.dir,
    baseUrl: fake.baseUrl,
    env: { NODE_OPTIONS: `--require ${PRINT_ARENAS}`, ...env },
  });
  expect(result.code, result.stderr).toBe(0);
  expect(await readCsv(path.join(ws.dir, "out.csv"))).toHaveLength(12);
  return (result.stderr.match(/^Arena \d+:$/gm) ?? []).length;
}

describe.skipIf(!onLinux)("malloc arenas of a run", () => {
  it("a run keeps to two arenas with nothing set", async () => {
    const arenas = await arenasOfARun({});
    expect(arenas).toBeGreaterThanOrEqual(1);
    expect(arenas).toBeLessThanOrEqual(2);
  }, 60_000);

  it("a MALLOC_ARENA_MAX the user set is left as they set it", async () => {
    // Above two, so that the cap not being applied shows.
    const arenas = await arenasOfARun({ MALLOC_ARENA_MAX: "6" });
    expect(arenas).toBeGreaterThan(2);
    expect(arenas).toBeLessThanOrEqual(6);
  }, 60_000);
});
