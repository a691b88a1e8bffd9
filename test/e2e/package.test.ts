/**
 * The package as a user installs it: packed with npm, installed into a fresh ESM project (from
 * npm's local cache, so nothing leaves the machine; see appLockfile), imported from plain JavaScript and run against
 * the fake endpoint, and type-checked from TypeScript with NodeNext resolution.
 */
import { spawn } from "node:child_process";
import { cp, mkdir, readdir, readFile, symlink, writeFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { beforeAll, describe, expect, it } from "vitest";
import { useFakeEndpoint } from "../helpers/fake-endpoint/use.js";
import { collect } from "../helpers/run-cli.js";
import { makeDistinctImages, readCsv, useWorkspace } from "../helpers/workspace.js";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const NPM = process.platform === "win32" ? "npm.cmd" : "npm";

const ws = useWorkspace({ scope: "all" });
const fake = useFakeEndpoint({}, "all");
let app: string;

async function exec(command: string, args: string[], cwd: string) {
  const result = await collect(spawn(command, args, { cwd, stdio: ["ignore", "pipe", "pipe"] }));
  expect(result.code, `${command} ${args.join(" ")}\n${result.stdout}${result.stderr}`).toBe(0);
  return result;
}

beforeAll(async () => {
  // The files the package ships, with dist/ compiled from today's sources as `prepare` would:
  // building in the checkout itself would change dist/ under the CLI tests running beside this.
  const source = path.join(ws.dir, "source");
  for (const entry of ["package.json", "README.md", "LICENSE", "bin", "src", "config"]) {
    await cp(path.join(ROOT, entry), path.join(source, entry), { recursive: true });
  }
  const tsc = path.join(ROOT, "node_modules", "typescript", "bin", "tsc");
  const tsconfig = path.join(ROOT, "tsconfig.build.json");
  await exec(process.execPath, [tsc, "-p", tsconfig, "--outDir", path.join(source, "dist")], ROOT);
  await exec(NPM, ["pack", "--ignore-scripts", "--pack-destination", ws.dir], source);
  const tarball = (await readdir(ws.dir)).find((name) => name.endsWith(".tgz"));
  app = path.join(ws.dir, "app");
  await mkdir(app);
  await cp(path.join(ws.dir, String(tarball)), path.join(app, "vlm-caption.tgz"));
  const dependencies = { "vlm-caption": "file:vlm-caption.tgz" };
  await writeFile(
    path.join(app, "package.json"),
    JSON.stringify({ name: "app", private: true, type: "module", dependencies }),
  );
  await writeFile(path.join(app, "package-lock.json"), JSON.stringify(await appLockfile()));
  await exec(NPM, ["ci", "--offline", "--no-audit", "--no-fund"], app);
}, 120_000);

/**
 * The app's lockfile: the tarball, and the versions this checkout's own lockfile pins for the
 * packages it needs at run time. npm's cache holds those packages' files after `npm ci`, but not
 * the registry's indexes that an install without a lockfile asks for, so this is what lets the
 * install run offline on a machine whatever its cache. Only what the tarball's package.json
 * declares can be found from inside it, so a dependency it forgets still fails the test.
 */
async function appLockfile(): Promise<object> {
  const own = JSON.parse(await readFile(path.join(ROOT, "package-lock.json"), "utf8")) as {
    packages: Record<string, { version?: string; dev?: boolean; dependencies?: object }>;
  };
  const root = own.packages[""] ?? {};
  const packages: Record<string, object> = {
    "": { name: "app", dependencies: { "vlm-caption": "file:vlm-caption.tgz" } },
    "node_modules/vlm-caption": {
      version: root.version,
      resolved: "file:vlm-caption.tgz",
      dependencies: root.dependencies ?? {},
      bin: { caption: "bin/caption.cjs" },
    },
  };
  for (const [where, entry] of Object.entries(own.packages)) {
    if (where !== "" && !entry.dev) packages[where] = entry;
  }
  return { name: "app", lockfileVersion: 3, requires: true, packages };
}

describe("the installed package", () => {
  it("imports from plain JavaScript and captions a folder", async () => {
    const images = await makeDistinctImages(app, 3);
    await writeFile(
      path.join(app, "run.js"),
      `import { captionImages } from "vlm-caption";
const summary = await captionImages({
  inputs: ["photos"],
  output: "captions.csv",
  baseUrl: process.argv[2],
  concurrency: 2,
});
console.log(JSON.stringify({ captioned: summary.captioned, failed: summary.failed }));
`,
    );
    const result = await exec(process.execPath, ["run.js", fake.baseUrl], app);
    expect(JSON.parse(result.stdout)).toEqual({ captioned: 3, failed: 0 });
    const rows = await readCsv(path.join(app, "captions.csv"));
    expect(rows.map((row) => row.path).sort()).toEqual([...images].sort());
  });

  it("reports every bad option at once, by name", async () => {
    await writeFile(
      path.join(app, "bad.js"),
      `import { captionImages, UsageError } from "vlm-caption";
try {
  await captionImages({ inputs: [], output: "x.csv", concurrency: 0, retries: -1 });
} catch (error) {
  console.log(error instanceof UsageError ? error.problems.join("\\n") : String(error));
}
`,
    );
    const { stdout } = await exec(process.execPath, ["bad.js"], app);
    expect(stdout).toMatch(/^inputs: /m);
    expect(stdout).toMatch(/^concurrency: expected a whole number from 1 to 1024 or auto, got 0$/m);
    expect(stdout).toMatch(/^retries: /m);
  });

  it("loads with require() too, from a CommonJS file", async () => {
    await makeDistinctImages(app, 1, "cjs-photos");
    await writeFile(
      path.join(app, "run.cjs"),
      `const { captionImages, UsageError } = require("vlm-caption");
captionImages({ inputs: ["cjs-photos"], output: "cjs.csv", baseUrl: process.argv[2] }).then(
  (summary) => console.log(JSON.stringify({ captioned: summary.captioned, usage: typeof UsageError })),
);
`,
    );
    const result = await exec(process.execPath, ["run.cjs", fake.baseUrl], app);
    expect(JSON.parse(result.stdout)).toEqual({ captioned: 1, usage: "function" });
  });

  it("reads the CLI's variables, refuses a misspelt option, and rejects a run that stopped early", async () => {
    await makeDistinctImages(app, 2, "env-photos");
    const keyed = await fake.startAnother({ apiKey: "sk-from-the-environment-1234" });
    try {
      await writeFile(
        path.join(app, "env.js"),
        `import { captionImages, RunAbortedError, UsageError } from "vlm-caption";
const found = await captionImages({ inputs: ["env-photos"], output: "env.csv" });
console.log("captioned", found.captioned);
try {
  await captionImages({ inputs: ["env-photos"], output: "x.csv", concurency: 4 });
} catch (error) {
  console.log(error instanceof UsageError ? error.problems.join("; ") : String(error));
}
try {
  await captionImages({ inputs: ["env-photos"], output: "wrong.csv", apiKey: "sk-wrong-key-0000" });
  console.log("resolved");
} catch (error) {
  console.log(error instanceof RunAbortedError ? \`aborted \${error.code} \${error.summary?.captioned}\` : String(error));
}
`,
      );
      const result = await collect(
        spawn(process.execPath, ["env.js"], {
          cwd: app,
          stdio: ["ignore", "pipe", "pipe"],
          env: {
            ...process.env,
            MINICPM_BASE_URL: keyed.baseUrl,
            MINICPM_API_KEY: "sk-from-the-environment-1234",
          },
        }),
      );
      expect(result.code, result.stderr).toBe(0);
      const lines = result.stdout.trim().split("\n");
      expect(lines[0]).toBe("captioned 2");
      expect(lines[1]).toBe(
        "concurency: not an option of captionImages (did you mean concurrency?)",
      );
      expect(lines[2]).toBe("aborted auth_rejected 0");
      expect(keyed.requests.some((request) => request.url.includes("chat"))).toBe(true);
    } finally {
      await keyed.close();
    }
  });

  it("type-checks a TypeScript consumer with moduleResolution nodenext, and catches a wrong option", async () => {
    await mkdir(path.join(app, "node_modules", "@types"), { recursive: true });
    await symlink(
      path.join(ROOT, "node_modules", "@types", "node"),
      path.join(app, "node_modules", "@types", "node"),
      "dir",
    ).catch(() => {});
    const config = {
      compilerOptions: {
        module: "nodenext",
        moduleResolution: "nodenext",
        target: "es2022",
        strict: true,
        noEmit: true,
        types: ["node"],
      },
    };
    const tsc = path.join(ROOT, "node_modules", "typescript", "bin", "tsc");
    const check = async (code: string) => {
      await writeFile(path.join(app, "consumer.ts"), code);
      await writeFile(
        path.join(app, "tsconfig.json"),
        JSON.stringify({ ...config, files: ["consumer.ts"] }),
      );
      return collect(spawn(process.execPath, [tsc, "-p", "tsconfig.json"], { cwd: app }));
    };
    const good =
      await check(`import { captionImages, RunControl, type RunEvent, type RunOptions, type RunSummary } from "vlm-caption";
const options: RunOptions = { inputs: ["photos"], output: "out.jsonl", concurrency: 4 };
const control = new RunControl();
const events: RunEvent[] = [];
const summary: RunSummary = await captionImages(options, { onEvent: (e) => events.push(e), control });
console.log(summary.captioned, events.length);
`);
    expect(good.code, good.stdout + good.stderr).toBe(0);
    const bad = await check(`import { captionImages } from "vlm-caption";
await captionImages({ inputs: ["photos"], output: "out.jsonl", concurrency: "4" });
`);
    expect(bad.code).not.toBe(0);
    expect(bad.stdout).toMatch(
      /consumer\.ts\(2,\d+\): error TS2322: Type '"4"' is not assignable to type 'number \| "auto" \| undefined'/,
    );
  }, 180_000);
});
