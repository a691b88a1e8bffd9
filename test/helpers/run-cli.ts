import { type ChildProcess, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";

export const CLI = fileURLToPath(new URL("../../bin/caption.cjs", import.meta.url));
export const TEST_KEY = "sk-test-0123456789abcdef";

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface CliOptions {
  cwd: string;
  /** Base URL of the fake endpoint; every test talks to loopback only. */
  baseUrl?: string;
  env?: Record<string, string | undefined>;
  /** Run as this user (needs root). */
  user?: { uid: number; gid: number };
}

/** Starts the real CLI as a child process, the way a user runs it. */
export function startCli(args: string[], options: CliOptions): ChildProcess {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env)) {
    // Never let a developer's real endpoint or key leak into a test run.
    if (value !== undefined && !/^(MINICPM|OPENAI)_/.test(key)) env[key] = value;
  }
  env.MINICPM_API_KEY = TEST_KEY;
  if (options.baseUrl) env.MINICPM_BASE_URL = options.baseUrl;
  for (const [key, value] of Object.entries(options.env ?? {})) {
    if (value === undefined) delete env[key];
    else env[key] = value;
  }
  return spawn(process.execPath, [CLI, ...args], {
    cwd: options.cwd,
    env,
    stdio: ["ignore", "pipe", "pipe"],
    ...(options.user ?? {}),
  });
}

/** Runs the CLI to completion and collects what it printed. */
export function runCli(args: string[], options: CliOptions): Promise<CliResult> {
  const child = startCli(args, options);
  return collect(child);
}

export function collect(child: ChildProcess): Promise<CliResult> {
  let stdout = "";
  let stderr = "";
  child.stdout?.on("data", (chunk: Buffer) => {
    stdout += chunk.toString();
  });
  child.stderr?.on("data", (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  return new Promise((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

/** The run's summary event, from the stderr of a run with `--log-format json`. */
export function jsonSummaryOf(stderr: string): Record<string, unknown> {
  const events = stderr
    .trim()
    .split("\n")
    .map((line) => JSON.parse(line) as Record<string, unknown>);
  const summary = events.find((event) => event.event === "summary");
  if (!summary) throw new Error(`no summary in ${stderr}`);
  return summary;
}
