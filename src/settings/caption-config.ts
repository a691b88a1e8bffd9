import type { WebDatasetOutOptions } from "../sinks/webdataset-out.js";
import type { OutputFormat } from "../types.js";
import type { EndpointOptions } from "./endpoints.js";
import type { DatasetOutputs } from "./outputs.js";
import type { OutputSettings, SettingKey, Settings } from "./table.js";

/**
 * Everything a command's settings come to, validated. The settings that map onto the library's
 * options stay in `values` (`libraryOptionsOf`), where the library applies their defaults.
 */
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
  output: string | undefined;
  format: OutputFormat | undefined;
  errors: string | undefined;
  /** Many machines: the folder of shards enqueue writes, absolute. */
  shardFolder: string | undefined;
  /** `--webdataset-out`: where the shards are written again, absolute, and their caption member. */
  webdataset: WebDatasetOutOptions | undefined;
  /** Whether a prompt was given at all: `--tags` brings its own otherwise. */
  promptGiven: boolean;
  /** The schema file, absolute. */
  jsonSchema: string | undefined;
  /** Where the schema file was named ("--json-schema", "caption.json: jsonSchema"), for messages. */
  jsonSchemaFrom: string;
  /** The prompts file (`--prompts`), resolved like `jsonSchema`, and where it was named. */
  prompts: string | undefined;
  promptsFrom: string;
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
