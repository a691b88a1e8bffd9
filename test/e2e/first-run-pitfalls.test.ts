/**
 * What a newcomer and a fault injector tripped over (issue 7): each case runs the real CLI the way
 * they did and checks what they should have seen.
 */
import { execFile, execFileSync, spawn } from "node:child_process";
import { mkdir, readFile, stat, writeFile } from "node:fs/promises";
import path from "node:path";
import { PassThrough } from "node:stream";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { main } from "../../src/cli/main.js";
import { DEFAULT_BASE_URL } from "../../src/settings/defaults.js";
import { TRIAL_KEY } from "../../src/settings/trial-key.js";
import { useFakeEndpoint } from "../helpers/fake-endpoint/use.js";
import type { FakeEndpoint } from "../helpers/fake-endpoint.js";
import { CLI, collect, runCli, startCli, TEST_KEY } from "../helpers/run-cli.js";
import {
  makeDistinctImages,
  readCsv,
  readJsonl,
  useWorkspace,
  waitFor,
  waitForRows,
} from "../helpers/workspace.js";

const ws = useWorkspace();
const fake = useFakeEndpoint("manual");

const execFileAsync = promisify(execFile);
const isRoot = process.getuid?.() === 0;
const underCi = process.env.CI === "true";

/** Runs the CLI but kills it after `limitMs`, so a regression to a hang fails instead of stalling. */
async function runWithin(limitMs: number, args: string[], baseUrl?: string) {
  const child = startCli(args, { cwd: ws.dir, ...(baseUrl ? { baseUrl } : {}) });
  const killer = setTimeout(() => child.kill("SIGKILL"), limitMs);
  const result = await collect(child);
  clearTimeout(killer);
  return result;
}

describe("hangs and silent deaths", () => {
  it("ends at once with exit 1 when -o names a place where nothing can be created", async () => {
    await makeDistinctImages(ws.dir, 2);
    await fake.start({ apiKey: TEST_KEY });
    for (const out of ["/proc/out.csv", "/proc/caption-test/deeper/out.csv"]) {
      const result = await runWithin(8000, ["photos", "-o", out], fake.baseUrl);
      expect(result.signal, `${out} hung until killed`).toBeNull();
      expect(result.code).toBe(1);
      expect(result.stderr).toContain(out);
      expect(result.stderr).not.toMatch(/\n\s+at /);
    }
    expect(fake.requests).toHaveLength(0);
  }, 30_000);

  it("refuses a pipe as OUT or as the prompt file instead of blocking on it", async () => {
    await makeDistinctImages(ws.dir, 1);
    execFileSync("mkfifo", [path.join(ws.dir, "pipe.csv")]);
    const asOut = await runWithin(8000, ["photos", "-o", "pipe.csv", "--dry-run"]);
    expect(asOut.signal).toBeNull();
    expect(asOut.code).toBe(2);
    expect(asOut.stderr).toMatch(/-o\/--output: .*pipe\.csv is not a regular file/);
    // Issue 22: a file named for the run to read is a regular file, so `--prompt-file <(…)` is
    // refused by name as well (`-p "$(cat …)"` is the way to pipe a prompt in).
    execFileSync("mkfifo", [path.join(ws.dir, "prompt.fifo")]);
    const asPrompt = await runWithin(8000, [
      "photos",
      "-o",
      "o.csv",
      "--prompt-file",
      "prompt.fifo",
    ]);
    expect(asPrompt.signal).toBeNull();
    expect(asPrompt.code).toBe(2);
    expect(asPrompt.stderr).toMatch(
      /--prompt-file prompt\.fifo: not a regular file \(a named pipe\)/,
    );
  }, 30_000);

  it("a signal ends a run even when it waits on a file call that never returns", async () => {
    await makeDistinctImages(ws.dir, 4);
    const errorsFile = path.join(ws.dir, "out.errors.jsonl");
    // The first failure opens the errors file, which by then is a FIFO: open() blocks for good.
    await fake.start({
      apiKey: TEST_KEY,
      respond: (request) => {
        if (request.index !== 0) return undefined;
        execFileSync("mkfifo", [errorsFile]);
        return { kind: "status", status: 400, body: { error: { message: "bad image" } } };
      },
    });
    const child = startCli(["photos", "-o", "out.csv", "-c", "2"], {
      cwd: ws.dir,
      baseUrl: fake.baseUrl,
    });
    const done = collect(child);
    await waitForRows(path.join(ws.dir, "out.csv"), 3);
    child.kill("SIGINT");
    await new Promise((resolve) => setTimeout(resolve, 300));
    child.kill("SIGINT");
    const killer = setTimeout(() => child.kill("SIGKILL"), 15_000);
    const result = await done;
    clearTimeout(killer);
    expect(result.signal, "the run ignored two SIGINTs").not.toBe("SIGKILL");
    // The shell's status either way: exit code 130, or death by SIGINT (128 + 2).
    expect(result.code === 130 || result.signal === "SIGINT").toBe(true);
    expect(result.stderr).toMatch(/did not end within seconds of SIGINT/);
    expect((await readCsv(path.join(ws.dir, "out.csv"))).length).toBe(3);
  }, 40_000);

  it("keeps captioning when stderr is closed early, and exits with the code the work earned", async () => {
    const paths = await makeDistinctImages(ws.dir, 30);
    // Every third image fails, so there is plenty to say on stderr after it is gone.
    await fake.start({
      apiKey: TEST_KEY,
      latencyMs: 5,
      respond: (request) =>
        request.index % 3 === 0
          ? { kind: "status", status: 400, body: { error: { message: "refused" } } }
          : undefined,
    });
    const child = startCli(["photos", "-o", "out.csv", "-c", "2", "--retries", "0"], {
      cwd: ws.dir,
      baseUrl: fake.baseUrl,
    });
    const exit = new Promise<number | null>((resolve) => child.on("close", resolve));
    // Like `2>&1 | head -3`: read a little, then close the read end of the pipe.
    let seen = "";
    await new Promise<void>((resolve) => {
      child.stderr?.on("data", (chunk: Buffer) => {
        seen += chunk.toString();
        if (seen.split("\n").length > 3) {
          child.stderr?.destroy();
          resolve();
        }
      });
    });
    expect(await exit).toBe(3);
    const rows = await readCsv(path.join(ws.dir, "out.csv"));
    const failures = await readJsonl(path.join(ws.dir, "out.errors.jsonl"));
    expect(rows.length + failures.length).toBe(paths.length);
    expect(failures.length).toBe(10);
    await expect(stat(path.join(ws.dir, "out.csv.lock"))).rejects.toThrow();
  }, 40_000);
});

describe("output format", () => {
  it("refuses a --format that contradicts OUT's extension, naming both", async () => {
    await makeDistinctImages(ws.dir, 1);
    const result = await runCli(["photos", "-o", "out.csv", "--format", "jsonl", "--dry-run"], {
      cwd: ws.dir,
    });
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/--format jsonl contradicts -o out\.csv/);
  });

  it("reads an existing OUT in the format it holds, whatever its name", async () => {
    const paths = await makeDistinctImages(ws.dir, 4);
    await fake.start({ apiKey: TEST_KEY });
    // What the old bug left behind: JSONL rows in a file named .csv.
    const first = JSON.stringify({ path: paths[0], caption: "old", sha256: "x" });
    await writeFile(path.join(ws.dir, "out.csv"), `${first}\n`);
    const result = await runCli(["photos", "-o", "out.csv"], {
      cwd: ws.dir,
      baseUrl: fake.baseUrl,
    });
    expect(result.code).toBe(0);
    expect(result.stderr).toMatch(/out\.csv holds JSONL despite its name/);
    const rows = await readJsonl(path.join(ws.dir, "out.csv"));
    expect(rows.map((row) => row.path).sort()).toEqual([...paths].sort());
    expect(fake.requests).toHaveLength(3);

    // A name that says nothing is fine once the file exists.
    await writeFile(path.join(ws.dir, "captions.out"), `${first}\n`);
    const named = await runCli(["photos", "-o", "captions.out"], {
      cwd: ws.dir,
      baseUrl: fake.baseUrl,
    });
    expect(named.code).toBe(0);
    expect(await readJsonl(path.join(ws.dir, "captions.out"))).toHaveLength(4);
  });
});

describe("the errors file", () => {
  it("an unwritable --errors stops the run before anything is sent", async () => {
    await makeDistinctImages(ws.dir, 2);
    await fake.start({ apiKey: TEST_KEY });
    const result = await runCli(["photos", "-o", "out.csv", "--errors", "/proc/e.jsonl"], {
      cwd: ws.dir,
      baseUrl: fake.baseUrl,
    });
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/cannot create the errors file \/proc\/e\.jsonl/);
    expect(result.stderr).not.toMatch(/failures are listed in/);
    expect(fake.requests).toHaveLength(0);
  });

  it("the summary says so when failures could not be written after all", async () => {
    await makeDistinctImages(ws.dir, 3);
    const errorsFile = path.join(ws.dir, "out.errors.jsonl");
    await fake.start({
      apiKey: TEST_KEY,
      respond: (request) => {
        if (request.index !== 0) return undefined;
        execFileSync("mkdir", [errorsFile]);
        return { kind: "status", status: 400, body: { error: { message: "bad image" } } };
      },
    });
    const result = await runCli(["photos", "-o", "out.csv", "-c", "1"], {
      cwd: ws.dir,
      baseUrl: fake.baseUrl,
    });
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/failed photos\/img-0000\.jpg: HTTP 400: bad image/);
    expect(result.stderr).toMatch(/the errors file out\.errors\.jsonl could not be written/);
    expect(result.stderr).not.toMatch(/failures are listed in/);
  });
});

describe("doomed runs stop early", () => {
  it("a base URL without /v1 stops the run and suggests the right one", async () => {
    await makeDistinctImages(ws.dir, 20);
    await fake.start({ apiKey: TEST_KEY, v1Only: true });
    const root = fake.baseUrl.replace(/\/v1$/, "");
    const result = await runCli(["photos", "-o", "out.csv", "-c", "2", "--base-url", root], {
      cwd: ws.dir,
    });
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`did you mean ${root}/v1?`);
    expect(fake.requests.length).toBeLessThanOrEqual(2);
    expect(result.stderr).not.toMatch(/failed photos/);

    const check = await runCli(["check", "--base-url", root], { cwd: ws.dir });
    expect(check.code).toBe(1);
    expect(check.stderr).toContain(`did you mean ${root}/v1?`);

    // The URL's own words echoed in the 404 do not make it one about a model.
    const echoed = await runCli(["check", "--base-url", `${root}/models-api`], { cwd: ws.dir });
    expect(echoed.code).toBe(1);
    expect(echoed.stderr).toContain(`did you mean ${root}/models-api/v1?`);

    // A 404 about the model is not a wrong URL.
    const models = await fake.startAnother({
      apiKey: TEST_KEY,
      respond: () => ({
        kind: "status",
        status: 404,
        body: { error: { message: "The model `nope` does not exist.", code: 404 } },
      }),
    });
    const model = await runCli(["photos", "-o", "m.csv", "-m", "nope"], {
      cwd: ws.dir,
      baseUrl: models.baseUrl,
    });
    await models.close();
    expect(model.stderr).not.toMatch(/did you mean/);
  }, 30_000);

  it.skipIf(!isRoot && !underCi)(
    "a host name that does not resolve stops the run at once",
    async () => {
      await makeDistinctImages(ws.dir, 10);
      // A private mount namespace where host names come from /etc/hosts alone: the lookup fails
      // with ENOTFOUND on this machine, and no query leaves it.
      const nss = path.join(ws.dir, "nsswitch.conf");
      await writeFile(nss, "hosts: files\n");
      const script = `mount --bind "$1" /etc/nsswitch.conf && shift && exec "$@"`;
      const child = spawn(
        "unshare",
        [
          "-m",
          "sh",
          "-c",
          script,
          "sh",
          nss,
          process.execPath,
          CLI,
          "photos",
          "-o",
          "out.csv",
          "--base-url",
          "http://no-such-host.invalid:8000/v1",
        ],
        { cwd: ws.dir, env: { ...process.env, MINICPM_API_KEY: TEST_KEY } },
      );
      const result = await collect(child);
      expect(result.code).toBe(1);
      expect(result.stderr).toMatch(/cannot resolve the host no-such-host\.invalid/);
      // Stopped at the first answer, not after six attempts per image.
      expect(result.stderr).not.toMatch(/failed photos/);
      expect(result.stderr).not.toMatch(/after \d+ attempts/);
    },
    30_000,
  );
});

/** Runs the CLI in this process with the hosted default base URL routed to the fake. */
async function runHosted(args: string[], env: NodeJS.ProcessEnv) {
  const stderr = new PassThrough();
  const stdout = new PassThrough();
  let err = "";
  let out = "";
  stderr.on("data", (chunk: Buffer) => {
    err += chunk.toString();
  });
  stdout.on("data", (chunk: Buffer) => {
    out += chunk.toString();
  });
  const endpoint = fake as FakeEndpoint;
  const code = await main(args, {
    cwd: ws.dir,
    env,
    stdout,
    stderr,
    // The transport is the only thing swapped: everything the CLI does runs as it would.
    fetch: (url, init) => fetch(url.replace(DEFAULT_BASE_URL, endpoint.baseUrl), init),
  });
  return { code, stderr: err, stdout: out };
}

describe("the shared trial key", () => {
  it("is used for the hosted API when no key is set, said once, and never shown", async () => {
    await makeDistinctImages(ws.dir, 3);
    await fake.start({ apiKey: TRIAL_KEY });
    const result = await runHosted(["photos", "-o", "out.csv"], {});
    expect(result.code).toBe(0);
    expect(result.stderr.match(/shared trial key/g)).toHaveLength(1);
    expect(result.stderr).toMatch(/set MINICPM_API_KEY/);
    expect(fake.requests.map((r) => r.headers.authorization)).toEqual(
      Array(3).fill(`Bearer ${TRIAL_KEY}`),
    );
    const written = await readFile(path.join(ws.dir, "out.csv"), "utf8");
    expect(result.stderr + written).not.toContain(TRIAL_KEY);
  });

  it("a refusal says the trial key was refused and how to set one's own", async () => {
    await makeDistinctImages(ws.dir, 3);
    await fake.start({ apiKey: "sk-something-else" });
    const result = await runHosted(["photos", "-o", "out.csv"], {});
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/refused the shared trial key .*set MINICPM_API_KEY/);
    const check = await runHosted(["check"], {});
    expect(check.code).toBe(1);
    expect(check.stderr).toMatch(/refused the shared trial key/);
  });

  it("is not used when a key is set, nor sent to a server of the user's own", async () => {
    await makeDistinctImages(ws.dir, 1);
    await fake.start();
    const own = await runHosted(["photos", "-o", "a.csv"], { MINICPM_API_KEY: TEST_KEY });
    expect(own.stderr).not.toMatch(/trial key/);
    expect(fake.requests[0]?.headers.authorization).toBe(`Bearer ${TEST_KEY}`);
    // An OPENAI_API_KEY is for the user's own servers, never for the hosted API.
    fake.resetStats();
    await runHosted(["photos", "-o", "b.csv"], { OPENAI_API_KEY: "sk-openai-secret" });
    expect(fake.requests[0]?.headers.authorization).toBe(`Bearer ${TRIAL_KEY}`);
    const local = await runCli(["photos", "-o", "c.csv"], {
      cwd: ws.dir,
      baseUrl: fake.baseUrl,
      env: { MINICPM_API_KEY: undefined },
    });
    expect(local.code).toBe(0);
    expect(local.stderr).not.toMatch(/trial key/);
  });

  it("among several endpoints, OPENAI_API_KEY goes to the user's own and never to the hosted API", async () => {
    await makeDistinctImages(ws.dir, 12);
    await fake.start({ apiKey: TRIAL_KEY });
    const own = await fake.startAnother({ apiKey: "sk-openai-secret" });
    try {
      const result = await runHosted(
        ["photos", "-o", "out.csv", "--base-url", DEFAULT_BASE_URL, "--base-url", own.baseUrl],
        { OPENAI_API_KEY: "sk-openai-secret" },
      );
      expect(result.code, result.stderr).toBe(0);
      expect(fake.requests.length).toBeGreaterThan(0);
      expect(own.requests.length).toBeGreaterThan(0);
      expect(fake.requests.every((r) => r.headers.authorization === `Bearer ${TRIAL_KEY}`)).toBe(
        true,
      );
      expect(own.requests.every((r) => r.headers.authorization === "Bearer sk-openai-secret")).toBe(
        true,
      );
      expect(result.stderr).toMatch(/OPENAI_API_KEY is never sent to the hosted API/);
      expect(result.stderr).not.toContain("sk-openai-secret");
    } finally {
      await own.close();
    }
  });
});

describe("messages", () => {
  it("bad values, mistyped flags and bad choices read alike and name what was given", async () => {
    const cases: [string[], RegExp][] = [
      [["x", "-o", "o.csv", "--concurrency", "abc"], /--concurrency: .*got "abc"/],
      [
        ["x", "-o", "o.csv", "--concurency", "3"],
        /--concurency: no such flag \(did you mean --concurrency\?\)/,
      ],
      [
        ["x", "-o", "o.csv", "--format", "xml"],
        /--format: expected one of csv, jsonl, parquet, got "xml"/,
      ],
      [
        ["x", "-o", "o.csv", "--log-format", "yaml"],
        /--log-format: expected one of text, json, got "yaml"/,
      ],
      [["x", "-o"], /-o: needs a value/],
      [
        ["x", "-o", "o.csv", "--max-pixles", "9"],
        /^caption: --max-pixles: no such flag \(did you mean --max-pixels\?\)\ncaption: see/,
      ],
      [["x", "-o", "o.csv", "-x"], /^caption: -x: no such flag\ncaption: see/],
      [["check", "--concurrency", "3"], /^caption: --concurrency: no such flag\ncaption: see/],
    ];
    await writeFile(path.join(ws.dir, "x"), "");
    for (const [args, message] of cases) {
      const result = await runCli(args, { cwd: ws.dir, baseUrl: "http://127.0.0.1:9/v1" });
      expect(result.code, args.join(" ")).toBe(2);
      expect(result.stderr, args.join(" ")).toMatch(message);
      for (const line of result.stderr.trim().split("\n")) {
        expect(line, args.join(" ")).toMatch(/^caption: /);
      }
    }
  });

  it("a prompt that mentions --log-format json is only a prompt", async () => {
    await makeDistinctImages(ws.dir, 1);
    const result = await runCli(
      ["photos", "-o", "o.csv", "--dry-run", "-p", "say --log-format json -q"],
      { cwd: ws.dir },
    );
    expect(result.code).toBe(0);
    expect(result.stderr).toMatch(/^caption: dry run/m);
  });

  it("--help fits 80 columns and lists what a first run needs first", async () => {
    const result = await runCli(["--help"], { cwd: ws.dir });
    expect(result.code).toBe(0);
    const lines = result.stdout.split("\n");
    for (const line of lines) expect(line.length, line).toBeLessThanOrEqual(80);
    const at = (flag: string) => lines.findIndex((line) => line.includes(flag));
    expect(at("-o, --output")).toBeGreaterThan(-1);
    expect(lines[at("-o, --output")]).toMatch(/required/);
    for (const later of ["--max-pixels", "--retries", "--image-format", "--errors"]) {
      expect(at("-o, --output")).toBeLessThan(at(later));
    }
    // Examples stay on one line each.
    const examples = lines.slice(at("Examples:") + 1).filter((line) => line.startsWith("  "));
    for (const line of examples) expect(line).toMatch(/^ {2}caption \S/);
  });
});

describe("inputs that match nothing", () => {
  it("warns in the summary, exits 0, and exits 2 under --strict before sending", async () => {
    await makeDistinctImages(ws.dir, 2);
    await mkdir(path.join(ws.dir, "empty"));
    await writeFile(path.join(ws.dir, "empty", "notes.txt"), "not an image");
    await fake.start({ apiKey: TEST_KEY });
    const args = ["photos", "empty", "shots/*.pgn", "-o", "out.csv"];
    const loose = await runCli(args, { cwd: ws.dir, baseUrl: fake.baseUrl });
    expect(loose.code).toBe(0);
    const summary = loose.stderr.trim().split("\n").at(-1) ?? "";
    expect(summary).toMatch(/2 captioned/);
    expect(summary).toMatch(/warning: empty, shots\/\*\.pgn match no image file/);

    // All captioned already is "nothing new", not "nothing there".
    const again = await runCli(["photos", "-o", "out.csv", "--strict"], {
      cwd: ws.dir,
      baseUrl: fake.baseUrl,
    });
    expect(again.code).toBe(0);
    expect(again.stderr).not.toMatch(/warning/);

    fake.resetStats();
    const strict = await runCli([...args, "--strict", "--overwrite"], {
      cwd: ws.dir,
      baseUrl: fake.baseUrl,
    });
    expect(strict.code).toBe(2);
    expect(strict.stderr).toMatch(/--strict: shots\/\*\.pgn matches no image file/);
    expect(strict.stderr).toMatch(/--strict: empty matches no image file/);
    expect(fake.requests).toHaveLength(0);
  });
});

// The live line is only drawn on a terminal; tmux gives the CLI a real one and shows the screen.
const hasTmux = (() => {
  try {
    execFileSync("tmux", ["-V"]);
    return true;
  } catch {
    return false;
  }
})();

describe("the live line on a narrow terminal", () => {
  it.skipIf(!hasTmux && !underCi)(
    "shows the images done before, and Ctrl-C leaves no fragment of it",
    async () => {
      const paths = await makeDistinctImages(ws.dir, 30);
      await fake.start({ apiKey: TEST_KEY, latencyMs: 150 });
      // An earlier run captioned the first 10.
      const earlier = await runCli(["photos/img-000*.jpg", "-o", "out.csv"], {
        cwd: ws.dir,
        baseUrl: fake.baseUrl,
      });
      expect(earlier.code).toBe(0);
      const socket = `caption-test-${process.pid}-${Date.now()}`;
      // Asynchronous: the fake endpoint answers from this very process, so nothing may block it.
      const tmux = async (...args: string[]) =>
        (await execFileAsync("tmux", ["-L", socket, ...args], { encoding: "utf8" })).stdout;
      let shown = "";
      const screen = () => shown;
      const shows = (pattern: RegExp) => async () => {
        shown = await tmux("capture-pane", "-p", "-t", "t");
        return pattern.test(shown);
      };
      const command = `trap true INT; "${process.execPath}" "${CLI}" photos -o out.csv -c 1; echo "EXIT=$?"; sleep 60`;
      try {
        await tmux(
          "new-session",
          "-d",
          "-s",
          "t",
          "-x",
          "40",
          "-y",
          "20",
          "-c",
          ws.dir,
          "-e",
          `MINICPM_API_KEY=${TEST_KEY}`,
          "-e",
          `MINICPM_BASE_URL=${fake.baseUrl}`,
          "sh",
          "-c",
          command,
        );
        await waitFor(shows(/in all\)/), 20_000);
        const live = screen();
        expect(live).toMatch(/\/20 done \(\d+\/30 in all\)/);
        for (const line of live.split("\n")) expect(line.length).toBeLessThanOrEqual(40);
        await waitFor(shows(/\b[3-9]\/20 done/), 20_000);
        await tmux("send-keys", "-t", "t", "C-c");
        await waitFor(shows(/EXIT=\d+/), 20_000);
        const after = screen();
        expect(after).toMatch(/EXIT=130/);
        expect(after, after).not.toMatch(/\d+\/20 done/);
      } finally {
        try {
          await tmux("kill-server");
        } catch {
          // Already gone.
        }
      }
      const rows = await readCsv(path.join(ws.dir, "out.csv"));
      expect(new Set(rows.map((row) => row.path)).size).toBe(rows.length);
      expect(rows.length).toBeLessThan(paths.length);
    },
    60_000,
  );
});
