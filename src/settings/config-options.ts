import type { CaptionConfig } from "./caption-config.js";
import type { EndpointOptions } from "./endpoints.js";
import {
  type FixedOptions,
  fixedOptionsOf,
  libraryOptionsOf,
  TAKEN_AS_IS,
  withDefaults,
} from "./library-options.js";
import type { RunOptions } from "./run-options.js";
import { SETTING_SPECS, settingsOf } from "./table.js";
import { RUN_OWN_TABLE } from "./table-run-own.js";

/** The keys a command chose for its servers (`chooseKey`): the run's, or one per endpoint. */
export interface ChosenKeys {
  apiKey: string | undefined;
  endpoints: EndpointOptions[] | undefined;
}

/** The settings a queue fixes that a program gives as they are (the prompt and schema aside). */
const QUEUE_FIXED = TAKEN_AS_IS.filter((key) => SETTING_SPECS[key].queueFixed && key !== "prompt");

/**
 * What shapes the captions, as a config gives it, every default applied: the same for a run and
 * for a queue, which fixes it at enqueue (the schema is read by the caller, from the file the
 * config names).
 */
export function captionOptionsOf(config: CaptionConfig): FixedOptions {
  const given = withDefaults(libraryOptionsOf(config.values, QUEUE_FIXED));
  // A queue fixed before --quality existed holds none; left out, it is the default either way.
  const { quality, ...prepare } = given.prepare;
  return {
    ...fixedOptionsOf(given),
    model: given.model,
    prompt: config.promptGiven ? config.prompt : undefined,
    maxTokens: given.maxTokens,
    prepare: config.values.quality === undefined ? prepare : { ...prepare, quality },
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
 * What a run takes of its own, besides the captions and the sending: its on-off switches
 * (`--strict`…) and its budget (`--budget-tokens`…). A worker takes none of them.
 */
const RUN_OWN = TAKEN_AS_IS.filter(
  (key) =>
    !QUEUE_FIXED.includes(key) &&
    !DELIVERY.includes(key) &&
    (SETTING_SPECS[key].kind.type === "boolean" || key in RUN_OWN_TABLE),
);

/** Those settings, as a config gives them. */
export function runOwnOf(config: CaptionConfig): Partial<RunOptions> {
  return libraryOptionsOf(config.values, RUN_OWN);
}

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
