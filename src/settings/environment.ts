import type { SidecarOptions } from "../sinks/sidecar-sink.js";
import type { PrepareOptions } from "../types.js";
import { closestName } from "../util/suggest.js";
import { checkSetting } from "./check.js";
import { isHostedApi } from "./defaults.js";
import type { RunOptions } from "./run-options.js";
import { ENV_VARIABLES } from "./table.js";
import { keyFor, TRIAL_KEY_NOTICE } from "./trial-key.js";

/**
 * Every option `captionImages` takes, so that a misspelt one from plain JavaScript
 * (`concurency: 4`) is an error rather than silently ignored. Typed as a record of RunOptions'
 * keys: an option added there and not here (or the reverse) does not compile.
 */
const RUN_OPTIONS: Record<keyof RunOptions, true> = {
  inputs: true,
  output: true,
  cwd: true,
  format: true,
  errorsPath: true,
  overwrite: true,
  dryRun: true,
  strict: true,
  followSymlinks: true,
  recordOnly: true,
  recordRoot: true,
  sidecar: true,
  hfMetadata: true,
  xmp: true,
  prefix: true,
  suffix: true,
  csvFormulaGuard: true,
  baseUrl: true,
  endpoints: true,
  apiKey: true,
  env: true,
  model: true,
  prompt: true,
  jsonSchema: true,
  tags: true,
  rejectFlagged: true,
  maxTokens: true,
  temperature: true,
  concurrency: true,
  maxConcurrency: true,
  rpm: true,
  retries: true,
  timeoutMs: true,
  maxReplyBytes: true,
  prepare: true,
  budgetFor: true,
  fetch: true,
  nameSetting: true,
};

/** The parts of the options that are objects of their own, with the keys each may hold. */
const NESTED: Record<string, Record<string, true>> = {
  prepare: {
    maxPixels: true,
    maxSide: true,
    imageFormat: true,
    quality: true,
  } satisfies Record<keyof PrepareOptions, true>,
  sidecar: { ext: true, policy: true, join: true } satisfies Record<keyof SidecarOptions, true>,
};

/**
 * "concurency: not an option of captionImages (did you mean concurrency?)", one per unknown key,
 * inside `prepare` and `sidecar` too ("prepare.maxPixel").
 */
export function unknownOptions(options: object): string[] {
  const problems = unknownKeys(options, RUN_OPTIONS, "");
  for (const [name, keys] of Object.entries(NESTED)) {
    const inner = (options as Record<string, unknown>)[name];
    if (typeof inner === "object" && inner !== null) {
      problems.push(...unknownKeys(inner, keys, `${name}.`));
    }
  }
  return problems;
}

function unknownKeys(options: object, known: Record<string, true>, prefix: string): string[] {
  const names = Object.keys(known);
  return Object.keys(options)
    .filter((key) => !(key in known))
    .map((key) => {
      const near = closestName(key, names);
      return `${prefix}${key}: not an option of captionImages${near ? ` (did you mean ${prefix}${near}?)` : ""}`;
    });
}

/** What a run takes from the environment where its options leave a value out. */
export interface FromEnvironment {
  baseUrl: string | undefined;
  /** The key for the run's endpoints that name none; `keyFor` gives the hosted API its own. */
  keyFor: (baseUrl: string) => { apiKey: string | undefined; trial: boolean };
  /** Said once the run starts: the trial key is in use. */
  notices: string[];
  problems: string[];
}

/**
 * The variables the command line reads, read the same way for a program: the base URL from
 * `MINICPM_BASE_URL`, else `OPENAI_BASE_URL`; the key from `MINICPM_API_KEY`, else
 * `OPENAI_API_KEY`, which is only ever sent to a base URL of the user's own, never to the hosted
 * MiniCPM API; that API gets the provider's shared trial key when no key is set, as the CLI's
 * does. An option given in code wins over any variable.
 */
export function fromEnvironment(
  options: Pick<RunOptions, "baseUrl" | "apiKey" | "env">,
): FromEnvironment {
  const env = options.env ?? process.env;
  const problems: string[] = [];
  const first = (names: readonly string[]) => {
    const name = names.find((candidate) => env[candidate]);
    return name === undefined ? undefined : { name, value: env[name] ?? "" };
  };
  const base = options.baseUrl === undefined ? first(ENV_VARIABLES.baseUrl ?? []) : undefined;
  if (base) {
    const problem = checkSetting("baseUrl", base.value);
    if (problem) problems.push(`${base.name}: ${problem}`);
  }
  const mine = env.MINICPM_API_KEY || undefined;
  const openAi = env.OPENAI_API_KEY || undefined;
  let trial = false;
  const keyForUrl = (baseUrl: string) => {
    if (options.apiKey !== undefined) return { apiKey: options.apiKey, trial: false };
    const chosen = keyFor(baseUrl, mine ?? (isHostedApi(baseUrl) ? undefined : openAi));
    trial ||= chosen.trial;
    return chosen;
  };
  return {
    baseUrl: base && problems.length === 0 ? base.value : undefined,
    keyFor: keyForUrl,
    get notices() {
      return trial ? [TRIAL_KEY_NOTICE] : [];
    },
    problems,
  };
}
