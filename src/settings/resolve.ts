import path from "node:path";
import { UsageError } from "../errors.js";
import { DEFAULT_MAX_REPLY_BYTES } from "../trust/reply-limit.js";
import type { OutputFormat, PrepareOptions } from "../types.js";
import { validateLayer } from "./check.js";
import { EXAMPLE_CONFIG_DIR, locateConfigFile, readConfigFile } from "./config-file.js";
import {
  DEFAULT_BASE_URL,
  DEFAULT_MODEL,
  defaultMaxTokens,
  isHostedApi,
  normaliseBaseUrl,
  SETTING_DEFAULTS,
} from "./defaults.js";
import { type EndpointOptions, endpointsOf } from "./endpoints.js";
import { namedWhereTheyLive } from "./naming.js";
import { checkDatasetOutputs, type DatasetOutputs } from "./outputs.js";
import { type PromptSource, resolvePrompt } from "./prompt-setting.js";
import {
  ENV_VARIABLES,
  OUTPUT_KEYS,
  type OutputSettings,
  SETTING_SPECS,
  type SettingKey,
  type Settings,
} from "./table.js";

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
  /** Many machines: the folder of shards enqueue writes, absolute. */
  shardFolder: string | undefined;
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
  settingFrom: Partial<Record<SettingKey, string>>;
  /**
   * The outputs and switches as the layers gave them, checked one by one; how they go together
   * (a policy needs a sidecar) is the caller's to check, naming each where it lives.
   */
  outputs: OutputSettings;
  /** The outputs beside the images, checked together with the other settings. */
  dataset: DatasetOutputs;
  /** Where each setting's value came from, for `caption config`: a flag, a variable, a file, or none. */
  origins: Partial<Record<SettingKey, string>>;
  /** Every setting some layer gave, checked: what `caption config` shows beside its origin. */
  values: Settings;
}

/** Where a layer of settings came from, for messages and for resolving relative paths. */
export interface SettingsLayer {
  /** Shown before each problem: "--concurrency", "caption.json: concurrency", "MINICPM_BASE_URL". */
  describe: (key: SettingKey) => string;
  /**
   * Where a message that asks for a change sends the user ("baseUrl in caption.json"); a flag's
   * layer has none, since the flag is how every message names a setting anyway.
   */
  locate?: (key: SettingKey | "endpoints") => string;
  /** Relative paths in this layer are relative to this folder. */
  baseDir: string;
  values: Record<string, unknown>;
  /** The command line's layer. */
  typed?: boolean;
}

export interface ResolveInput {
  flags: Record<string, unknown>;
  env: NodeJS.ProcessEnv;
  cwd: string;
  /** `--config FILE`, or the name of an example config in the package's config/ (`vllm`). */
  configFile?: string | undefined;
  /** Where `--config NAME` looks; the package's own config/ unless a test says otherwise. */
  exampleConfigDir?: string | undefined;
  /** Settings the command cannot go without: one no layer gives is a problem with the rest. */
  required?: readonly SettingKey[];
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
  const envSource: Partial<Record<SettingKey, string>> = {};
  for (const [key, names] of Object.entries(ENV_VARIABLES) as [SettingKey, readonly string[]][]) {
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
    typed: true,
  });

  const merged: Settings = {};
  let promptFrom: PromptSource | null = null;
  const settingFrom: Partial<Record<SettingKey, string>> = {};
  const origins: Partial<Record<SettingKey, string>> = {};
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
    for (const key of Object.keys(valid) as SettingKey[]) {
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

  for (const key of input.required ?? []) {
    // One given but wrong is already a problem; only one given nowhere is missing.
    if (layers.some((layer) => layer.values[key] !== undefined)) continue;
    const spec = SETTING_SPECS[key];
    problems.push(`${spec.flag}: required, ${spec.requiredFor ?? "this command needs it"}`);
  }
  const prompt = resolvePrompt(promptFrom, problems);
  const outputs: OutputSettings = Object.fromEntries(
    OUTPUT_KEYS.filter((key) => merged[key] !== undefined).map((key) => [key, merged[key]]),
  );
  // How settings go together (a policy needs a sidecar) is checked with the rest, so that every
  // problem is reported at once, each named where its value lives.
  const dataset = checkDatasetOutputs(outputs, namedWhereTheyLive(settingFrom), problems);

  if (problems.length > 0) throw new UsageError(problems);

  const model = merged.model ?? DEFAULT_MODEL;
  const resolvePath = (
    key: "output" | "errors" | "jsonSchema" | "shardFolder",
  ): string | undefined => {
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
    timeoutMs: Math.round((merged.timeout ?? SETTING_DEFAULTS.timeout) * 1000),
    maxReplyBytes: merged.maxReplyBytes ?? DEFAULT_MAX_REPLY_BYTES,
    prepare: {
      maxPixels: merged.maxPixels ?? SETTING_DEFAULTS.maxPixels,
      maxSide: merged.maxSide,
      imageFormat: merged.imageFormat ?? SETTING_DEFAULTS.imageFormat,
    },
    output: resolvePath("output"),
    format: merged.format,
    errors: resolvePath("errors"),
    shardFolder: resolvePath("shardFolder"),
    promptGiven: promptFrom !== null,
    settingFrom,
    outputs,
    dataset,
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
