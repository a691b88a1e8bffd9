import path from "node:path";
import { UsageError } from "../errors.js";
import type { WebDatasetOutOptions } from "../sinks/webdataset-out.js";
import type { CaptionConfig } from "./caption-config.js";
import { validateLayer } from "./check.js";
import { EXAMPLE_CONFIG_DIR, locateConfigFile, readConfigFile } from "./config-file.js";
import { isHostedApi, normaliseBaseUrl } from "./defaults.js";
import { type EndpointOptions, endpointsOf } from "./endpoints.js";
import { namedWhereTheyLive } from "./naming.js";
import { checkDatasetOutputs } from "./outputs.js";
import { type PromptSource, resolvePrompt } from "./prompt-setting.js";
import type { SettingCommand } from "./spec.js";
import {
  ENV_VARIABLES,
  OUTPUT_KEYS,
  type OutputSettings,
  requiredBy,
  SETTING_SPECS,
  type SettingKey,
  type Settings,
  settingsReadBy,
  valueOrDefault,
} from "./table.js";

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
  /**
   * The command whose settings these are: those of many machines are read and checked only for
   * the commands that take them (and `caption config`, which shows them), so a run is never
   * stopped by a worker's Redis URL. Every other setting is checked for every command.
   */
  command?: "caption" | "config" | SettingCommand;
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
  const command = input.command ?? "caption";
  const keys = settingsReadBy(command);
  for (const [key, names] of Object.entries(ENV_VARIABLES) as [SettingKey, readonly string[]][]) {
    if (!keys.includes(key)) continue;
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
    const valid = validateLayer(layer, problems, keys);
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
    // Several prompts are a form of it too: `--prompts` outranks a config file's prompt, and
    // `--prompt` a config file's prompts.
    else if (valid.prompts !== undefined) promptFrom = null;
    if (valid.prompts === undefined && (valid.prompt ?? valid.promptFile) !== undefined) {
      delete merged.prompts;
    }
    Object.assign(merged, valid);
  }

  for (const key of command === "config" ? [] : requiredBy(command)) {
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
  if (merged.webdatasetMember !== undefined && merged.webdatasetOut === undefined) {
    const name = namedWhereTheyLive(settingFrom);
    problems.push(
      `${name("webdatasetMember")} names the caption's member in ${name("webdatasetOut")}'s shards: give that folder too`,
    );
  }

  if (problems.length > 0) throw new UsageError(problems);

  const model = valueOrDefault(merged, "model");
  const resolvePath = (
    key: "output" | "errors" | "jsonSchema" | "prompts" | "shardFolder" | "webdatasetOut",
  ): string | undefined => {
    for (let i = layers.length - 1; i >= 0; i -= 1) {
      const layer = layers[i];
      const value = layer?.values[key];
      if (layer && typeof value === "string") return path.resolve(layer.baseDir, value);
    }
    return undefined;
  };
  /** Where a file setting was named ("--json-schema", "caption.json: jsonSchema"), for messages. */
  const namedFrom = (key: "jsonSchema" | "prompts"): string =>
    [...layers]
      .reverse()
      .find((layer) => typeof layer.values[key] === "string")
      ?.describe(key) ?? SETTING_SPECS[key].flag;
  const baseUrl = normaliseBaseUrl(endpoints?.[0]?.baseUrl ?? valueOrDefault(merged, "baseUrl"));
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
    output: resolvePath("output"),
    format: merged.format,
    errors: resolvePath("errors"),
    shardFolder: resolvePath("shardFolder"),
    webdataset: webdatasetOf(resolvePath("webdatasetOut"), merged.webdatasetMember),
    promptGiven: promptFrom !== null,
    settingFrom,
    outputs,
    dataset,
    origins,
    values: merged,
    jsonSchema: resolvePath("jsonSchema"),
    jsonSchemaFrom: namedFrom("jsonSchema"),
    // Left out where a more specific layer gave a single prompt instead.
    prompts: merged.prompts === undefined ? undefined : resolvePath("prompts"),
    promptsFrom: namedFrom("prompts"),
  };
}

/**
 * `--webdataset-out` and its member. A member named, even `txt`, replaces a sample's own of that
 * name; the default does not, so a shard's alt text is never dropped unasked.
 */
function webdatasetOf(
  out: string | undefined,
  member: string | undefined,
): WebDatasetOutOptions | undefined {
  if (out === undefined) return undefined;
  return member === undefined ? { out } : { out, member };
}
