/**
 * What an installed copy gets and whether it runs: the package's file list, the example configs by
 * name from any folder, and the bin started from a copy of exactly the packed files. Nothing here
 * touches the network: `npm pack --dry-run` only lists, and the copy borrows this node_modules.
 */
import { execFile, spawn } from "node:child_process";
import { cp, mkdir, readdir, readFile, symlink } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { useFakeEndpoint } from "../helpers/fake-endpoint/use.js";
import { collect, runCli, TEST_KEY } from "../helpers/run-cli.js";
import { copyFixtures, readCsv, useWorkspace } from "../helpers/workspace.js";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const VLLM_MODEL = "openbmb/MiniCPM-V-4.6";
const OLLAMA_MODEL = "openbmb/minicpm-v4.6";

const ws = useWorkspace();
const fake = useFakeEndpoint("manual");

async function exampleNames(): Promise<string[]> {
  return (await readdir(path.join(ROOT, "config")))
    .filter((file) => file.endsWith(".json"))
    .map((file) => file.replace(/\.json$/, ""))
    .sort();
}

/** The files `npm pack` would put in the tarball, without running `prepare` or the network. */
async function packedFiles(): Promise<{ name: string; files: string[] }> {
  const { stdout } = await promisify(execFile)(
    "npm",
    ["pack", "--dry-run", "--json", "--ignore-scripts", "--offline", "--no-update-notifier"],
    { cwd: ROOT, maxBuffer: 16 * 1024 * 1024 },
  );
  const [pack] = JSON.parse(stdout) as { name: string; files: { path: string }[] }[];
  if (!pack) throw new Error(`npm pack printed no package: ${stdout}`);
  return { name: pack.name, files: pack.files.map((file) => file.path) };
}

describe("--config NAME through the real CLI", () => {
  it("check takes the model from config/vllm.json when run from a folder without it", async () => {
    await fake.start({ apiKey: TEST_KEY });
    // MINICPM_BASE_URL (set by runCli) outranks the config's localhost:8000; the model does not.
    const result = await runCli(["check", "--config", "vllm"], {
      cwd: ws.dir,
      baseUrl: fake.baseUrl,
    });
    expect(result.stderr).toContain(`answered as ${VLLM_MODEL}`);
    expect(result.code).toBe(0);
    expect(fake.requests.map((request) => request.model)).toEqual([VLLM_MODEL]);
  });

  it("a caption run sends the named config's model, and a flag still wins over it", async () => {
    await copyFixtures(ws.dir, "images");
    await fake.start({ apiKey: TEST_KEY });
    const run = await runCli(["images/photo.jpg", "--config", "ollama", "-o", "out.csv"], {
      cwd: ws.dir,
      baseUrl: fake.baseUrl,
    });
    expect(run.code).toBe(0);
    expect(fake.requests.map((request) => request.model)).toEqual([OLLAMA_MODEL]);
    expect((await readCsv(path.join(ws.dir, "out.csv"))).map((row) => row.model)).toEqual([
      OLLAMA_MODEL,
    ]);

    fake.resetStats();
    const flagged = await runCli(
      ["images/small.webp", "--config", "ollama", "-m", "flag-model", "-o", "out.csv"],
      { cwd: ws.dir, baseUrl: fake.baseUrl },
    );
    expect(flagged.code).toBe(0);
    expect(fake.requests.map((request) => request.model)).toEqual(["flag-model"]);
  });

  it("an unknown name is a usage error listing the example configs", async () => {
    const result = await runCli(["images", "--config", "vlm", "-o", "out.csv"], { cwd: ws.dir });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(`no example config of that name`);
    expect(result.stderr).toContain((await exampleNames()).join(", "));
  });
});

describe("OPENAI_ variables through the real CLI", () => {
  it("reads OPENAI_BASE_URL and OPENAI_API_KEY when no MINICPM_ variable is set", async () => {
    await fake.start({ apiKey: TEST_KEY });
    const result = await runCli(["check"], {
      cwd: ws.dir,
      env: { MINICPM_API_KEY: undefined, OPENAI_API_KEY: TEST_KEY, OPENAI_BASE_URL: fake.baseUrl },
    });
    expect(result.code).toBe(0);
    expect(fake.requests).toHaveLength(1);
    expect(fake.requests[0]?.headers.authorization).toBe(`Bearer ${TEST_KEY}`);
    expect(result.stdout + result.stderr).not.toContain(TEST_KEY);
  });
});

describe("the npm package", () => {
  it("is not named caption, keeps the caption command, and ships what the bin needs", async () => {
    const manifest = JSON.parse(await readFile(path.join(ROOT, "package.json"), "utf8")) as {
      name: string;
      bin: Record<string, string>;
    };
    expect(manifest.name).not.toBe("caption");
    expect(manifest.bin).toEqual({ caption: "bin/caption.cjs" });
    const lock = JSON.parse(await readFile(path.join(ROOT, "package-lock.json"), "utf8")) as {
      name: string;
      packages: Record<string, { name?: string }>;
    };
    expect([lock.name, lock.packages[""]?.name]).toEqual([manifest.name, manifest.name]);

    const { name, files } = await packedFiles();
    expect(name).toBe(manifest.name);
    expect(files).toEqual(
      expect.arrayContaining([
        "package.json",
        "README.md",
        "docs/options.md",
        "bin/caption.cjs",
        "bin/caption.js",
        "src/cli/bin.ts",
        "src/cli/main.ts",
        "src/settings/resolve.ts",
        ...(await exampleNames()).map((example) => `config/${example}.json`),
      ]),
    );
    // dist/ is built by `prepare`, which `npm pack` runs first; here it is whatever was built.
    const built = await readdir(path.join(ROOT, "dist")).catch(() => []);
    if (built.length > 0) expect(files).toEqual(expect.arrayContaining(["dist/cli/bin.js"]));
    const strays = files.filter((file) =>
      /^(test|bench|fixtures|scripts|\.ci|node_modules|coverage)\/|^tsconfig|^vitest|^biome/.test(
        file,
      ),
    );
    expect(strays).toEqual([]);
  });

  it("a copy of exactly the packed files runs, with the example configs by name, from elsewhere", async () => {
    // What `npm install -g` of the tarball lays out, minus fetching the dependencies.
    const installed = path.join(ws.dir, "lib", "node_modules", "pkg");
    for (const file of (await packedFiles()).files) {
      // dist/ is compiled below from today's sources, as `npm pack` does through `prepare`.
      if (file.startsWith("dist/")) continue;
      await mkdir(path.dirname(path.join(installed, file)), { recursive: true });
      await cp(path.join(ROOT, file), path.join(installed, file), { preserveTimestamps: true });
    }
    const tsc = path.join(ROOT, "node_modules", "typescript", "bin", "tsc");
    await collect(
      spawn(
        process.execPath,
        [
          tsc,
          "-p",
          path.join(ROOT, "tsconfig.build.json"),
          "--outDir",
          path.join(installed, "dist"),
        ],
        { stdio: ["ignore", "pipe", "pipe"] },
      ),
    );
    await symlink(path.join(ROOT, "node_modules"), path.join(installed, "node_modules"), "dir");
    const cwd = path.join(ws.dir, "somewhere-else");
    await mkdir(cwd);
    await fake.start({ apiKey: TEST_KEY });
    const env: Record<string, string> = {};
    for (const [key, value] of Object.entries(process.env)) {
      if (value !== undefined && !/^(MINICPM|OPENAI)_/.test(key)) env[key] = value;
    }
    const run = (args: string[]) =>
      collect(
        spawn(process.execPath, [path.join(installed, "bin", "caption.cjs"), ...args], {
          cwd,
          env: { ...env, MINICPM_API_KEY: TEST_KEY, MINICPM_BASE_URL: fake.baseUrl },
          stdio: ["ignore", "pipe", "pipe"],
        }),
      );

    const help = await run(["--help"]);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/^caption <inputs\.\.>/);
    const check = await run(["check", "--config", "vllm"]);
    expect(check.stderr).toContain(`answered as ${VLLM_MODEL}`);
    expect(check.code).toBe(0);
    expect(fake.requests.map((request) => request.model)).toEqual([VLLM_MODEL]);
    const unknown = await run(["check", "--config", "nope"]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain((await exampleNames()).join(", "));
  }, 180_000);
});
