import path from "node:path";
import yargs, { type Argv } from "yargs";
import { Parser } from "yargs/helpers";
import { AuthError, CaptionError, RunAbortedError, UsageError } from "../errors.js";
import { captionImages, RunControl, type RunEvent, type RunSummary } from "../run/pipeline.js";
import type { ScaleContext } from "../scale/commands.js";
import { createClient, type FetchLike } from "../send/client.js";
import { familyOfListed, listedIdOf, MODEL_FAMILIES } from "../send/model-families.js";
import {
  chooseModel,
  MODEL_LIST_TIMEOUT_MS,
  olderIdsOf,
  type ServedModel,
  saysModelMissing,
  servedModels,
} from "../send/models.js";
import { buildTextRequest, extractCaption } from "../send/request.js";
import { chooseOutputFormat, defaultErrorsPath } from "../settings/output-format.js";
import {
  type CaptionConfig,
  DEFAULT_MODEL,
  defaultConcurrency,
  isHostedApi,
  resolveConfig,
  SETTING_SPECS,
  type SettingSpec,
  type Settings,
} from "../settings/resolve.js";
import { keyFor, TRIAL_KEY_NOTICE, trialKeyRefused } from "../settings/trial-key.js";
import type { HfMetadataFormat } from "../sinks/hf-metadata-sink.js";
import {
  SIDECAR_POLICIES,
  type SidecarOptions,
  type SidecarPolicy,
  sidecarExtProblem,
} from "../sinks/sidecar-sink.js";
import type { XmpNaming } from "../sinks/xmp-sink.js";
import { recordFolderProblem } from "../trust/links.js";
import { readLimited } from "../trust/read-limited.js";
import { forTerminal } from "../trust/text.js";
import { describeErrno, folderInputs } from "../util/folders.js";
import { redactSecret, urlCredentials } from "../util/redact.js";
import { closestName } from "../util/suggest.js";
import { EXIT, exitCodeOf } from "./exit-codes.js";
import { type LogFormat, Reporter, summaryLine } from "./progress.js";
import { showConfig } from "./show-config.js";
import { watchSignals } from "./signals.js";

export interface CliContext {
  cwd: string;
  env: NodeJS.ProcessEnv;
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  /** The HTTP transport; tests of the hosted default inject one so nothing leaves the machine. */
  fetch?: FetchLike;
}

const defaultContext = (): CliContext => ({
  cwd: process.cwd(),
  env: process.env,
  stdout: process.stdout,
  stderr: process.stderr,
});

/** One command-line flag. Values are taken as text and checked by the config layer, which names them. */
interface FlagSpec {
  name: string;
  alias?: string;
  boolean?: boolean;
  /** Parsed as a number by yargs but left as text when it is not one, so the message can show it. */
  number?: boolean;
  describe: string;
  defaultDescription?: string;
  /** Listed first in --help, under "Basics": what a first run needs. */
  basic?: boolean;
  /** May be given without a value (`--sidecar` alone means `.txt`). */
  optionalValue?: boolean;
}

/** The settings' flags, from the one table of settings in config.ts. */
function settingFlags(scope: SettingSpec["scope"]): FlagSpec[] {
  return Object.values(SETTING_SPECS)
    .filter((spec) => spec.scope === scope)
    .map((spec) => ({
      name: spec.flag.slice(2),
      describe: spec.describe,
      number: spec.kind.type === "int" || spec.kind.type === "number",
      ...(spec.kind.type === "boolean" ? { boolean: true } : {}),
      ...(spec.kind.type === "switch" ? { optionalValue: true } : {}),
      ...(spec.alias ? { alias: spec.alias } : {}),
      ...(spec.shownDefault ? { defaultDescription: spec.shownDefault } : {}),
      ...(spec.basic ? { basic: true } : {}),
    }));
}

/** Switches of the command line itself, which are no settings of a run. */
const ENDPOINT_SWITCHES: readonly FlagSpec[] = [
  {
    name: "config",
    basic: true,
    describe: "Settings file (JSON), or the name of a bundled one: vllm, ollama, …",
  },
  {
    name: "log-format",
    describe: "stderr as text, or json: one JSON object per event",
    defaultDescription: "text",
  },
  { name: "quiet", alias: "q", boolean: true, describe: "Print only errors and the summary" },
  {
    name: "verbose",
    alias: "v",
    boolean: true,
    describe: "Print retries, and stack traces on errors",
  },
];

/** Switches of one invocation, which no config file keeps: what to do this time. */
const OUTPUT_SWITCHES: readonly FlagSpec[] = [
  {
    name: "dry-run",
    boolean: true,
    basic: true,
    describe: "Prepare images and list what would be sent; send nothing",
  },
  { name: "overwrite", boolean: true, describe: "Discard OUT and caption everything again" },
  {
    name: "resume",
    boolean: true,
    describe: "Skip images already in OUT (--no-resume: like --overwrite)",
    defaultDescription: "true",
  },
];

const ENDPOINT_FLAGS: readonly FlagSpec[] = [...settingFlags("endpoint"), ...ENDPOINT_SWITCHES];
const CAPTION_FLAGS: readonly FlagSpec[] = [
  ...settingFlags("run"),
  ...ENDPOINT_FLAGS,
  ...OUTPUT_SWITCHES,
];

/** The settings flags named, in the table's order. */
function namedSettingFlags(names: readonly string[]): FlagSpec[] {
  return [...settingFlags("run"), ...settingFlags("endpoint")].filter((flag) =>
    names.includes(flag.name),
  );
}
const REDIS_FLAG: FlagSpec = {
  name: "redis",
  describe: "Redis URL (env CAPTION_REDIS_URL)",
  defaultDescription: "redis://127.0.0.1:6379",
};
const QUEUE_FLAG: FlagSpec = { name: "queue", basic: true, describe: "The queue's name" };
/** `caption enqueue`: what shapes the captions, fixed for the whole queue. */
const ENQUEUE_FLAGS: readonly FlagSpec[] = [
  QUEUE_FLAG,
  {
    name: "out",
    basic: true,
    describe: "Folder for shards and their captions, on storage every worker sees",
  },
  {
    name: "shard-size",
    number: true,
    describe: "Images per shard (one job)",
    defaultDescription: "1000",
  },
  { name: "retry-failed", boolean: true, describe: "Put failed shards back in the queue" },
  {
    name: "shard-attempts",
    number: true,
    describe: "Tries of a shard whose own files fail (a damaged output, a full disk)",
    defaultDescription: "5",
  },
  {
    name: "shard-backoff",
    number: true,
    describe: "Seconds before a failed shard's first retry, doubling after",
    defaultDescription: "10",
  },
  REDIS_FLAG,
  ...namedSettingFlags([
    "model",
    "prompt",
    "prompt-file",
    "max-tokens",
    "temperature",
    "max-pixels",
    "max-side",
    "image-format",
    "json-schema",
    "rpm",
  ]),
  ...namedSettingFlags(["tags", "reject-flagged", "prefix", "suffix", "follow-symlinks"]),
  ...ENDPOINT_SWITCHES,
];
/** `caption worker`: where to send and how hard; what to ask comes from the queue. */
const WORKER_FLAGS: readonly FlagSpec[] = [
  QUEUE_FLAG,
  {
    name: "shards-at-once",
    number: true,
    describe: "Shards captioned at once (each with its own -c)",
    defaultDescription: "1",
  },
  {
    name: "stall-seconds",
    number: true,
    describe: "How long a killed worker's shard waits before another worker takes it",
    defaultDescription: "30",
  },
  { name: "until-empty", boolean: true, describe: "Exit once the queue has nothing left to do" },
  REDIS_FLAG,
  ...namedSettingFlags([
    "base-url",
    "api-key",
    "concurrency",
    "max-concurrency",
    "rpm",
    "retries",
    "timeout",
    "max-reply-bytes",
  ]),
  ...ENDPOINT_SWITCHES,
];
/** How much is printed: every command has these. */
const LOG_SWITCHES = ENDPOINT_SWITCHES.filter((flag) => flag.name !== "config");
const STATUS_FLAGS: readonly FlagSpec[] = [
  QUEUE_FLAG,
  REDIS_FLAG,
  { name: "json", boolean: true, describe: "Print the status once, as JSON" },
  ...LOG_SWITCHES,
];
const MERGE_FLAGS: readonly FlagSpec[] = [
  { name: "output", alias: "o", basic: true, describe: "OUT: the merged .csv or .jsonl" },
  ...namedSettingFlags([
    "sidecar",
    "sidecar-policy",
    "sidecar-join",
    "hf-metadata",
    "xmp",
    "xmp-naming",
    "csv-formula-guard",
  ]),
  {
    name: "partial",
    boolean: true,
    describe: "Merge the finished shards even though others are not finished",
  },
  ...LOG_SWITCHES,
];
const REPORT_FLAGS: readonly FlagSpec[] = [
  {
    name: "output",
    alias: "o",
    basic: true,
    describe: "The page to write",
    defaultDescription: "<OUT stem>.report.html beside OUT",
  },
  { name: "errors", describe: "The run's errors file", defaultDescription: "beside OUT" },
  ...LOG_SWITCHES,
];
const FLAGS_OF_COMMAND: Record<string, readonly FlagSpec[]> = {
  report: REPORT_FLAGS,
  enqueue: ENQUEUE_FLAGS,
  worker: WORKER_FLAGS,
  status: STATUS_FLAGS,
  merge: MERGE_FLAGS,
  check: ENDPOINT_FLAGS,
  models: ENDPOINT_FLAGS,
};

/** Flag names (camel-cased by yargs) that are settings rather than run switches. */
const SETTING_FLAGS = Object.keys(SETTING_SPECS) as (keyof Settings)[];

function addFlags<T>(y: Argv<T>, flags: readonly FlagSpec[]): Argv<T> {
  for (const flag of flags) {
    y.option(flag.name, {
      ...(flag.number ? {} : { type: flag.boolean ? "boolean" : "string" }),
      describe: flag.describe,
      ...(flag.alias ? { alias: flag.alias } : {}),
      ...(flag.defaultDescription ? { defaultDescription: flag.defaultDescription } : {}),
      ...(flag.boolean || flag.optionalValue ? {} : { requiresArg: true }),
    });
  }
  const basics = flags.filter((flag) => flag.basic).map((flag) => flag.name);
  y.group(basics, "Basics:");
  y.group(
    flags.filter((flag) => !flag.basic).map((flag) => flag.name),
    "More options:",
  );
  return flags.some((flag) => flag.name === "quiet") ? y.conflicts("quiet", "verbose") : y;
}

/** Every name and alias a command's flags can be written with, for "did you mean" suggestions. */
function knownFlags(flags: readonly FlagSpec[]): string[] {
  return [...flags, { name: "help", alias: "h" }, { name: "version" }].flatMap((flag) => [
    flag.name,
    ...(flag.alias ? [flag.alias] : []),
  ]);
}

/**
 * The flags that shape what is printed, read before the real parse so that even a usage error
 * comes out as asked. A real parser, so a prompt that mentions "--log-format json" is just text.
 */
function readLogFlags(argv: string[]): { format: LogFormat; quiet: boolean; verbose: boolean } {
  const flags = CAPTION_FLAGS;
  const parsed = Parser(argv, {
    string: flags.filter((flag) => !flag.boolean).map((flag) => flag.name),
    boolean: flags.filter((flag) => flag.boolean).map((flag) => flag.name),
    alias: Object.fromEntries(
      flags.filter((flag) => flag.alias).map((flag) => [flag.name, [flag.alias as string]]),
    ),
  });
  return {
    format: parsed["log-format"] === "json" ? "json" : "text",
    quiet: parsed.quiet === true,
    verbose: parsed.verbose === true,
  };
}

/** Runs the CLI and returns the exit code; never calls process.exit. */
export async function main(
  argv: string[],
  context: CliContext = defaultContext(),
): Promise<number> {
  let job: (() => Promise<number>) | null = null;
  const logFlags = readLogFlags(argv);
  const reporter = new Reporter({
    stream: context.stderr,
    format: logFlags.format,
    quiet: logFlags.quiet,
    verbose: logFlags.verbose,
    secret: context.env.MINICPM_API_KEY || context.env.OPENAI_API_KEY,
  });

  const parser = yargs(argv)
    .scriptName("caption")
    .usage(
      "$0 <inputs..> -o OUT [options]\n\nCaption every image in folders, files or glob patterns through an OpenAI-compatible vision model. Rerunning the same command resumes where the last run stopped.",
    )
    .command(
      "$0 <inputs..>",
      "Caption images into OUT",
      (y) =>
        addFlags(y, CAPTION_FLAGS)
          .positional("inputs", {
            type: "string",
            array: true,
            describe: "Folders (searched recursively), image files, or glob patterns",
          })
          .conflicts("prompt", "prompt-file"),
      (args) => {
        job = () => runCaption(args as Record<string, unknown>, context, reporter);
      },
    )
    .command(
      "check",
      "Send one text-only request to test the URL, key and model",
      (y) => addFlags(y, ENDPOINT_FLAGS),
      (args) => {
        job = () => runCheck(args as Record<string, unknown>, context, reporter);
      },
    )
    .command(
      "config [inputs..]",
      "Show each setting of a command line, its value and where it came from",
      (y) => addFlags(y, CAPTION_FLAGS).positional("inputs", { type: "string", array: true }),
      (args) => {
        job = () => runShowConfig(args as Record<string, unknown>, context, reporter);
      },
    )
    .command(
      "models",
      "List the model ids the endpoint serves, and the short name (-m) of each",
      (y) => addFlags(y, ENDPOINT_FLAGS),
      (args) => {
        job = () => runModels(args as Record<string, unknown>, context, reporter);
      },
    )
    .command(
      "enqueue <inputs..>",
      "Many machines: split the images into shards on a BullMQ queue (Redis)",
      (y) => addFlags(y, ENQUEUE_FLAGS).positional("inputs", { type: "string", array: true }),
      (args) => {
        job = async () =>
          (await import("../scale/commands.js")).runEnqueue(
            args as Record<string, unknown>,
            scaleContext(context, reporter),
          );
      },
    )
    .command(
      "worker",
      "Many machines: caption the queue's shards, one at a time, until stopped",
      (y) => addFlags(y, WORKER_FLAGS),
      (args) => {
        job = async () =>
          (await import("../scale/commands.js")).runWorker(
            args as Record<string, unknown>,
            scaleContext(context, reporter),
          );
      },
    )
    .command(
      "status",
      "Many machines: shards waiting, active, done and failed; images per second",
      (y) => addFlags(y, STATUS_FLAGS),
      (args) => {
        job = async () =>
          (await import("../scale/commands.js")).runStatus(
            args as Record<string, unknown>,
            scaleContext(context, reporter),
          );
      },
    )
    .command(
      "merge <dir>",
      "Many machines: the shards' captions as one OUT, one row per image",
      (y) => addFlags(y, MERGE_FLAGS).positional("dir", { type: "string" }),
      (args) => {
        job = async () =>
          (await import("../scale/commands.js")).runMerge(
            args as Record<string, unknown>,
            scaleContext(context, reporter),
          );
      },
    )
    .command(
      "report <out>",
      "Write an HTML page showing every image of OUT beside its caption, to review a run",
      (y) => addFlags(y, REPORT_FLAGS).positional("out", { type: "string" }),
      (args) => {
        job = async () =>
          (await import("../report/command.js")).runReport(args as Record<string, unknown>, {
            cwd: context.cwd,
            stderr: context.stderr,
            reporter,
          });
      },
    )
    .example("$0 photos/ -o captions.csv", "Caption a folder (hosted API)")
    .example("$0 'shots/**/*.png' -o out.jsonl", "Caption a glob")
    .example("$0 photos/ -o c.csv --config vllm", "Use a bundled config")
    .example("$0 check --config ollama", "Test a server")
    .epilogue(
      "Exit codes: 0 all captioned, 3 some images failed (see the errors file), 2 usage or config error, 1 run aborted, 130/143 interrupted.",
    )
    .strict()
    .help()
    .alias("help", "h")
    .version()
    .wrap(Math.min(100, process.stdout.columns || 80))
    .exitProcess(false)
    .fail((message, error) => {
      // yargs reports its own parse problems as a YError; anything else came from our handlers.
      if (error && error.name !== "YError") throw error;
      const flags = FLAGS_OF_COMMAND[argv[0] ?? ""] ?? CAPTION_FLAGS;
      throw new UsageError([friendlyUsage(message ?? error?.message ?? "", knownFlags(flags))]);
    });

  try {
    await parser.parseAsync();
    if (!job) return EXIT.ok; // --help or --version was printed
    return await (job as () => Promise<number>)();
  } catch (error) {
    reporter.stop();
    return reportError(error, reporter, logFlags.verbose);
  }
}

/** What the scale-out commands borrow from this one. */
function scaleContext(context: CliContext, reporter: Reporter): ScaleContext {
  return {
    cwd: context.cwd,
    env: context.env,
    stdout: context.stdout,
    fetch: context.fetch,
    reporter,
    loadConfig: (args) => loadConfig(args, context, reporter),
    chooseKey: (config) => chooseKey(config, reporter, context.env),
    readJsonSchema,
    nameSetting: flagOf,
    namesFor: flagsFor,
    datasetOutputs: (args) => {
      const outputs = outputsOfArgs(args);
      return {
        sidecar: sidecarOptions(outputs, flagOf),
        hfMetadata: hfMetadataFormat(outputs, flagOf),
        xmp: xmpNaming(outputs, flagOf),
      };
    },
  };
}

/** Prints what an error that ended the CLI means to the user, and returns its exit code. */
function reportError(error: unknown, reporter: Reporter, verbose: boolean): number {
  if (error instanceof UsageError) {
    for (const problem of error.problems) reporter.say(asFlags(problem), "error");
    reporter.say("see caption --help", "error");
  } else if (error instanceof CaptionError) {
    reporter.say(error.message, "error");
    if (verbose && error.stack && !(error instanceof RunAbortedError)) reporter.detail(error.stack);
  } else {
    const message = error instanceof Error ? error.message : String(error);
    reporter.say(
      `internal error: ${message}${verbose ? "" : " (rerun with --verbose for the stack trace)"}`,
      "error",
    );
    if (verbose && error instanceof Error && error.stack) reporter.detail(error.stack);
  }
  return exitCodeOf({ error });
}

/** Library options that are not settings, by the flag that sets them. */
const OPTION_FLAGS: Record<string, string> = {
  output: "-o/--output",
  errorsPath: "--errors",
  timeoutMs: "--timeout",
  overwrite: "--overwrite",
  // The library's `xmp` is the naming, which --xmp-naming sets; the switch itself is --xmp.
  xmp: "--xmp-naming",
  xmpOn: "--xmp",
  apiKey: "MINICPM_API_KEY or --api-key",
  inputs: "inputs",
};

/** The flag that sets a library option, for messages that tell the user what to change. */
const flagOf = (option: string): string =>
  OPTION_FLAGS[option] ?? (SETTING_SPECS as Record<string, SettingSpec>)[option]?.flag ?? option;

/**
 * flagOf for a run of this config: a setting the config file or a variable gave is named where it
 * lives, since a flag would only mend this run. Every endpoint gets a key of its own from
 * `chooseKey`, but only the config file's entries that name one have a key the user set there;
 * the rest have the run's.
 */
function flagsFor(config: CaptionConfig): (option: string) => string {
  return (option) => {
    const entry = /^endpoints\[(\d+)\]\.apiKey$/.exec(option);
    if (!entry) {
      const key = option === "timeoutMs" ? "timeout" : option === "xmp" ? "xmpNaming" : option;
      return config.settingFrom[key as keyof Settings] ?? flagOf(option);
    }
    return config.endpoints?.[Number(entry[1])]?.apiKey !== undefined
      ? `${option} in the config file (or the variable it names)`
      : flagOf("apiKey");
  };
}

/**
 * The library names its options in what it reports ("concurrency: …"); on the command line the
 * same problem names the flag the user typed.
 */
function asFlags(problem: string): string {
  return problem.replace(/^([a-zA-Z]+):/, (whole, key: string) => {
    const flag = flagOf(key);
    return flag === key ? whole : `${flag}:`;
  });
}

/** yargs' own messages, reworded to read like every other usage error of the tool. */
function friendlyUsage(message: string, known: readonly string[]): string {
  if (/Not enough non-option arguments/.test(message)) {
    return "no inputs given: name one or more folders, image files or glob patterns, e.g. caption photos/ -o captions.csv (a word right after --sidecar is taken as its EXT: put --sidecar after the inputs)";
  }
  const unknown = /^Unknown arguments?: (.+)$/.exec(message);
  if (unknown?.[1]) {
    // yargs names a mistyped --max-pixles twice, once camel-cased; the user typed one flag.
    const typed = new Map<string, string>();
    for (const name of unknown[1].split(", ")) {
      const key = name.toLowerCase().replace(/-/g, "");
      if (!typed.has(key) || name.includes("-")) typed.set(key, name);
    }
    return [...typed.values()]
      .map((name) => {
        // A one-letter typo is as close to every short flag as to any.
        const near = name.length > 2 ? closestName(name, known) : undefined;
        return `${flagName(name)}: no such flag${near ? ` (did you mean ${flagName(near)}?)` : ""}`;
      })
      .join("\n");
  }
  const exclusive = /^Arguments (\S+) and (\S+) are mutually exclusive$/.exec(message);
  if (exclusive?.[1] && exclusive[2]) {
    return `${flagName(exclusive[1])} and ${flagName(exclusive[2])} cannot be used together; pass one of them`;
  }
  const missing = /^Not enough arguments following: (\S+)$/.exec(message);
  if (missing?.[1]) return `${flagName(missing[1])}: needs a value`;
  return message;
}

function flagName(name: string): string {
  return name.length === 1 ? `-${name}` : `--${name}`;
}

/** The run's config; from here on the key it names is masked in everything printed. */
function loadConfig(
  args: Record<string, unknown>,
  context: CliContext,
  reporter: Reporter,
): CaptionConfig {
  const flags: Record<string, unknown> = {};
  for (const key of SETTING_FLAGS) {
    if (args[key] !== undefined) flags[key] = args[key];
  }
  const problems: string[] = [];
  const logFormat = args.logFormat;
  if (logFormat !== undefined && logFormat !== "text" && logFormat !== "json") {
    problems.push(`--log-format: expected one of text, json, got ${JSON.stringify(logFormat)}`);
  }
  let config: CaptionConfig | null = null;
  try {
    config = resolveConfig({
      flags,
      env: context.env,
      cwd: context.cwd,
      configFile: typeof args.config === "string" ? args.config : undefined,
    });
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    problems.push(...error.problems);
  }
  if (problems.length > 0 || !config) throw new UsageError(problems);
  reporter.setSecret(config.apiKey);
  for (const url of [config.baseUrl, ...(config.endpoints ?? []).map((each) => each.baseUrl)]) {
    for (const credential of urlCredentials(url)) reporter.setSecret(credential);
  }
  return config;
}

/** The key to send, announcing the shared trial key when that is the one. */
function chooseKey(config: CaptionConfig, reporter: Reporter, env: NodeJS.ProcessEnv) {
  const key = keyFor(config.baseUrl, config.apiKey);
  // Each of several endpoints gets its own key, or the run's; the trial key only the hosted API.
  const { sharedKey } = config;
  const keys = (config.endpoints ?? []).map((endpoint) =>
    keyFor(
      endpoint.baseUrl,
      endpoint.apiKey ?? (isHostedApi(endpoint.baseUrl) ? sharedKey.hostedKey : sharedKey.key),
    ),
  );
  for (const each of keys) reporter.setSecret(each.apiKey);
  const trial = key.trial || keys.some((each) => each.trial);
  if (trial) {
    const openai = env.OPENAI_API_KEY ? " (OPENAI_API_KEY is never sent to the hosted API)" : "";
    reporter.say(`${TRIAL_KEY_NOTICE}${openai}`, "warn");
  }
  reporter.setSecret(key.apiKey);
  const endpoints = config.endpoints?.map((endpoint, index) => ({
    ...endpoint,
    apiKey: keys[index]?.apiKey,
  }));
  return { ...key, trial, endpoints };
}

/** A refusal of the trial key is about the trial, not about a key the user gave. */
function refusalMessage(error: unknown, trial: boolean, resumable = false): string | null {
  if (!trial) return null;
  const auth = error instanceof AuthError ? error : null;
  const cause = error instanceof RunAbortedError ? error.cause : null;
  const refused = auth ?? (cause instanceof AuthError ? cause : null);
  if (!refused) return null;
  const text = trialKeyRefused(`HTTP ${refused.status ?? "401"}`);
  return resumable ? `${text}, then rerun to resume` : text;
}

async function runCaption(
  args: Record<string, unknown>,
  context: CliContext,
  reporter: Reporter,
): Promise<number> {
  const config = loadConfig(args, context, reporter);
  const named = flagsFor(config);
  const sidecar = sidecarOptions(config.outputs, named);
  const hfMetadata = hfMetadataFormat(config.outputs, named);
  const xmp = xmpNaming(config.outputs, named);
  if (!config.output && !sidecar && !hfMetadata && !xmp) {
    throw new UsageError([
      "-o/--output is required (or --sidecar, --hf-metadata, --xmp): where to write the captions, e.g. -o captions.csv",
    ]);
  }
  if (!config.output && config.format) {
    throw new UsageError(["--format names OUT's format: give -o as well"]);
  }
  if (hfMetadata) await checkHfInputs(args.inputs as string[], context.cwd, config.output);
  // Without OUT, the run still keeps its record (what it captioned, for resume), its errors file
  // and its lock: in a hidden folder (which discovery never walks) of the first folder input, so
  // runs from anywhere, and runs on other folders, each find their own.
  const recordRoot = config.output
    ? undefined
    : await recordFolder(args.inputs as string[], context.cwd);
  const output =
    config.output ?? path.join(recordRoot ?? context.cwd, ".caption", "captions.jsonl");
  const chosen = await chooseOutputFormat(output, config.format);
  if (chosen.warning) reporter.say(chosen.warning, "warn");
  const concurrencies = (config.endpoints ?? [{ baseUrl: config.baseUrl }]).map(
    (e) => e.concurrency ?? config.concurrency ?? defaultConcurrency(e.baseUrl),
  );
  if (config.maxConcurrency !== undefined && !concurrencies.includes("auto")) {
    reporter.say("--max-concurrency only bounds -c auto; this run's -c is fixed", "warn");
  }
  const errorsPath = config.errors ?? defaultErrorsPath(output);
  if (config.output === undefined) {
    const linked = await recordFolderProblem([
      path.dirname(output),
      output,
      ...(config.errors === undefined ? [errorsPath] : []),
    ]);
    if (linked) throw new UsageError([linked]);
  }
  if (path.resolve(errorsPath) === path.resolve(output)) {
    throw new UsageError(["--errors: the errors file must not be OUT itself; pick another path"]);
  }
  const dryRun = args.dryRun === true;
  const key = dryRun
    ? { apiKey: config.apiKey, trial: false, endpoints: config.endpoints }
    : chooseKey(config, reporter, context.env);
  const overwrite = args.overwrite === true || args.resume === false;
  const control = new RunControl();
  const signals = watchSignals(control, (text) => reporter.say(text, "warn"));

  // `caption --dry-run | head` closes stdout early; that is the reader's choice, not an error.
  let stdoutOpen = true;
  context.stdout.on("error", () => {
    stdoutOpen = false;
  });
  const onEvent = (event: RunEvent): void => {
    if (event.type === "discovered") signals.sending();
    reporter.onEvent(event);
    if (dryRun && stdoutOpen && event.type === "prepared") {
      // A file name is someone else's text: its control characters are shown, not obeyed.
      context.stdout.write(
        `${forTerminal(event.path)}\t${event.image.width}x${event.image.height}\t${event.image.bytes}\n`,
      );
    }
  };
  let summary: RunSummary | null;
  try {
    const run = captionImages(
      {
        inputs: (args.inputs as string[]).map(String),
        cwd: context.cwd,
        output,
        format: chosen.format,
        errorsPath,
        overwrite,
        dryRun,
        strict: config.outputs.strict === true,
        followSymlinks: config.outputs.followSymlinks === true,
        baseUrl: config.baseUrl,
        // Several endpoints carry their keys each; the first's must not become the others'.
        apiKey: key.endpoints ? undefined : key.apiKey,
        ...(key.endpoints ? { endpoints: key.endpoints } : {}),
        // What the command line read, the run reads: nothing else is looked up.
        env: context.env,
        model: config.model,
        prompt: config.promptGiven ? config.prompt : undefined,
        jsonSchema: await readJsonSchema(config.jsonSchema, config.jsonSchemaFrom),
        tags: config.outputs.tags === true,
        rejectFlagged: config.outputs.rejectFlagged === true,
        maxTokens: config.maxTokens,
        temperature: config.temperature,
        concurrency: config.concurrency,
        maxConcurrency: config.maxConcurrency,
        rpm: config.rpm,
        retries: config.retries,
        timeoutMs: config.timeoutMs,
        maxReplyBytes: config.maxReplyBytes,
        prepare: config.prepare,
        csvFormulaGuard: config.outputs.csvFormulaGuard === true,
        sidecar,
        recordOnly: config.output === undefined,
        recordRoot,
        hfMetadata,
        xmp,
        prefix: config.outputs.prefix,
        suffix: config.outputs.suffix,
        ...(context.fetch ? { fetch: context.fetch } : {}),
        nameSetting: flagsFor(config),
      },
      { onEvent, control },
    );
    // If the run never ends after being cancelled, its result no longer matters.
    run.catch(() => {});
    // A run that stopped early rejects with what it did: that is the summary to report.
    const ended = run.catch((error: unknown) => {
      if (error instanceof RunAbortedError && error.summary) return error.summary;
      throw error;
    });
    summary = await Promise.race([ended, signals.abandoned.then(() => null)]);
  } catch (error) {
    const refused = refusalMessage(error, key.trial, true);
    if (refused) throw new RunAbortedError("trial_key_refused", refused, { cause: error });
    throw error;
  } finally {
    reporter.stop();
    signals.dispose();
  }
  const stoppedBy = signals.stoppedBy;
  if (summary === null) {
    reporter.say(
      `the run did not end within seconds of ${stoppedBy ?? "the signal"} (something it waits on does not return); exiting now, rerun to resume`,
      "error",
    );
    return exitCodeOf({ summary: null, stoppedBy });
  }
  const record = path.relative(context.cwd, output) || output;
  const shownOutput = config.output
    ? record
    : `${sidecar ? "sidecars" : xmp ? "XMP sidecars" : "metadata files"} (record in ${record})`;
  const shownErrors = path.relative(context.cwd, errorsPath) || errorsPath;
  if (summary.aborted) {
    reporter.say(
      refusalMessage(summary.aborted, key.trial, true) ?? summary.aborted.message,
      "error",
    );
  }
  const exitCode = exitCodeOf({ summary, stoppedBy });
  reporter.finish(summary, summaryLine(summary, shownOutput, shownErrors, dryRun), exitCode);
  return exitCode;
}

/** Names a setting in a message: its flag, or where a config file or a variable set it. */
type Namer = (option: string) => string;

/** The outputs as the command line gave them, for commands that read no config file (merge). */
function outputsOfArgs(args: Record<string, unknown>): CaptionConfig["outputs"] {
  const keys = ["sidecar", "sidecarPolicy", "sidecarJoin", "hfMetadata", "xmp", "xmpNaming"];
  return Object.fromEntries(
    keys.filter((key) => args[key] !== undefined).map((key) => [key, args[key]]),
  );
}

function xmpNaming(outputs: CaptionConfig["outputs"], name: Namer): XmpNaming | undefined {
  const { xmp, xmpNaming: naming } = outputs;
  if (xmp !== true) {
    if (naming !== undefined)
      throw new UsageError([
        `${name("xmpNaming")} needs ${name("xmpOn")}, e.g. --xmp --xmp-naming stem`,
      ]);
    return undefined;
  }
  if (naming === undefined || naming === "ext") return "ext";
  if (naming === "stem") return "stem";
  throw new UsageError([
    `${name("xmpNaming")}: expected ext or stem, got ${JSON.stringify(naming)}`,
  ]);
}

/** Where the record of a run without -o lives: the first folder input, else the working directory. */
async function recordFolder(inputs: string[], cwd: string): Promise<string> {
  return (await folderInputs(inputs, cwd))[0] ?? cwd;
}

/** The schema file `--json-schema` names, parsed; the library checks that it is a schema. */
async function readJsonSchema(
  file: string | undefined,
  from: string,
): Promise<Record<string, unknown> | undefined> {
  if (file === undefined) return undefined;
  const read = await readLimited(file);
  if (!read.ok && read.reason !== "unreadable") {
    // A folder, a device, a pipe or a huge file: refused before more than the cap is read.
    throw new UsageError([`${from} ${file}: ${read.problem}; name a JSON Schema file`]);
  }
  if (!read.ok) {
    const code = read.errno;
    const why = code === "ENOENT" ? "no such file" : describeErrno(code ?? read.problem);
    throw new UsageError([`${from}: cannot read ${file} (${why}); name a JSON Schema file`]);
  }
  const { text } = read;
  let schema: unknown;
  try {
    schema = JSON.parse(text);
  } catch (error) {
    throw new UsageError([`${from}: ${file} is not valid JSON (${(error as Error).message})`]);
  }
  if (typeof schema !== "object" || schema === null || Array.isArray(schema)) {
    throw new UsageError([`${from}: ${file} holds no JSON object; a schema is one`]);
  }
  return schema as Record<string, unknown>;
}

/** `--hf-metadata` describes folders: it needs one among the inputs, and OUT elsewhere. */
async function checkHfInputs(inputs: string[], cwd: string, output: string | undefined) {
  const folders = await folderInputs(inputs, cwd);
  if (folders.length === 0) {
    throw new UsageError([
      "--hf-metadata writes metadata.jsonl at the root of each folder given as an input, and none of the inputs is a folder; name the dataset folder (caption photos/ --hf-metadata)",
    ]);
  }
  const out = output ? path.resolve(output) : null;
  if (out && folders.some((folder) => /^metadata\.(jsonl|csv)$/.test(path.relative(folder, out)))) {
    throw new UsageError([
      "-o/--output: that is the metadata file --hf-metadata writes; name OUT something else",
    ]);
  }
}

function hfMetadataFormat(
  outputs: CaptionConfig["outputs"],
  name: Namer,
): HfMetadataFormat | undefined {
  const value = outputs.hfMetadata;
  if (value === undefined || value === false) return undefined;
  if (value === true || value === "" || value === "jsonl") return "jsonl";
  if (value === "csv") return "csv";
  throw new UsageError([
    `${name("hfMetadata")}: expected jsonl or csv, got ${JSON.stringify(value)} (put --hf-metadata after the inputs)`,
  ]);
}

/** `--sidecar [EXT]` and its companions, checked together; undefined when no sidecar is asked. */
function sidecarOptions(
  outputs: CaptionConfig["outputs"],
  name: Namer,
): SidecarOptions | undefined {
  const problems: string[] = [];
  const { sidecar: ext, sidecarPolicy: policy, sidecarJoin: join } = outputs;
  // `--no-sidecar` (or `"sidecar": false`) reads as false: no sidecar.
  if (ext === undefined || ext === false) {
    for (const [key, value] of [
      ["sidecarPolicy", policy],
      ["sidecarJoin", join],
    ] as const) {
      if (value !== undefined)
        problems.push(
          `${name(key)} needs ${name("sidecar")}, e.g. --sidecar .txt ${flagOf(key)} …`,
        );
    }
    if (problems.length > 0) throw new UsageError(problems);
    return undefined;
  }
  const chosenExt = ext === "" || ext === true ? ".txt" : String(ext);
  const extProblem = sidecarExtProblem(chosenExt);
  if (extProblem) {
    problems.push(
      `${name("sidecar")}: ${extProblem}; put --sidecar after the inputs, or give it one (--sidecar .txt)`,
    );
  }
  const chosenPolicy = policy ?? "skip";
  if (!SIDECAR_POLICIES.includes(chosenPolicy as SidecarPolicy)) {
    problems.push(
      `${name("sidecarPolicy")}: expected one of ${SIDECAR_POLICIES.join(", ")}, got ${JSON.stringify(chosenPolicy)}`,
    );
  }
  if (join !== undefined && chosenPolicy !== "append" && chosenPolicy !== "prepend") {
    problems.push(
      `${name("sidecarJoin")} only applies with ${name("sidecarPolicy")} append or prepend`,
    );
  }
  if (problems.length > 0) throw new UsageError(problems);
  return {
    ext: chosenExt,
    policy: chosenPolicy as SidecarPolicy,
    join: typeof join === "string" ? join : ", ",
  };
}

/**
 * What `caption check` and `caption models` share: the endpoint settings, the keys, a client for
 * each server named (several when `--base-url` is repeated or the config lists `endpoints`).
 */
function endpointClients(args: Record<string, unknown>, context: CliContext, reporter: Reporter) {
  const config = loadConfig(args, context, reporter);
  const key = chooseKey(config, reporter, context.env);
  const servers = key.endpoints ?? [
    { baseUrl: config.baseUrl, apiKey: key.apiKey, model: config.model },
  ];
  // Whatever a server sends back is masked of every key of the command before it is shown.
  const secrets = servers.flatMap((server) => [server.apiKey, ...urlCredentials(server.baseUrl)]);
  const shown = (text: string) => forTerminal(redactSecret(text, secrets));
  return servers.map((server) => ({
    shown,
    config,
    baseUrl: server.baseUrl,
    model: server.model ?? config.model,
    trial: key.trial,
    apiKey: server.apiKey,
    client: createClient({
      baseUrl: server.baseUrl,
      apiKey: server.apiKey,
      timeoutMs: config.timeoutMs,
      maxReplyBytes: config.maxReplyBytes,
      nameSetting: flagsFor(config),
      ...(context.fetch ? { fetch: context.fetch } : {}),
    }),
  }));
}

const MODELS_COMMAND_TIMEOUT_MS = 15_000;

/**
 * `caption models`: the ids `GET {base}/models` lists, one a line, with owner and date, and the
 * short name (`-m`) each answers to.
 */
async function runModels(
  args: Record<string, unknown>,
  context: CliContext,
  reporter: Reporter,
): Promise<number> {
  const servers = endpointClients(args, context, reporter);
  let answered = true;
  for (const { config, baseUrl, client, shown } of servers) {
    // A list is a quick answer: a server that has not given one in a few seconds will not.
    const { body, problem } = await client.models(
      Math.min(config.timeoutMs, MODELS_COMMAND_TIMEOUT_MS),
    );
    const models = servedModels(body);
    if (models === null) {
      reporter.say(
        `${baseUrl} gave no model list (${problem ?? "the reply has no data list"})${problem?.includes("HTTP 404") ? "; it may not have the route, which is no obstacle to captioning" : ""}`,
        "error",
      );
      answered = false;
      continue;
    }
    for (const model of models) {
      const owner = model.ownedBy ? `\t${shown(model.ownedBy)}` : "";
      const created =
        model.created === null
          ? ""
          : `\t${new Date(model.created * 1000).toISOString().slice(0, 10)}`;
      // With several servers each line says whose it is.
      const whose = servers.length > 1 ? `${baseUrl}\t` : "";
      const family = familyNote(model.id, models);
      // What a server lists is its text, shown rather than obeyed.
      context.stdout.write(
        `${whose}${shown(model.id)}${owner}${created}${family ? `\t${shown(family)}` : ""}\n`,
      );
    }
    reporter.say(`${baseUrl} serves ${models.length} ${models.length === 1 ? "model" : "models"}`);
  }
  return exitCodeOf({ answered });
}

/**
 * Which short name a listed id answers to: "(instruct, the default)", "(thinking)"; or, for one
 * of a family that another listed id answers for, which one that is. Null for other models.
 */
function familyNote(id: string, models: readonly ServedModel[]): string | null {
  const ids = models.map((model) => model.id);
  const picked = MODEL_FAMILIES.find((family) => listedIdOf(family, ids) === id);
  if (picked) return `(${picked.alias}${picked.alias === DEFAULT_MODEL ? ", the default" : ""})`;
  const member = familyOfListed(id);
  if (!member) return null;
  return `(of the ${member.alias} family; -m ${member.alias} asks for ${listedIdOf(member, ids)})`;
}

/** `caption config`: the settings a command line resolves to, each with where it came from. */
async function runShowConfig(
  args: Record<string, unknown>,
  context: CliContext,
  reporter: Reporter,
): Promise<number> {
  const config = loadConfig(args, context, reporter);
  // As a run would check them: a policy without a sidecar is refused here too.
  const named = flagsFor(config);
  sidecarOptions(config.outputs, named);
  hfMetadataFormat(config.outputs, named);
  xmpNaming(config.outputs, named);
  const key = keyFor(config.baseUrl, config.apiKey);
  context.stdout.write(showConfig(config, { set: key.apiKey !== undefined, trial: key.trial }));
  return EXIT.ok;
}

async function runCheck(
  args: Record<string, unknown>,
  context: CliContext,
  reporter: Reporter,
): Promise<number> {
  let answered = true;
  let refused = false;
  for (const { config, baseUrl, model: given, trial, client, shown } of endpointClients(
    args,
    context,
    reporter,
  )) {
    // As a run would: the id this server lists of the family asked for, or the run's refusal.
    const listed = servedModels((await client.models(MODEL_LIST_TIMEOUT_MS)).body);
    let model: string;
    try {
      const choice = chooseModel(given, listed, baseUrl, flagsFor(config)("model"));
      if (choice.warning) reporter.say(choice.warning, "warn");
      model = choice.model;
    } catch (error) {
      if (!(error instanceof UsageError)) throw error;
      for (const problem of error.problems) reporter.say(asFlags(problem), "error");
      refused = true;
      continue;
    }
    // With no list to choose from, the family's older ids are what the server may call it.
    const older = listed === null ? olderIdsOf(model) : [];
    const ask = () =>
      client.chat(
        buildTextRequest("Introduce yourself in one sentence.", {
          model,
          maxTokens: config.maxTokens,
          temperature: config.temperature,
        }),
      );
    try {
      let reply: Awaited<ReturnType<typeof ask>>;
      for (;;) {
        try {
          reply = await ask();
          break;
        } catch (error) {
          const next = older.shift();
          if (!saysModelMissing(error) || next === undefined) throw error;
          reporter.say(
            `${baseUrl} lists no models and says ${model} does not exist: asking it for ${next}, of the same family`,
            "warn",
          );
          model = next;
        }
      }
      const { caption } = extractCaption(reply.body, flagOf);
      context.stdout.write(`${shown(caption)}\n`);
      reporter.say(`${baseUrl} answered as ${model} in ${reply.latencyMs} ms`);
    } catch (error) {
      const message =
        refusalMessage(error, trial) ?? (error instanceof Error ? error.message : String(error));
      reporter.say(`check failed against ${baseUrl} with model ${model}: ${message}`, "error");
      answered = false;
    }
  }
  // A model the server does not serve is the run's usage error too.
  return refused ? EXIT.usage : exitCodeOf({ answered });
}
