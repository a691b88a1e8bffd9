import type { PrepareOptions } from "../types.js";
import type { CaptionConfig } from "./caption-config.js";
import { defaultMaxTokens } from "./defaults.js";
import type { EndpointOptions } from "./endpoints.js";
import { libraryOptionsOf, TAKEN_AS_IS, withDefaults } from "./library-options.js";
import type { RunOptions } from "./run-options.js";
import { SETTING_SPECS, settingsOf } from "./table.js";

/** The keys a command chose for its servers (`chooseKey`): the run's, or one per endpoint. */
export interface ChosenKeys {
  apiKey: string | undefined;
  endpoints: EndpointOptions[] | undefined;
}

/** What shapes the captions: the options a queue fixes, with every default applied. */
export interface CaptionOptions {
  model: string;
  prompt: string | undefined;
  tags: boolean;
  rejectFlagged: boolean;
  maxTokens: number;
  temperature: number | undefined;
  prepare: Partial<PrepareOptions>;
  prefix: string | undefined;
  suffix: string | undefined;
}

/** The settings a queue fixes that a program gives as they are (the prompt and schema aside). */
const QUEUE_FIXED = TAKEN_AS_IS.filter((key) => SETTING_SPECS[key].queueFixed && key !== "prompt");

/**
 * What shapes the captions, as a config gives it: the same for a run and for a queue, which fixes
 * it at enqueue (the schema is read by the caller, from the file the config names).
 */
export function captionOptionsOf(config: CaptionConfig): CaptionOptions {
  const fixed = withDefaults(libraryOptionsOf(config.values, QUEUE_FIXED));
  // A queue fixed before --quality existed holds none; left out, it is the default either way.
  const { quality, ...prepare } = fixed.prepare;
  return {
    model: fixed.model,
    prompt: config.promptGiven ? config.prompt : undefined,
    tags: fixed.tags === true,
    rejectFlagged: fixed.rejectFlagged === true,
    maxTokens: fixed.maxTokens ?? defaultMaxTokens(fixed.model),
    temperature: fixed.temperature,
    prepare: config.values.quality === undefined ? prepare : { ...prepare, quality },
    prefix: fixed.prefix,
    suffix: fixed.suffix,
  };
}

/**
 * How a worker sends, of its own: what it takes besides the server and key, which
 * `endpointOptionsOf` gives from the keys chosen.
 */
const DELIVERY = TAKEN_AS_IS.filter(
  (key) => settingsOf("worker").includes(key) && key !== "baseUrl" && key !== "apiKey",
);

/**
 * Where to send and how hard, as a config gives it: the same for a run and for a worker. Several
 * endpoints carry their keys each; the first's must not become the others'.
 */
export function endpointOptionsOf(config: CaptionConfig, keys: ChosenKeys): Partial<RunOptions> {
  return {
    baseUrl: config.baseUrl,
    apiKey: keys.endpoints ? undefined : keys.apiKey,
    ...(keys.endpoints ? { endpoints: keys.endpoints } : {}),
    ...libraryOptionsOf(config.values, DELIVERY),
  };
}
