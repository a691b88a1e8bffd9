import path from "node:path";
import yargs, { type Argv } from "yargs";
import { createClient } from "./client.js";
import {
  type CaptionConfig,
  DEFAULT_BASE_URL,
  DEFAULT_MAX_PIXELS,
  DEFAULT_MODEL,
  resolveConfig,
} from "./config.js";
import { CaptionError, RunAbortedError, UsageError } from "./errors.js";
import { captionImages, RunControl, type RunEvent, type RunSummary } from "./pipeline.js";
import { Reporter, summaryLine } from "./progress.js";
import { redactSecret } from "./redact.js";
import { buildTextRequest, extractCaption } from "./stages/request.js";
import type { OutputFormat } from "./types.js";

/** Exit codes, as documented in the README. */
export const EXIT = {
  ok: 0,
  aborted: 1,
  usage: 2,
  someFailed: 3,
  interrupted: 130,
  terminated: 143,
} as const;

export interface CliContext {
  cwd: string;
  env: NodeJS.ProcessEnv;
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
}

const defaultContext = (): CliContext => ({
  cwd: process.cwd(),
  env: process.env,
  stdout: process.stdout,
  stderr: process.stderr,
});

/** Flags shared by both commands, in the order --help shows them. */
function endpointOptions<T>(y: Argv<T>) {
  return y
    .option("base-url", {
      type: "string",
      describe: "OpenAI-compatible API base URL (env MINICPM_BASE_URL)",
      defaultDescription: DEFAULT_BASE_URL,
    })
    .option("api-key", {
      type: "string",
      describe: "API key; prefer the MINICPM_API_KEY env variable, which other users cannot see",
    })
    .option("model", {
      alias: "m",
      type: "string",
      describe: "Model id",
      defaultDescription: DEFAULT_MODEL,
    })
    .option("max-tokens", {
      type: "number",
      describe: "Reply token budget",
      defaultDescription: "512; 2048 for Thinking models",
    })
    .option("temperature", {
      type: "number",
      describe: "Sampling temperature (server default if unset)",
    })
    .option("timeout", {
      type: "number",
      describe: "Seconds to wait for each reply before retrying",
      defaultDescription: "120",
    })
    .option("config", {
      type: "string",
      describe: "JSON file of settings (keys as in config/*.json)",
    })
    .option("quiet", { alias: "q", type: "boolean", describe: "Print only errors and the summary" })
    .option("log-format", {
      choices: ["text", "json"],
      describe: "stderr as text lines, or one JSON object per event for log collectors",
      defaultDescription: "text",
    })
    .option("verbose", {
      alias: "v",
      type: "boolean",
      describe: "Print retries, and stack traces on errors",
    })
    .conflicts("quiet", "verbose");
}

function captionOptions<T>(y: Argv<T>) {
  return endpointOptions(y)
    .positional("inputs", {
      type: "string",
      array: true,
      describe: "Folders (searched recursively), image files, or glob patterns",
    })
    .option("output", {
      alias: "o",
      type: "string",
      describe: "Where to write captions (.csv or .jsonl)",
    })
    .option("format", {
      choices: ["csv", "jsonl"],
      describe: "Output format",
      defaultDescription: "from OUT's extension",
    })
    .option("prompt", { alias: "p", type: "string", describe: "Instruction sent with every image" })
    .option("prompt-file", { type: "string", describe: "Read the prompt from a file" })
    .conflicts("prompt", "prompt-file")
    .option("concurrency", {
      alias: "c",
      type: "number",
      describe: "Requests in flight at once",
      defaultDescription: "8",
    })
    .option("rpm", {
      type: "number",
      describe: "At most this many requests per minute (for endpoints with a known quota)",
    })
    .option("retries", {
      type: "number",
      describe: "Further attempts after a transient failure",
      defaultDescription: "5",
    })
    .option("max-pixels", {
      type: "number",
      describe: "Shrink images to at most this many pixels (never enlarges)",
      defaultDescription: `${DEFAULT_MAX_PIXELS} (9 × 448²)`,
    })
    .option("max-side", { type: "number", describe: "Also cap the longest side, in pixels" })
    .option("image-format", {
      choices: ["jpeg", "png"],
      describe: "Encoding of the images sent",
      defaultDescription: "jpeg",
    })
    .option("errors", {
      type: "string",
      describe: "Where to list failed images",
      defaultDescription: "<OUT stem>.errors.jsonl",
    })
    .option("resume", {
      type: "boolean",
      default: true,
      describe: "Skip images already in OUT (--no-resume starts fresh, like --overwrite)",
    })
    .option("overwrite", { type: "boolean", describe: "Discard OUT and caption everything again" })
    .option("csv-formula-guard", {
      type: "boolean",
      describe: "Prefix captions starting with = + - @ with ' so spreadsheets do not run them",
    })
    .option("dry-run", {
      type: "boolean",
      describe: "Prepare images and list what would be sent; send nothing",
    });
}

/** Flag names (camel-cased by yargs) that are config settings rather than run switches. */
const SETTING_FLAGS = [
  "baseUrl",
  "apiKey",
  "model",
  "prompt",
  "promptFile",
  "maxTokens",
  "temperature",
  "concurrency",
  "rpm",
  "retries",
  "timeout",
  "maxPixels",
  "maxSide",
  "imageFormat",
  "format",
  "output",
  "errors",
] as const;

function settingFlags(argv: Record<string, unknown>): Record<string, unknown> {
  const flags: Record<string, unknown> = {};
  for (const key of SETTING_FLAGS) {
    if (argv[key] !== undefined) flags[key] = argv[key];
  }
  return flags;
}

/** Runs the CLI and returns the exit code; never calls process.exit. */
export async function main(
  argv: string[],
  context: CliContext = defaultContext(),
): Promise<number> {
  let job: (() => Promise<number>) | null = null;
  // Known before parsing, so that even a usage error comes out in the format asked for.
  const verbose = argv.includes("--verbose") || argv.includes("-v");
  const reporter = new Reporter({
    stream: context.stderr,
    format:
      argv.includes("--log-format=json") || argv.join(" ").includes("--log-format json")
        ? "json"
        : "text",
    quiet: argv.includes("--quiet") || argv.includes("-q"),
    verbose,
    secret: context.env.MINICPM_API_KEY,
  });

  const parser = yargs(argv)
    .scriptName("caption")
    .usage(
      "$0 <inputs..> -o OUT [options]\n\nCaption every image in folders, files or glob patterns through an OpenAI-compatible vision model. Rerunning the same command resumes where the last run stopped.",
    )
    .command(
      "$0 <inputs..>",
      "Caption images into OUT",
      (y) => captionOptions(y),
      (args) => {
        job = () => runCaption(args as Record<string, unknown>, context, reporter);
      },
    )
    .command(
      "check",
      "Send one text-only request to verify the base URL, key and model",
      (y) => endpointOptions(y),
      (args) => {
        job = () => runCheck(args as Record<string, unknown>, context, reporter);
      },
    )
    .example("$0 photos/ -o captions.csv", "Caption a folder with the hosted MiniCPM API")
    .example("$0 'shots/**/*.png' -o out.jsonl -c 16", "Caption a glob, 16 requests at a time")
    .example(
      "$0 check --base-url http://localhost:8000/v1 -m openbmb/MiniCPM-V-4.6",
      "Test a self-hosted vLLM",
    )
    .epilogue(
      "Exit codes: 0 all captioned, 3 some images failed (see the errors file), 2 usage or config error, 1 run aborted, 130/143 interrupted.",
    )
    .strict()
    .help()
    .alias("help", "h")
    .version()
    .wrap(Math.min(110, process.stdout.columns ?? 100))
    .exitProcess(false)
    .fail((message, error) => {
      throw error ?? new UsageError([friendlyUsage(message)]);
    });

  try {
    await parser.parseAsync();
    if (!job) return EXIT.ok; // --help or --version was printed
    return await (job as () => Promise<number>)();
  } catch (error) {
    reporter.stop();
    if (error instanceof UsageError) {
      for (const problem of error.problems) reporter.say(problem, "error");
      reporter.say("see caption --help", "error");
      return EXIT.usage;
    }
    if (error instanceof CaptionError) {
      reporter.say(error.message, "error");
      if (verbose && error.stack && !(error instanceof RunAbortedError))
        reporter.detail(error.stack);
      return EXIT.aborted;
    }
    const message = error instanceof Error ? error.message : String(error);
    reporter.say(
      `internal error: ${message}${verbose ? "" : " (rerun with --verbose for the stack trace)"}`,
      "error",
    );
    if (verbose && error instanceof Error && error.stack) reporter.detail(error.stack);
    return EXIT.aborted;
  }
}

function friendlyUsage(message: string): string {
  if (/Not enough non-option arguments/.test(message)) {
    return "no inputs given: name one or more folders, image files or glob patterns, e.g. caption photos/ -o captions.csv";
  }
  return message;
}

/** The run's config; from here on the key it names is masked in everything printed. */
function loadConfig(
  args: Record<string, unknown>,
  context: CliContext,
  reporter: Reporter,
): CaptionConfig {
  const config = resolveConfig({
    flags: settingFlags(args),
    env: context.env,
    cwd: context.cwd,
    configFile: typeof args.config === "string" ? args.config : undefined,
  });
  reporter.setSecret(config.apiKey);
  return config;
}

/** The format named by --format, else the one OUT's extension implies. */
export function outputFormat(output: string, format: OutputFormat | undefined): OutputFormat {
  if (format) return format;
  const ext = path.extname(output).toLowerCase();
  if (ext === ".csv") return "csv";
  if (ext === ".jsonl" || ext === ".ndjson") return "jsonl";
  throw new UsageError([
    `--format: cannot tell the format from "${path.basename(output)}"; name OUT *.csv or *.jsonl, or pass --format csv|jsonl`,
  ]);
}

/** `<OUT stem>.errors.jsonl` beside OUT. */
export function defaultErrorsPath(output: string): string {
  const ext = path.extname(output);
  return path.join(path.dirname(output), `${path.basename(output, ext)}.errors.jsonl`);
}

async function runCaption(
  args: Record<string, unknown>,
  context: CliContext,
  reporter: Reporter,
): Promise<number> {
  const config = loadConfig(args, context, reporter);
  const problems: string[] = [];
  if (!config.output) {
    problems.push("-o/--output is required: where to write the captions, e.g. -o captions.csv");
  }
  if (args.dryRun !== true) problems.push(...missingKey(config));
  if (problems.length > 0) throw new UsageError(problems);
  const output = config.output as string;
  const format = outputFormat(output, config.format);
  const errorsPath = config.errors ?? defaultErrorsPath(output);
  if (path.resolve(errorsPath) === path.resolve(output)) {
    throw new UsageError(["--errors: the errors file must not be OUT itself; pick another path"]);
  }
  const dryRun = args.dryRun === true;
  const overwrite = args.overwrite === true || args.resume === false;
  const control = new RunControl();
  const stopOn = (signal: NodeJS.Signals) => {
    let seen = 0;
    const handler = () => {
      seen += 1;
      stoppedBy ??= signal;
      if (seen === 1) {
        reporter.say(
          `${signal}: finishing requests in flight, then stopping (again to cancel them)`,
          "warn",
        );
        control.stop();
      } else {
        control.abort();
      }
    };
    process.on(signal, handler);
    return () => process.off(signal, handler);
  };
  let stoppedBy: NodeJS.Signals | null = null;
  const unhook = [stopOn("SIGINT"), stopOn("SIGTERM")];

  // `caption --dry-run | head` closes stdout early; that is the reader's choice, not an error.
  let stdoutOpen = true;
  context.stdout.on("error", () => {
    stdoutOpen = false;
  });
  const onEvent = (event: RunEvent): void => {
    reporter.onEvent(event);
    if (dryRun && stdoutOpen && event.type === "prepared") {
      context.stdout.write(
        `${event.path}\t${event.image.width}x${event.image.height}\t${event.image.bytes}\n`,
      );
    }
  };
  let summary: RunSummary;
  try {
    summary = await captionImages(
      {
        inputs: (args.inputs as string[]).map(String),
        cwd: context.cwd,
        output,
        format,
        errorsPath,
        overwrite,
        dryRun,
        baseUrl: config.baseUrl,
        apiKey: config.apiKey,
        model: config.model,
        prompt: config.prompt,
        maxTokens: config.maxTokens,
        temperature: config.temperature,
        concurrency: config.concurrency,
        rpm: config.rpm,
        retries: config.retries,
        timeoutMs: config.timeoutMs,
        prepare: config.prepare,
        csvFormulaGuard: args.csvFormulaGuard === true,
      },
      { onEvent, control },
    );
  } finally {
    reporter.stop();
    for (const off of unhook) off();
  }
  const shownOutput = path.relative(context.cwd, output) || output;
  const shownErrors = path.relative(context.cwd, errorsPath) || errorsPath;
  if (summary.aborted) reporter.say(summary.aborted.message, "error");
  const exitCode = summary.aborted
    ? EXIT.aborted
    : stoppedBy
      ? stoppedBy === "SIGTERM"
        ? EXIT.terminated
        : EXIT.interrupted
      : summary.failed > 0
        ? EXIT.someFailed
        : EXIT.ok;
  reporter.finish(summary, summaryLine(summary, shownOutput, shownErrors, dryRun), exitCode);
  return exitCode;
}

/** The hosted API always needs a key; self-hosted servers often do not. */
function missingKey(config: CaptionConfig): string[] {
  return !config.apiKey && config.baseUrl === DEFAULT_BASE_URL
    ? [
        "no API key: set MINICPM_API_KEY (or pass --api-key) for the hosted API, or point --base-url at a self-hosted server",
      ]
    : [];
}

async function runCheck(
  args: Record<string, unknown>,
  context: CliContext,
  reporter: Reporter,
): Promise<number> {
  const config = loadConfig(args, context, reporter);
  const problems = missingKey(config);
  if (problems.length > 0) throw new UsageError(problems);
  const client = createClient({
    baseUrl: config.baseUrl,
    apiKey: config.apiKey,
    timeoutMs: config.timeoutMs,
  });
  const request = buildTextRequest("Introduce yourself in one sentence.", {
    model: config.model,
    maxTokens: config.maxTokens,
    temperature: config.temperature,
  });
  try {
    const reply = await client.chat(request);
    const { caption } = extractCaption(reply.body);
    context.stdout.write(`${redactSecret(caption, config.apiKey)}\n`);
    reporter.say(`${config.baseUrl} answered as ${config.model} in ${reply.latencyMs} ms`);
    return EXIT.ok;
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    reporter.say(
      `check failed against ${config.baseUrl} with model ${config.model}: ${message}`,
      "error",
    );
    return EXIT.aborted;
  }
}
