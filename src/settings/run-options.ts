import path from "node:path";
import { byOptionName, type NameSetting, UsageError } from "../errors.js";
import { promptHash } from "../prompts/protocol.js";
import { type AnswerSchema, compileSchema } from "../prompts/structured.js";
import { TAGS_PROMPT, TAGS_SCHEMA } from "../prompts/tags.js";
import { type PromptTemplate, parseTemplate } from "../prompts/template.js";
import { AUTO_MAX } from "../send/auto-concurrency.js";
import type { FetchLike } from "../send/client.js";
import { endpointLabels, type RequestBudget } from "../send/endpoint.js";
import type { HfMetadataFormat } from "../sinks/hf-metadata-sink.js";
import { SIDECAR_POLICIES, type SidecarOptions, sidecarExtProblem } from "../sinks/sidecar-sink.js";
import type { XmpNaming } from "../sinks/xmp-sink.js";
import { DEFAULT_MAX_REPLY_BYTES } from "../trust/reply-limit.js";
import type { OutputFormat, PrepareOptions } from "../types.js";
import { fromEnvironment, unknownOptions } from "./environment.js";
import { chooseOutputFormat, defaultErrorsPath } from "./output-format.js";
import {
  checkEndpoints,
  checkSetting,
  defaultConcurrency,
  defaultMaxTokens,
  normaliseBaseUrl,
  SETTING_DEFAULTS,
  type Settings,
} from "./resolve.js";

/** One server of a run; what it leaves out is the run's own setting. */
export interface EndpointOptions {
  baseUrl: string;
  apiKey?: string | undefined;
  model?: string | undefined;
  concurrency?: number | "auto" | undefined;
  rpm?: number | undefined;
}

/** An endpoint with the run's settings filled in, and the name its rows give it. */
export interface ResolvedEndpoint {
  baseUrl: string;
  apiKey: string | undefined;
  model: string;
  concurrency: number | "auto";
  rpm: number | undefined;
  /** `host:port`: the rows' `endpoint` column. */
  label: string;
  /** The option its key came from, for messages: `apiKey`, or `endpoints[i].apiKey`. */
  keyOption: string;
}

/** What `captionImages` takes. Only `inputs` and `output` are required; the rest have defaults. */
export interface RunOptions {
  /** Folders (searched recursively), image files or glob patterns. */
  inputs: readonly string[];
  /** OUT: where captions go, `.csv` or `.jsonl`. Relative to `cwd`. */
  output: string;
  /** Relative inputs and the paths written to OUT are relative to this folder. @default process.cwd() */
  cwd?: string | undefined;
  /** @default what OUT holds if it exists, else its extension */
  format?: OutputFormat | undefined;
  /** Where this run's failures go. @default "<OUT stem>.errors.jsonl" beside OUT */
  errorsPath?: string | undefined;
  /** Discard OUT and start fresh instead of resuming. @default false */
  overwrite?: boolean | undefined;
  /** Prepare the images and report what would be sent, without sending or writing anything. */
  dryRun?: boolean | undefined;
  /** Refuse to run when an input holds no image at all (a mistyped glob or folder). @default false */
  strict?: boolean | undefined;
  /**
   * Walk symlinks to folders that lead out of a folder input too. Off, such a link is not
   * followed (and counted in a warning): a folder handed over may link anywhere. Loops are never
   * followed either way; a symlink to an image file is always read.
   * @default false
   */
  followSymlinks?: boolean | undefined;
  /** OUT is only the record the other outputs are checked against; it asks for no image. */
  recordOnly?: boolean | undefined;
  /** OUT's rows name images relative to this folder rather than as displayed. */
  recordRoot?: string | undefined;
  /** Also write each caption beside its image, as LoRA trainers read it. */
  sidecar?: SidecarOptions | undefined;
  /** Also write Hugging Face `metadata.jsonl` (or `.csv`) at the root of each folder input. */
  hfMetadata?: HfMetadataFormat | undefined;
  /** Also merge each caption into an XMP sidecar: `<file>.<ext>.xmp` ("ext") or `<stem>.xmp`. */
  xmp?: XmpNaming | undefined;
  /** Put before every caption, in every output: a LoRA trigger word such as "ohwx, ". */
  prefix?: string | undefined;
  /** Put after every caption, in every output. */
  suffix?: string | undefined;
  /** Quote every CSV cell a spreadsheet would run as a formula, paths too (CSV only). @default false */
  csvFormulaGuard?: boolean | undefined;
  /** @default `MINICPM_BASE_URL`, else `OPENAI_BASE_URL`, else "https://api.modelbest.cn/v1" */
  baseUrl?: string | undefined;
  /**
   * Several servers for one run, each with its own limiter; work goes to whichever has a free
   * slot, and one that stops answering is left out while the others go on. Replaces `baseUrl`;
   * `apiKey`, `model`, `concurrency` and `rpm` are the defaults of each.
   */
  endpoints?: readonly EndpointOptions[] | undefined;
  /**
   * Sent as a Bearer token; self-hosted servers often need none.
   * @default `MINICPM_API_KEY`, else `OPENAI_API_KEY` (never sent to the hosted API), else for the
   * hosted API the provider's shared trial key
   */
  apiKey?: string | undefined;
  /**
   * Where `baseUrl` and `apiKey` are looked up when they are left out, as the command line looks
   * them up: `MINICPM_BASE_URL`/`OPENAI_BASE_URL`, `MINICPM_API_KEY`/`OPENAI_API_KEY`.
   * @default process.env
   */
  env?: Readonly<Record<string, string | undefined>> | undefined;
  /**
   * A model id, or a MiniCPM family (`instruct`, `thinking`, `omni`, `v4.5`): asked for by the id
   * each server lists of it.
   * @default "instruct"
   */
  model?: string | undefined;
  /**
   * May hold placeholders filled per image ({stem}, {folder}, {existing}…; see PLACEHOLDERS).
   * @default a one-paragraph description prompt; with `tags`, a tagging prompt
   */
  prompt?: string | undefined;
  /** Ask for a JSON answer matching this schema (a top-level object); its properties are fields. */
  jsonSchema?: Record<string, unknown> | undefined;
  /** Ask for a list of short lowercase tags: a built-in prompt and schema. @default false */
  tags?: boolean | undefined;
  /** Flagged captions (repetition, refusal, truncated) fail instead of being kept. @default false */
  rejectFlagged?: boolean | undefined;
  /** @default 512; 2048 when the model id contains "think" */
  maxTokens?: number | undefined;
  /** @default the server's */
  temperature?: number | undefined;
  /**
   * Requests in flight at once, and so images held in memory at once; "auto" finds the figure
   * that gives the most throughput, by measuring each endpoint.
   * @default "auto", or 8 for the hosted API (`defaultConcurrency`)
   */
  concurrency?: number | "auto" | undefined;
  /** With concurrency "auto", the most in flight at once per endpoint. @default 256 */
  maxConcurrency?: number | undefined;
  /** Requests per minute at most. @default unlimited */
  rpm?: number | undefined;
  /** Further attempts after the first, for failures that may be transient. @default 5 */
  retries?: number | undefined;
  /** Per-attempt timeout in ms. @default 120000 */
  timeoutMs?: number | undefined;
  /** The most bytes of a reply body read; a larger one fails its image. @default 4 MiB */
  maxReplyBytes?: number | undefined;
  /** @default 1806336 pixels, JPEG */
  prepare?: Partial<PrepareOptions> | undefined;
  /**
   * A request budget an endpoint shares with other processes (`caption worker` keeps one in
   * Redis per endpoint with an rpm). @default none: the limiter alone
   */
  budgetFor?: ((endpoint: ResolvedEndpoint) => RequestBudget | undefined) | undefined;
  /** Injectable for tests and instrumentation. @default globalThis.fetch */
  fetch?: FetchLike | undefined;
  /**
   * How messages (errors-file rows included) name a setting to change. The command line passes
   * its flags. @default the option's own name
   */
  nameSetting?: NameSetting | undefined;
}

/** RunOptions with every default applied and every value checked. */
export interface ResolvedRunOptions
  extends Required<
    Omit<
      RunOptions,
      | "apiKey"
      | "temperature"
      | "rpm"
      | "sidecar"
      | "hfMetadata"
      | "xmp"
      | "recordOnly"
      | "recordRoot"
      | "prefix"
      | "suffix"
      | "fetch"
      | "budgetFor"
      | "prepare"
      | "jsonSchema"
      | "endpoints"
      | "concurrency"
      | "env"
    >
  > {
  /** Said as warnings when the run starts (the trial key is in use). */
  notices: string[];
  /** At least one: `endpoints`, or the one `baseUrl` names; each with its own concurrency. */
  endpoints: ResolvedEndpoint[];
  /** The prompt, checked. */
  template: PromptTemplate;
  /** The schema answers are checked against, from `jsonSchema` or `tags`. */
  answer: AnswerSchema | undefined;
  promptHash: string;
  apiKey: string | undefined;
  temperature: number | undefined;
  rpm: number | undefined;
  sidecar: SidecarOptions | undefined;
  hfMetadata: HfMetadataFormat | undefined;
  xmp: XmpNaming | undefined;
  recordOnly: boolean | undefined;
  recordRoot: string | undefined;
  prefix: string | undefined;
  suffix: string | undefined;
  fetch: FetchLike | undefined;
  budgetFor: RunOptions["budgetFor"];
  prepare: PrepareOptions;
}

/**
 * Applies the defaults and checks every option, collecting all problems into one UsageError whose
 * lines name the options, so a program gets the same care as the command line.
 */
export async function resolveRunOptions(options: RunOptions): Promise<ResolvedRunOptions> {
  const problems: string[] = unknownOptions(options);
  const environment = fromEnvironment(options);
  problems.push(...environment.problems);
  if (
    !Array.isArray(options.inputs) ||
    options.inputs.length === 0 ||
    !options.inputs.every((input) => typeof input === "string" && input !== "")
  ) {
    problems.push("inputs: expected a non-empty list of folders, files or glob patterns");
  }
  if (typeof options.output !== "string" || options.output === "") {
    problems.push("output: expected the path of a .csv or .jsonl file");
  }
  const settings: [keyof Settings, unknown][] = [
    ["baseUrl", options.baseUrl],
    ["model", options.model],
    ["prompt", options.prompt],
    ["maxTokens", options.maxTokens],
    ["temperature", options.temperature],
    ["concurrency", options.concurrency],
    ["maxConcurrency", options.maxConcurrency],
    ["rpm", options.rpm],
    ["retries", options.retries],
    ["timeout", options.timeoutMs === undefined ? undefined : options.timeoutMs / 1000],
    ["maxReplyBytes", options.maxReplyBytes],
    ["maxPixels", options.prepare?.maxPixels],
    ["maxSide", options.prepare?.maxSide],
    ["imageFormat", options.prepare?.imageFormat],
    ["format", options.format],
  ];
  for (const [key, value] of settings) {
    if (value === undefined) continue;
    const problem = checkSetting(key, value);
    if (problem) problems.push(`${key === "timeout" ? "timeoutMs" : key}: ${problem}`);
  }
  if (options.endpoints !== undefined) problems.push(...checkEndpoints(options.endpoints));
  if (options.sidecar) {
    if (!SIDECAR_POLICIES.includes(options.sidecar.policy)) {
      problems.push(`sidecar.policy: expected one of ${SIDECAR_POLICIES.join(", ")}`);
    }
    const extProblem = sidecarExtProblem(String(options.sidecar.ext));
    if (extProblem) problems.push(`sidecar.ext: ${extProblem}`);
  }
  if (
    options.hfMetadata !== undefined &&
    options.hfMetadata !== "jsonl" &&
    options.hfMetadata !== "csv"
  ) {
    problems.push(
      `hfMetadata: expected "jsonl" or "csv", got ${JSON.stringify(options.hfMetadata)}`,
    );
  }
  if (options.xmp !== undefined && options.xmp !== "ext" && options.xmp !== "stem") {
    problems.push(`xmp: expected "ext" or "stem", got ${JSON.stringify(options.xmp)}`);
  }
  const template = parseTemplate(
    options.prompt ?? (options.tags ? TAGS_PROMPT : SETTING_DEFAULTS.prompt),
  );
  if ("problems" in template) {
    for (const problem of template.problems) problems.push(`prompt: ${problem}`);
  }
  if (options.tags && options.jsonSchema !== undefined) {
    const name = options.nameSetting ?? byOptionName;
    problems.push(
      `tags: asks for its own schema, so it cannot be combined with ${name("jsonSchema")}`,
    );
  }
  const schema = options.tags ? TAGS_SCHEMA : options.jsonSchema;
  const answer = schema === undefined ? undefined : compileSchema(schema, "caption");
  if (answer && "problems" in answer) {
    for (const problem of answer.problems) problems.push(`jsonSchema: ${problem}`);
  }
  for (const key of ["prefix", "suffix"] as const) {
    const value = options[key];
    if (value !== undefined && typeof value !== "string") {
      problems.push(`${key}: expected text, got ${JSON.stringify(value)}`);
    }
  }
  if (problems.length > 0 || "problems" in template || (answer && "problems" in answer)) {
    throw new UsageError(problems);
  }

  const cwd = options.cwd ?? process.cwd();
  const output = path.resolve(cwd, options.output);
  // An explicit format is taken as given (the CLI has already held it against OUT's name).
  const format = options.format ?? (await chooseOutputFormat(output, undefined)).format;
  // An alias stays one: which id it means depends on what each server lists.
  const model = options.model ?? SETTING_DEFAULTS.model;
  const baseUrl = options.baseUrl ?? environment.baseUrl ?? SETTING_DEFAULTS.baseUrl;
  const endpoints = resolveEndpoints(options.endpoints, {
    baseUrl,
    apiKeyFor: (url) => environment.keyFor(url).apiKey,
    model,
    concurrency: options.concurrency,
    rpm: options.rpm,
  });
  return {
    endpoints,
    inputs: options.inputs,
    output,
    cwd,
    format,
    errorsPath: path.resolve(cwd, options.errorsPath ?? defaultErrorsPath(output)),
    overwrite: options.overwrite ?? false,
    dryRun: options.dryRun ?? false,
    strict: options.strict ?? false,
    followSymlinks: options.followSymlinks ?? false,
    sidecar: options.sidecar,
    hfMetadata: options.hfMetadata,
    xmp: options.xmp,
    recordOnly: options.recordOnly,
    recordRoot: options.recordRoot,
    prefix: options.prefix,
    suffix: options.suffix,
    csvFormulaGuard: options.csvFormulaGuard ?? false,
    baseUrl: normaliseBaseUrl(baseUrl),
    apiKey: options.apiKey,
    notices: environment.notices,
    model,
    prompt: template.text,
    template,
    answer,
    promptHash: promptHash(template.text, answer),
    tags: options.tags ?? false,
    rejectFlagged: options.rejectFlagged ?? false,
    maxTokens: options.maxTokens ?? defaultMaxTokens(model),
    temperature: options.temperature,
    maxConcurrency: options.maxConcurrency ?? AUTO_MAX,
    rpm: options.rpm,
    retries: options.retries ?? SETTING_DEFAULTS.retries,
    timeoutMs: options.timeoutMs ?? SETTING_DEFAULTS.timeoutSeconds * 1000,
    maxReplyBytes: options.maxReplyBytes ?? DEFAULT_MAX_REPLY_BYTES,
    prepare: {
      maxPixels: options.prepare?.maxPixels ?? SETTING_DEFAULTS.maxPixels,
      maxSide: options.prepare?.maxSide,
      imageFormat: options.prepare?.imageFormat ?? SETTING_DEFAULTS.imageFormat,
      ...(options.prepare?.quality === undefined ? {} : { quality: options.prepare.quality }),
    },
    fetch: options.fetch,
    budgetFor: options.budgetFor,
    nameSetting: options.nameSetting ?? byOptionName,
  };
}

function resolveEndpoints(
  endpoints: RunOptions["endpoints"],
  run: Omit<ResolvedEndpoint, "label" | "keyOption" | "concurrency" | "apiKey"> & {
    concurrency: number | "auto" | undefined;
    /** The key of an endpoint that names none: the run's, or what the environment gives it. */
    apiKeyFor: (baseUrl: string) => string | undefined;
  },
): ResolvedEndpoint[] {
  const entries = endpoints ?? [{ baseUrl: run.baseUrl }];
  const baseUrls = entries.map((entry) => normaliseBaseUrl(entry.baseUrl));
  const labels = endpointLabels(baseUrls);
  return entries.map((entry, index) => ({
    baseUrl: baseUrls[index] ?? run.baseUrl,
    apiKey: entry.apiKey ?? run.apiKeyFor(baseUrls[index] ?? run.baseUrl),
    model: entry.model ?? run.model,
    concurrency:
      entry.concurrency ?? run.concurrency ?? defaultConcurrency(baseUrls[index] ?? run.baseUrl),
    rpm: entry.rpm ?? run.rpm,
    label: labels[index] ?? "",
    keyOption: entry.apiKey !== undefined && endpoints ? `endpoints[${index}].apiKey` : "apiKey",
  }));
}
