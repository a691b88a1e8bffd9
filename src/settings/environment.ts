import type { SidecarOptions } from "../sinks/sidecar-sink.js";
import type { PrepareOptions } from "../types.js";
import { closestName } from "../util/suggest.js";
import { checkSetting } from "./check.js";
import { isHostedApi } from "./defaults.js";
import type { RunOptions } from "./run-options.js";
import {
  ENV_VARIABLES,
  SETTING_KEYS,
  SETTING_SPECS,
  type SettingKey,
  type SettingTable,
} from "./table.js";
import { keyFor, TRIAL_KEY_NOTICE } from "./trial-key.js";

/** The options the table names at the top level of RunOptions ("prepare.maxPixels" is in prepare). */
type FromTable = {
  [K in SettingKey]: SettingTable[K] extends { library: infer L extends string }
    ? L extends `${infer Top}.${string}`
      ? Top
      : L
    : never;
}[SettingKey];

/**
 * The options of a program's own, which no setting gives: objects, functions, switches of one
 * call. Typed as a record of the rest of RunOptions' keys, so an option added there and neither
 * in the table nor here does not compile.
 */
const PROGRAM_ONLY: Record<Exclude<keyof RunOptions, FromTable>, true> = {
  inputs: true,
  cwd: true,
  overwrite: true,
  dryRun: true,
  recordOnly: true,
  recordRoot: true,
  endpoints: true,
  env: true,
  budgetFor: true,
  sharedSpend: true,
  fetch: true,
  nameSetting: true,
};

/**
 * Every option `captionImages` takes, so that a misspelt one from plain JavaScript
 * (`concurency: 4`) is an error rather than silently ignored.
 */
const RUN_OPTIONS: Record<string, true> = {
  ...PROGRAM_ONLY,
  ...Object.fromEntries(
    SETTING_KEYS.flatMap((key) => {
      const library = SETTING_SPECS[key].library;
      return library ? [[library.split(".")[0], true]] : [];
    }),
  ),
};

/** The parts of the options that are objects of their own, with the keys each may hold. */
const NESTED: Record<string, Record<string, true>> = {};
for (const key of SETTING_KEYS) {
  const [top, inner] = SETTING_SPECS[key].library?.split(".") ?? [];
  if (top !== undefined && inner !== undefined) NESTED[top] = { ...NESTED[top], [inner]: true };
}

/** The keys the table gives inside one of the options' objects. */
type InsideFromTable<Top extends string> = {
  [K in SettingKey]: SettingTable[K] extends { library: `${Top}.${infer Inner}` } ? Inner : never;
}[SettingKey];
type Holds<T extends true> = T;
/** An option added to `prepare` or `sidecar` with no setting in the table does not compile. */
export type NestedOptionsFollowTable = Holds<
  [Exclude<keyof PrepareOptions, InsideFromTable<"prepare">>] extends [never]
    ? [Exclude<keyof SidecarOptions, InsideFromTable<"sidecar">>] extends [never]
      ? true
      : false
    : false
>;

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
  // The table lists the provider's variable, then OpenAI's, which the hosted API is never sent.
  const [mine, openAi] = (ENV_VARIABLES.apiKey ?? []).map((name) => env[name] || undefined);
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
