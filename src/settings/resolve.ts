import { existsSync, readdirSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { UsageError } from "../errors.js";
import { parseTemplate } from "../prompts/template.js";
import { DEFAULT_FAMILY } from "../send/model-families.js";
import { readLimitedSync } from "../trust/read-limited.js";
import { DEFAULT_MAX_REPLY_BYTES } from "../trust/reply-limit.js";
import { formatCap } from "../trust/text.js";
import type { ImageFormat, OutputFormat, PrepareOptions } from "../types.js";
import { closestName } from "../util/suggest.js";
import type { EndpointOptions } from "./run-options.js";

export const DEFAULT_BASE_URL = "https://api.modelbest.cn/v1";
/** A family, not an id: each server is asked for the id it serves of it. */
export const DEFAULT_MODEL = DEFAULT_FAMILY;
export const DEFAULT_PROMPT =
  "Describe this image in one detailed paragraph: the main subject, the setting, notable objects, " +
  "colours, and any legible text. Reply with the description only.";
/** MiniCPM's tiling budget, 9 slices of 448²: servers shrink anything larger to this themselves. */
export const DEFAULT_MAX_PIXELS = 9 * 448 * 448;
export const DEFAULT_MAX_TOKENS = 512;
/** Thinking models spend tokens reasoning before the caption; a smaller budget ends mid-thought. */
export const DEFAULT_MAX_TOKENS_THINKING = 2048;

/** Everything a caption run needs, validated and with defaults applied. */
export interface CaptionConfig {
  /** The first endpoint's, when there are several. */
  baseUrl: string;
  /** Several servers (`--base-url` repeated, or the config file's `endpoints`); else undefined. */
  endpoints: EndpointOptions[] | undefined;
  /**
   * The key for endpoints that name none, and the one the hosted API gets: never OPENAI_API_KEY,
   * which is only for servers of the user's own (so a config file's key, if it holds one).
   */
  sharedKey: { key: string | undefined; hostedKey: string | undefined };
  apiKey: string | undefined;
  model: string;
  prompt: string;
  maxTokens: number;
  temperature: number | undefined;
  /** Unset: each endpoint's default (`defaultConcurrency`). */
  concurrency: number | "auto" | undefined;
  maxConcurrency: number | undefined;
  rpm: number | undefined;
  retries: number;
  timeoutMs: number;
  /** The most bytes of a reply body read; a larger one is refused unread. */
  maxReplyBytes: number;
  prepare: PrepareOptions;
  output: string | undefined;
  format: OutputFormat | undefined;
  errors: string | undefined;
  /** Whether a prompt was given at all: `--tags` brings its own otherwise. */
  promptGiven: boolean;
  /** The schema file, absolute. */
  jsonSchema: string | undefined;
  /** Where the schema file was named ("--json-schema", "caption.json: jsonSchema"), for messages. */
  jsonSchemaFrom: string;
  /**
   * Where each setting that a config file or a variable gave lives, as a message asking for a
   * change names it: "model in caption.json", "MINICPM_BASE_URL". A flag's, or a default, is absent.
   */
  settingFrom: Partial<Record<keyof Settings, string>>;
  /**
   * The outputs and switches as the layers gave them, checked one by one; how they go together
   * (a policy needs a sidecar) is the caller's to check, naming each where it lives.
   */
  outputs: Pick<Settings, keyof typeof OUTPUT_SPECS>;
  /** Where each setting's value came from, for `caption config`: a flag, a variable, a file, or none. */
  origins: Partial<Record<keyof Settings, string>>;
  /** Every setting some layer gave, checked: what `caption config` shows beside its origin. */
  values: Settings;
}

/** The settings that may come from a config file, the environment or flags. */
export interface Settings {
  baseUrl?: string;
  apiKey?: string;
  model?: string;
  prompt?: string;
  promptFile?: string;
  maxTokens?: number;
  temperature?: number;
  concurrency?: number | "auto";
  maxConcurrency?: number;
  rpm?: number;
  retries?: number;
  timeout?: number;
  maxReplyBytes?: number;
  maxPixels?: number;
  maxSide?: number;
  imageFormat?: ImageFormat;
  format?: OutputFormat;
  output?: string;
  errors?: string;
  jsonSchema?: string;
  /** `true` (or "" from a bare `--sidecar`) for `.txt`, or the extension; false for none. */
  sidecar?: string | boolean;
  sidecarPolicy?: string;
  sidecarJoin?: string;
  /** `true` (or "") for jsonl, or "jsonl"/"csv"; false for none. */
  hfMetadata?: string | boolean;
  xmp?: boolean;
  xmpNaming?: string;
  prefix?: string;
  suffix?: string;
  tags?: boolean;
  rejectFlagged?: boolean;
  csvFormulaGuard?: boolean;
  strict?: boolean;
  followSymlinks?: boolean;
}

type SettingKind =
  | { type: "string" }
  | { type: "url" }
  | { type: "path" }
  /** A whole number, or one of the words in `or` ("auto"). */
  | { type: "int"; min: number; max: number; or?: readonly string[] }
  | { type: "number"; min: number; max: number; exclusiveMin?: boolean }
  | { type: "choice"; values: readonly string[] }
  /** Any text, the empty text included (a prefix may be a comma). */
  | { type: "text" }
  | { type: "boolean" }
  /**
   * On or off, or on with a value: `--sidecar` alone or `"sidecar": true`, `--sidecar .caption`.
   * With `values`, the value must be one of them.
   */
  | { type: "switch"; values?: readonly string[] };

/** One setting: how it is written on the command line, in --help, and what a valid value is. */
export interface SettingSpec {
  flag: string;
  /** One-letter form, if any. */
  alias?: string;
  kind: SettingKind;
  describe: string;
  /** The default as --help shows it. */
  shownDefault?: string;
  /** Listed first in --help: what a first run needs. */
  basic?: boolean;
  /** "endpoint" settings serve `caption check` too; "run" ones only captioning. */
  scope: "endpoint" | "run";
}

/**
 * What a run writes besides OUT and how it reads captions: flags as before, and keys of a config
 * file too, so that a cron job keeps its trigger word and its outputs in its config.
 */
const OUTPUT_SPECS = {
  sidecar: {
    flag: "--sidecar",
    kind: { type: "switch" },
    describe: "Also write each caption beside its image as <stem>.txt (or the EXT given)",
    basic: true,
    scope: "run",
  },
  sidecarPolicy: {
    flag: "--sidecar-policy",
    kind: { type: "choice", values: ["skip", "overwrite", "append", "prepend"] },
    describe: "skip, overwrite, append or prepend: what to do with an existing sidecar",
    shownDefault: "skip",
    scope: "run",
  },
  sidecarJoin: {
    flag: "--sidecar-join",
    kind: { type: "text" },
    describe: "Between old and new text for append/prepend",
    shownDefault: '", "',
    scope: "run",
  },
  hfMetadata: {
    flag: "--hf-metadata",
    kind: { type: "switch", values: ["jsonl", "csv"] },
    describe: "Also write metadata.jsonl (or csv) for Hugging Face datasets in each input folder",
    scope: "run",
  },
  xmp: {
    flag: "--xmp",
    kind: { type: "boolean" },
    describe: "Also merge each caption into an XMP sidecar, for photo managers",
    scope: "run",
  },
  xmpNaming: {
    flag: "--xmp-naming",
    kind: { type: "choice", values: ["ext", "stem"] },
    describe: "ext: photo.jpg.xmp (digiKam, darktable); stem: photo.xmp (Lightroom)",
    shownDefault: "ext",
    scope: "run",
  },
  prefix: {
    flag: "--prefix",
    kind: { type: "text" },
    describe: "Put before every caption (a LoRA trigger word)",
    scope: "run",
  },
  suffix: {
    flag: "--suffix",
    kind: { type: "text" },
    describe: "Put after every caption",
    scope: "run",
  },
  strict: {
    flag: "--strict",
    kind: { type: "boolean" },
    describe: "Exit 2 when an input path or glob matches no image",
    scope: "run",
  },
  followSymlinks: {
    flag: "--follow-symlinks",
    kind: { type: "boolean" },
    describe: "Also walk symlinks to folders outside a folder input (never loops)",
    scope: "run",
  },
  tags: {
    flag: "--tags",
    kind: { type: "boolean" },
    describe: "Ask for a list of short lowercase tags instead of a caption (a tags column)",
    scope: "run",
  },
  rejectFlagged: {
    flag: "--reject-flagged",
    kind: { type: "boolean" },
    describe: "Fail captions flagged as repetition, refusal or truncated, instead of keeping them",
    scope: "run",
  },
  csvFormulaGuard: {
    flag: "--csv-formula-guard",
    kind: { type: "boolean" },
    describe: "Quote every CSV cell (paths too) starting with = + - @ for spreadsheets",
    scope: "run",
  },
} as const satisfies Partial<Record<keyof Settings, SettingSpec>>;

/**
 * The one table of settings: it drives the flags and their help, the config file's keys, the
 * environment, validation and (with SETTING_DEFAULTS) the defaults, for the CLI and the library.
 */
export const SETTING_SPECS: Record<keyof Settings, SettingSpec> = {
  output: {
    flag: "--output",
    alias: "o",
    kind: { type: "path" },
    describe:
      "Where captions go: FILE.csv or FILE.jsonl  [required, unless --sidecar, --xmp or --hf-metadata]",
    basic: true,
    scope: "run",
  },
  baseUrl: {
    flag: "--base-url",
    kind: { type: "url" },
    describe:
      "API base URL, ending in /v1 for most servers (env MINICPM_BASE_URL, else OPENAI_BASE_URL)",
    shownDefault: DEFAULT_BASE_URL,
    basic: true,
    scope: "endpoint",
  },
  apiKey: {
    flag: "--api-key",
    kind: { type: "string" },
    describe:
      "API key; prefer env MINICPM_API_KEY (or OPENAI_API_KEY for your own servers): flags show in ps",
    shownDefault: "the hosted API's shared trial key",
    basic: true,
    scope: "endpoint",
  },
  model: {
    flag: "--model",
    alias: "m",
    kind: { type: "string" },
    describe: "Model id, or instruct, thinking, omni, v4.5 for the MiniCPM families",
    shownDefault: DEFAULT_MODEL,
    basic: true,
    scope: "endpoint",
  },
  prompt: {
    flag: "--prompt",
    alias: "p",
    kind: { type: "string" },
    describe:
      "Instruction sent with every image; {stem}, {folder}, {existing}… are filled per image",
    shownDefault: "describe it in one paragraph",
    basic: true,
    scope: "run",
  },
  concurrency: {
    flag: "--concurrency",
    alias: "c",
    kind: { type: "int", min: 1, max: 1024, or: ["auto"] },
    describe: "Requests in flight at once, or auto: found by measuring the server",
    shownDefault: "auto; 8 for the hosted API",
    basic: true,
    scope: "run",
  },
  promptFile: {
    flag: "--prompt-file",
    kind: { type: "path" },
    describe: "Read the prompt from a file",
    scope: "run",
  },
  maxTokens: {
    flag: "--max-tokens",
    kind: { type: "int", min: 1, max: 1_000_000 },
    describe: "Reply token budget",
    shownDefault: "512; 2048 for Thinking models",
    scope: "endpoint",
  },
  temperature: {
    flag: "--temperature",
    kind: { type: "number", min: 0, max: 2 },
    describe: "Sampling temperature, 0 to 2 (server default if unset)",
    scope: "endpoint",
  },
  timeout: {
    flag: "--timeout",
    kind: { type: "number", min: 0, max: 86_400, exclusiveMin: true },
    describe: "Seconds to wait for each reply before retrying",
    shownDefault: "120",
    scope: "endpoint",
  },
  maxReplyBytes: {
    flag: "--max-reply-bytes",
    kind: { type: "int", min: 1024, max: 256 * 1024 * 1024 },
    describe: "Refuse a reply body larger than this many bytes, unread (a server gone wrong)",
    shownDefault: `${DEFAULT_MAX_REPLY_BYTES} (${formatCap(DEFAULT_MAX_REPLY_BYTES)})`,
    scope: "endpoint",
  },
  maxConcurrency: {
    flag: "--max-concurrency",
    kind: { type: "int", min: 1, max: 1024 },
    describe: "With -c auto, the most requests it may have in flight",
    shownDefault: "256",
    scope: "run",
  },
  rpm: {
    flag: "--rpm",
    kind: { type: "int", min: 1, max: 1_000_000 },
    describe: "At most this many requests per minute",
    scope: "run",
  },
  retries: {
    flag: "--retries",
    kind: { type: "int", min: 0, max: 100 },
    describe: "Further attempts after a transient failure",
    shownDefault: "5",
    scope: "run",
  },
  maxPixels: {
    flag: "--max-pixels",
    kind: { type: "int", min: 1024, max: 1_000_000_000 },
    describe: "Shrink images to at most this many pixels",
    shownDefault: String(DEFAULT_MAX_PIXELS),
    scope: "run",
  },
  maxSide: {
    flag: "--max-side",
    kind: { type: "int", min: 32, max: 100_000 },
    describe: "Also cap the longest side, in pixels",
    scope: "run",
  },
  imageFormat: {
    flag: "--image-format",
    kind: { type: "choice", values: ["jpeg", "png"] },
    describe: "jpeg or png: encoding of the images sent",
    shownDefault: "jpeg",
    scope: "run",
  },
  format: {
    flag: "--format",
    kind: { type: "choice", values: ["csv", "jsonl"] },
    describe: "csv or jsonl",
    shownDefault: "from OUT",
    scope: "run",
  },
  errors: {
    flag: "--errors",
    kind: { type: "path" },
    describe: "Where to list failed images",
    shownDefault: "<OUT stem>.errors.jsonl",
    scope: "run",
  },
  jsonSchema: {
    flag: "--json-schema",
    kind: { type: "path" },
    describe: "Ask for JSON matching this schema file; its properties become columns",
    scope: "run",
  },
  ...OUTPUT_SPECS,
};

/** The defaults of the settings that have one, shared by the config layer and the library. */
export const SETTING_DEFAULTS = {
  baseUrl: DEFAULT_BASE_URL,
  model: DEFAULT_MODEL,
  prompt: DEFAULT_PROMPT,
  concurrency: 8,
  retries: 5,
  timeoutSeconds: 120,
  maxPixels: DEFAULT_MAX_PIXELS,
  imageFormat: "jpeg",
} as const;

/** The reply budget for a model when none is set: Thinking models reason before the caption. */
export function defaultMaxTokens(model: string): number {
  return /think/i.test(model) ? DEFAULT_MAX_TOKENS_THINKING : DEFAULT_MAX_TOKENS;
}

const SETTING_KEYS = Object.keys(SETTING_SPECS) as (keyof Settings)[];

/** Where a layer of settings came from, for messages and for resolving relative paths. */
export interface SettingsLayer {
  /** Shown before each problem: "--concurrency", "caption.json: concurrency", "MINICPM_BASE_URL". */
  describe: (key: keyof Settings) => string;
  /**
   * Where a message that asks for a change sends the user ("baseUrl in caption.json"); a flag's
   * layer has none, since the flag is how every message names a setting anyway.
   */
  locate?: (key: keyof Settings | "endpoints") => string;
  /** Relative paths in this layer are relative to this folder. */
  baseDir: string;
  values: Record<string, unknown>;
}

export interface ResolveInput {
  flags: Record<string, unknown>;
  env: NodeJS.ProcessEnv;
  cwd: string;
  /** `--config FILE`, or the name of an example config in the package's config/ (`vllm`). */
  configFile?: string | undefined;
  /** Where `--config NAME` looks; the package's own config/ unless a test says otherwise. */
  exampleConfigDir?: string | undefined;
}

/** The environment variables read for each setting, first match wins. */
export const ENV_VARIABLES = {
  baseUrl: ["MINICPM_BASE_URL", "OPENAI_BASE_URL"],
  apiKey: ["MINICPM_API_KEY", "OPENAI_API_KEY"],
} as const;

/**
 * The package's own config/ folder: the one beside the package.json above this module, which runs
 * both as src/config.ts and as dist/config.js, in a clone or in an installed copy.
 */
export const EXAMPLE_CONFIG_DIR = path.join(packageRoot(), "config");

function packageRoot(): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  for (let dir = here; ; dir = path.dirname(dir)) {
    if (existsSync(path.join(dir, "package.json"))) return dir;
    if (path.dirname(dir) === dir) return path.dirname(here);
  }
}

/** The names `--config NAME` accepts: the example configs shipped in config/, sorted. */
export function exampleConfigNames(dir: string = EXAMPLE_CONFIG_DIR): string[] {
  try {
    return readdirSync(dir)
      .filter((file) => file.endsWith(".json"))
      .map((file) => file.slice(0, -".json".length))
      .sort();
  } catch {
    return [];
  }
}

/**
 * Where `--config VALUE` points. A file that exists relative to the working folder always wins;
 * otherwise a bare name (no path separator, no .json) is an example config in config/.
 */
function locateConfigFile(
  value: string,
  cwd: string,
  exampleDir: string,
): { file: string; shown: string; named: boolean } {
  const file = path.resolve(cwd, value);
  const bare = !/[\\/]/.test(value) && !value.toLowerCase().endsWith(".json");
  if (!bare || existsSync(file)) return { file, shown: value, named: false };
  const example = path.join(exampleDir, `${value}.json`);
  return { file: example, shown: example, named: true };
}

/**
 * Builds the run's config: defaults < config file < environment < flags. Every problem found in
 * any layer is collected and reported together, each naming its flag, key or variable.
 */
export function resolveConfig(input: ResolveInput): CaptionConfig {
  const problems: string[] = [];
  const layers: SettingsLayer[] = [];
  let fileLayer: SettingsLayer | undefined;

  if (input.configFile !== undefined) {
    const exampleDir = input.exampleConfigDir ?? EXAMPLE_CONFIG_DIR;
    const { file, shown, named } = locateConfigFile(input.configFile, input.cwd, exampleDir);
    const values = readConfigFile(file, shown, problems, exampleDir, named);
    if (values) {
      fileLayer = {
        describe: (key) => `${shown}: ${key}`,
        // An example config given by name lives in the installed package: a flag is the mend.
        ...(named ? {} : { locate: (key: string) => `${key} in ${shown}` }),
        baseDir: path.dirname(file),
        values,
      };
      layers.push(fileLayer);
    }
  }
  // MINICPM_* first, then the OPENAI_* names other OpenAI-compatible tools read; an empty
  // variable counts as unset. Problems name the variable the value actually came from.
  const envValues: Record<string, unknown> = {};
  const envSource: Partial<Record<keyof Settings, string>> = {};
  for (const [key, names] of Object.entries(ENV_VARIABLES) as [
    keyof typeof ENV_VARIABLES,
    readonly string[],
  ][]) {
    const name = names.find((candidate) => input.env[candidate]);
    if (name === undefined) continue;
    envValues[key] = input.env[name];
    envSource[key] = name;
  }
  const envLayer: SettingsLayer = {
    describe: (key) => envSource[key] ?? key,
    // A key is as often given by the flag, which the message has always offered as well.
    locate: (key) =>
      key === "apiKey"
        ? `${envSource[key]} or ${SETTING_SPECS.apiKey.flag}`
        : ((key === "endpoints" ? undefined : envSource[key]) ?? key),
    baseDir: input.cwd,
    values: envValues,
  };
  layers.push(envLayer);
  layers.push({
    describe: (key) => SETTING_SPECS[key].flag,
    baseDir: input.cwd,
    values: input.flags,
  });

  const merged: Settings = {};
  let promptFrom: { layer: SettingsLayer; key: "prompt" | "promptFile" } | null = null;
  const settingFrom: Partial<Record<keyof Settings, string>> = {};
  const origins: Partial<Record<keyof Settings, string>> = {};
  // Like the prompt, the servers come from the most specific layer that names any: one base URL,
  // several (`--base-url` repeated), or a config file's `endpoints`; but see below.
  let endpoints: EndpointOptions[] | undefined;
  for (const layer of layers) {
    const listed = endpointsOf(layer, input.env, problems);
    // A base URL exported in the shell does not shrink a config file's list of servers to one;
    // a --base-url flag, typed for this run, does.
    const exported = layer === envLayer && endpoints !== undefined;
    if (listed !== null && !exported) endpoints = listed;
    const valid = validateLayer(layer, problems);
    for (const key of Object.keys(valid) as (keyof Settings)[]) {
      if (!(key === "baseUrl" && exported)) origins[key] = layer.describe(key);
      // An exported base URL the file's list of servers overrules is not what the run used.
      if (key === "baseUrl" && exported) continue;
      if (layer.locate) settingFrom[key] = layer.locate(key);
      else delete settingFrom[key];
    }
    if (listed && !exported && layer.values.endpoints !== undefined) {
      if (layer.locate) settingFrom.baseUrl = layer.locate("endpoints");
      else delete settingFrom.baseUrl;
    }
    // The prompt comes from the most specific layer that sets either form of it.
    if (valid.prompt !== undefined) promptFrom = { layer, key: "prompt" };
    else if (valid.promptFile !== undefined) promptFrom = { layer, key: "promptFile" };
    Object.assign(merged, valid);
  }

  let prompt = DEFAULT_PROMPT;
  if (promptFrom?.key === "prompt") prompt = promptFrom.layer.values.prompt as string;
  if (promptFrom?.key === "promptFile") {
    const file = path.resolve(
      promptFrom.layer.baseDir,
      promptFrom.layer.values.promptFile as string,
    );
    const where = promptFrom.layer.describe("promptFile");
    const read = readLimitedSync(file);
    if (read.ok) {
      prompt = read.text.trim();
      if (prompt === "") problems.push(`${where}: ${file} is empty`);
    } else if (read.reason === "unreadable") {
      problems.push(`${where}: cannot read ${file} (${read.errno ?? read.problem})`);
    } else {
      // A device, a pipe, a folder or a huge file: refused before more than the cap is read.
      problems.push(`${where} ${String(promptFrom.layer.values.promptFile)}: ${read.problem}`);
    }
  }
  if (promptFrom?.key === "prompt" && prompt.trim() === "") {
    problems.push(`${promptFrom.layer.describe("prompt")}: the prompt is empty`);
  }
  // Checked here as well as by the library, to name the flag, key or file the prompt came from.
  const template = parseTemplate(prompt);
  if (promptFrom && "problems" in template) {
    for (const problem of template.problems) {
      problems.push(`${promptFrom.layer.describe(promptFrom.key)}: ${problem}`);
    }
  }

  if (problems.length > 0) throw new UsageError(problems);

  const model = merged.model ?? DEFAULT_MODEL;
  const resolvePath = (key: "output" | "errors" | "jsonSchema"): string | undefined => {
    for (let i = layers.length - 1; i >= 0; i -= 1) {
      const layer = layers[i];
      const value = layer?.values[key];
      if (layer && typeof value === "string") return path.resolve(layer.baseDir, value);
    }
    return undefined;
  };
  const baseUrl = normaliseBaseUrl(endpoints?.[0]?.baseUrl ?? merged.baseUrl ?? DEFAULT_BASE_URL);
  // A key exported for OpenAI itself is never sent to the hosted MiniCPM API: it is only the
  // fallback for servers named by a base URL of the user's own.
  const openAi =
    envSource.apiKey === "OPENAI_API_KEY" &&
    input.flags.apiKey === undefined &&
    merged.apiKey === envValues.apiKey;
  // What the hosted API gets instead: a key the config file holds, which the variable outranked.
  const fileKey = typeof fileLayer?.values.apiKey === "string" ? fileLayer.values.apiKey : "";
  const hostedKey = (openAi ? fileKey : merged.apiKey) || undefined;
  if (openAi && isHostedApi(baseUrl)) {
    if (hostedKey && fileLayer?.locate) settingFrom.apiKey = fileLayer.locate("apiKey");
    else delete settingFrom.apiKey;
  }
  return {
    baseUrl,
    endpoints,
    sharedKey: { key: merged.apiKey || undefined, hostedKey },
    apiKey: isHostedApi(baseUrl) ? hostedKey : merged.apiKey || undefined,
    model,
    prompt,
    maxTokens: merged.maxTokens ?? defaultMaxTokens(model),
    temperature: merged.temperature,
    concurrency: merged.concurrency,
    maxConcurrency: merged.maxConcurrency,
    rpm: merged.rpm,
    retries: merged.retries ?? SETTING_DEFAULTS.retries,
    timeoutMs: Math.round((merged.timeout ?? SETTING_DEFAULTS.timeoutSeconds) * 1000),
    maxReplyBytes: merged.maxReplyBytes ?? DEFAULT_MAX_REPLY_BYTES,
    prepare: {
      maxPixels: merged.maxPixels ?? SETTING_DEFAULTS.maxPixels,
      maxSide: merged.maxSide,
      imageFormat: merged.imageFormat ?? SETTING_DEFAULTS.imageFormat,
    },
    output: resolvePath("output"),
    format: merged.format,
    errors: resolvePath("errors"),
    promptGiven: promptFrom !== null,
    settingFrom,
    outputs: Object.fromEntries(
      (Object.keys(OUTPUT_SPECS) as (keyof typeof OUTPUT_SPECS)[])
        .filter((key) => merged[key] !== undefined)
        .map((key) => [key, merged[key]]),
    ),
    origins,
    values: merged,
    jsonSchema: resolvePath("jsonSchema"),
    jsonSchemaFrom:
      [...layers]
        .reverse()
        .find((layer) => typeof layer.values.jsonSchema === "string")
        ?.describe("jsonSchema") ?? SETTING_SPECS.jsonSchema.flag,
  };
}

/**
 * `-c` when none is given: measured (`auto`) for the servers a user names, which batch (vLLM,
 * SGLang), queue (llama.cpp, Ollama) or rate-limit with 429s, all of which `auto` reads; a fixed 8
 * for the hosted API, whose limits are not published and whose trial key is shared, and which
 * from one client looks unbounded, so `auto` would climb to `--max-concurrency` there (bench P13).
 */
export function defaultConcurrency(baseUrl: string): number | "auto" {
  return isHostedApi(baseUrl) ? SETTING_DEFAULTS.concurrency : "auto";
}

/** Whether a base URL is the hosted MiniCPM API, however it is written (scheme, port, case). */
export function isHostedApi(baseUrl: string): boolean {
  try {
    return new URL(baseUrl).hostname.toLowerCase() === new URL(DEFAULT_BASE_URL).hostname;
  } catch {
    return false;
  }
}

/** Accepts a base URL pasted with the route on the end, and drops trailing slashes. */
export function normaliseBaseUrl(url: string): string {
  return url.replace(/\/+$/, "").replace(/\/chat\/completions$/, "");
}

/**
 * Reads one config file. `named` when it was asked for by name (`--config vllm`): a missing one is
 * then an unknown name, reported with the names there are.
 */
function readConfigFile(
  file: string,
  shown: string,
  problems: string[],
  exampleDir: string,
  named: boolean,
): Record<string, unknown> | null {
  const read = readLimitedSync(file);
  if (!read.ok && read.reason !== "unreadable") {
    problems.push(`--config ${shown}: ${read.problem}`);
    return null;
  }
  if (!read.ok) {
    const code = read.errno;
    const names = exampleConfigNames(exampleDir);
    const list = names.length > 0 ? names.join(", ") : "none found";
    if (named && code === "ENOENT") {
      const name = path.basename(file, ".json");
      problems.push(
        `--config: no file "${name}" here and no example config of that name; give a path to a JSON file, or one of: ${list}`,
      );
      return null;
    }
    // `--config config/vllm.json` from outside a clone: the example is there by name.
    const example = path.basename(shown).replace(/\.json$/i, "");
    const hint =
      code === "ENOENT" && names.includes(example)
        ? `; the example config of that name is --config ${example}`
        : "";
    problems.push(
      `--config: cannot read ${shown} (${code === "ENOENT" ? "no such file" : (code ?? read.problem)})${hint}`,
    );
    return null;
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(read.text);
  } catch (error) {
    problems.push(`${shown}: not valid JSON (${(error as Error).message})`);
    return null;
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    problems.push(`${shown}: expected a JSON object of settings, like {"model": "..."}`);
    return null;
  }
  const values: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(parsed)) {
    if (key === "$comment" || key.startsWith("//")) continue;
    if (!SETTING_KEYS.includes(key as keyof Settings) && key !== "endpoints") {
      const known = [...SETTING_KEYS, "endpoints"];
      const near = closestName(key, known);
      problems.push(
        `${shown}: unknown key "${key}"${near ? ` (did you mean "${near}"?)` : ""}; known keys: ${known.join(", ")}`,
      );
      continue;
    }
    values[key] = value;
  }
  return values;
}

/**
 * The servers a layer names: undefined for one base URL (or none: the layer leaves it to those
 * below), else the list. A list's problems are reported, and a `$NAME` key read from `env`.
 */
function endpointsOf(
  layer: SettingsLayer,
  env: NodeJS.ProcessEnv,
  problems: string[],
): EndpointOptions[] | undefined | null {
  const { baseUrl, endpoints } = layer.values;
  if (Array.isArray(baseUrl)) {
    // `--base-url` given more than once: each is an endpoint with the run's other settings.
    const shown = layer.describe("baseUrl");
    const urls: string[] = [];
    for (const url of baseUrl) {
      const problem = checkValue(url, SETTING_SPECS.baseUrl.kind);
      if (problem) problems.push(`${shown}: ${problem}`);
      else if (urls.includes(normaliseBaseUrl(url as string))) {
        problems.push(`${shown}: ${normaliseBaseUrl(url as string)} is given twice`);
      } else urls.push(normaliseBaseUrl(url as string));
    }
    // The rest of the layer is checked as if one had been given.
    layer.values = { ...layer.values, baseUrl: urls[0] ?? DEFAULT_BASE_URL };
    return urls.length > 1 ? urls.map((url) => ({ baseUrl: url })) : undefined;
  }
  if (endpoints === undefined) return baseUrl === undefined ? null : undefined;
  const where = layer.describe("baseUrl").replace(/: baseUrl$/, "");
  const found = checkEndpoints(endpoints, env);
  for (const problem of found) problems.push(`${where}: ${problem}`);
  if (found.length > 0 || !Array.isArray(endpoints)) return undefined;
  if (baseUrl !== undefined) {
    problems.push(`${where}: baseUrl and endpoints name the servers twice; keep one of them`);
  }
  return (endpoints as Record<string, unknown>[]).map((entry) => {
    const variable = typeof entry.apiKey === "string" ? KEY_VARIABLE.exec(entry.apiKey)?.[1] : null;
    return {
      ...(entry as unknown as EndpointOptions),
      baseUrl: normaliseBaseUrl(entry.baseUrl as string),
      ...(variable ? { apiKey: env[variable] } : {}),
    };
  });
}

function validateLayer(layer: SettingsLayer, problems: string[]): Settings {
  const valid: Record<string, unknown> = {};
  for (const key of SETTING_KEYS) {
    const raw = layer.values[key];
    if (raw === undefined) continue;
    const kind = SETTING_SPECS[key].kind;
    const problem = checkValue(raw, kind);
    if (problem) {
      // Never echo a key back, even a malformed one.
      const shown = key === "apiKey" ? "expected a non-empty string" : problem;
      problems.push(`${layer.describe(key)}: ${shown}`);
    } else {
      valid[key] = typeof raw === "string" ? coerce(raw, kind) : raw;
    }
  }
  return valid as Settings;
}

function coerce(raw: string, kind: SettingKind): unknown {
  if (kind.type === "int" && kind.or?.includes(raw)) return raw;
  return kind.type === "int" || kind.type === "number" ? Number(raw) : raw;
}

/** What is wrong with `value` for a setting, or null when it is valid (numbers as numbers). */
export function checkSetting(key: keyof Settings, value: unknown): string | null {
  return checkValue(value, SETTING_SPECS[key].kind);
}

function checkValue(raw: unknown, kind: SettingKind): string | null {
  switch (kind.type) {
    case "string":
    case "path":
      return typeof raw === "string" && raw !== ""
        ? null
        : `expected a non-empty string, got ${show(raw)}`;
    case "url": {
      if (typeof raw !== "string") return `expected a URL, got ${show(raw)}`;
      try {
        const url = new URL(raw);
        if (url.protocol === "http:" || url.protocol === "https:") return null;
      } catch {
        // Reported below.
      }
      return `expected an http:// or https:// URL such as ${DEFAULT_BASE_URL}, got ${show(raw)}`;
    }
    case "int":
    case "number": {
      const words = kind.type === "int" ? (kind.or ?? []) : [];
      if (typeof raw === "string" && words.includes(raw)) return null;
      const value = typeof raw === "string" && raw.trim() !== "" ? Number(raw) : raw;
      const whole = kind.type === "int";
      const or = words.map((word) => ` or ${word}`).join("");
      const expected = `expected ${whole ? "a whole number" : "a number"} ${describeRange(kind)}${or}, got ${show(raw)}`;
      if (typeof value !== "number" || !Number.isFinite(value)) return expected;
      if (whole && !Number.isInteger(value)) return expected;
      const tooLow =
        kind.type === "number" && kind.exclusiveMin ? value <= kind.min : value < kind.min;
      return tooLow || value > kind.max ? expected : null;
    }
    case "choice":
      return typeof raw === "string" && kind.values.includes(raw)
        ? null
        : `expected one of ${kind.values.join(", ")}, got ${show(raw)}`;
    case "text":
      return typeof raw === "string" ? null : `expected text, got ${show(raw)}`;
    case "boolean":
      return typeof raw === "boolean" ? null : `expected true or false, got ${show(raw)}`;
    case "switch": {
      if (typeof raw === "boolean" || raw === "") return null;
      if (typeof raw === "string" && (kind.values === undefined || kind.values.includes(raw))) {
        return null;
      }
      // Named as the command line writes it; a config file may also say true or false.
      return kind.values
        ? `expected ${kind.values.join(" or ")}, got ${show(raw)}`
        : `expected a value, true or false, got ${show(raw)}`;
    }
  }
}

function describeRange(kind: { min: number; max: number; exclusiveMin?: boolean }): string {
  return kind.exclusiveMin
    ? `greater than ${kind.min} and at most ${kind.max}`
    : `from ${kind.min} to ${kind.max}`;
}

function show(value: unknown): string {
  return typeof value === "string" ? `"${value}"` : (JSON.stringify(value) ?? String(value));
}

/** An endpoint's `apiKey` that names an environment variable: `$NAME` or `${NAME}`. */
const KEY_VARIABLE = /^\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?$/;

/** The keys an entry of `endpoints` may have. */
export const ENDPOINT_KEYS = ["baseUrl", "apiKey", "model", "concurrency", "rpm"] as const;

/**
 * What is wrong with a list of endpoints, each problem naming the entry (`endpoints[1].rpm: …`).
 * With `env`, an apiKey of the form `$NAME` must name a variable that is set.
 */
export function checkEndpoints(value: unknown, env?: NodeJS.ProcessEnv): string[] {
  if (!Array.isArray(value) || value.length === 0) {
    return [
      'endpoints: expected a non-empty list like [{ "baseUrl": "http://gpu1:8000/v1" }, …], each with apiKey, model, concurrency and rpm if it needs its own',
    ];
  }
  const problems: string[] = [];
  const seen = new Set<string>();
  value.forEach((entry: unknown, index) => {
    const where = `endpoints[${index}]`;
    if (typeof entry !== "object" || entry === null || Array.isArray(entry)) {
      problems.push(`${where}: expected an object like { "baseUrl": "http://gpu1:8000/v1" }`);
      return;
    }
    const fields = entry as Record<string, unknown>;
    for (const key of Object.keys(fields)) {
      if (!(ENDPOINT_KEYS as readonly string[]).includes(key)) {
        const near = closestName(key, ENDPOINT_KEYS);
        problems.push(
          `${where}: unknown key "${key}"${near ? ` (did you mean "${near}"?)` : ""}; known keys: ${ENDPOINT_KEYS.join(", ")}`,
        );
      }
    }
    if (fields.baseUrl === undefined) problems.push(`${where}.baseUrl: missing`);
    const named = typeof fields.apiKey === "string" ? KEY_VARIABLE.exec(fields.apiKey) : null;
    if (env && named?.[1] && !env[named[1]]) {
      problems.push(
        `${where}.apiKey: names the environment variable ${named[1]}, which is not set`,
      );
    }
    for (const key of ENDPOINT_KEYS) {
      if (fields[key] === undefined) continue;
      const problem = checkSetting(key, fields[key]);
      // Never echo a key back, even a malformed one.
      if (problem) {
        problems.push(
          `${where}.${key}: ${key === "apiKey" ? "expected a non-empty string" : problem}`,
        );
      }
    }
    if (typeof fields.baseUrl === "string") {
      const url = normaliseBaseUrl(fields.baseUrl);
      if (seen.has(url)) problems.push(`${where}.baseUrl: ${url} is listed twice`);
      seen.add(url);
    }
  });
  return problems;
}
