import type { PrepareOptions } from "../types.js";
import type { CaptionConfig } from "./caption-config.js";
import type { EndpointOptions } from "./endpoints.js";
import type { RunOptions } from "./run-options.js";

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
  prepare: PrepareOptions;
  prefix: string | undefined;
  suffix: string | undefined;
}

/**
 * What shapes the captions, as a config gives it: the same for a run and for a queue, which fixes
 * it at enqueue (the schema is read by the caller, from the file the config names).
 */
export function captionOptionsOf(config: CaptionConfig): CaptionOptions {
  return {
    model: config.model,
    prompt: config.promptGiven ? config.prompt : undefined,
    tags: config.outputs.tags === true,
    rejectFlagged: config.outputs.rejectFlagged === true,
    maxTokens: config.maxTokens,
    temperature: config.temperature,
    prepare: config.prepare,
    prefix: config.outputs.prefix,
    suffix: config.outputs.suffix,
  };
}

/**
 * Where to send and how hard, as a config gives it: the same for a run and for a worker. Several
 * endpoints carry their keys each; the first's must not become the others'.
 */
export function endpointOptionsOf(
  config: CaptionConfig,
  keys: ChosenKeys,
): Pick<
  RunOptions,
  | "baseUrl"
  | "apiKey"
  | "endpoints"
  | "concurrency"
  | "maxConcurrency"
  | "rpm"
  | "retries"
  | "timeoutMs"
  | "maxReplyBytes"
> {
  return {
    baseUrl: config.baseUrl,
    apiKey: keys.endpoints ? undefined : keys.apiKey,
    ...(keys.endpoints ? { endpoints: keys.endpoints } : {}),
    concurrency: config.concurrency,
    maxConcurrency: config.maxConcurrency,
    rpm: config.rpm,
    retries: config.retries,
    timeoutMs: config.timeoutMs,
    maxReplyBytes: config.maxReplyBytes,
  };
}
