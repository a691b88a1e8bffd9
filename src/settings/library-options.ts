import type { PrepareOptions, VideoOptions } from "../types.js";
import { defaultMaxTokens } from "./defaults.js";
import type { RunOptions } from "./run-options.js";
import type { SettingSpec } from "./spec.js";
import {
  SETTING_KEYS,
  SETTING_SPECS,
  type SettingKey,
  type Settings,
  type SettingTable,
} from "./table.js";

/**
 * The settings a program gives `captionImages` as the table holds them: not the files a command
 * reads for it (OUT, a schema), nor the outputs' on-off switches, which it gives as objects.
 */
export const TAKEN_AS_IS: readonly SettingKey[] = SETTING_KEYS.filter((key) => {
  const { library, kind } = SETTING_SPECS[key];
  return library !== undefined && kind.type !== "path" && kind.type !== "switch";
});

/** The options of `captionImages` the settings given make, each at its path and in its unit. */
export function libraryOptionsOf(
  values: Settings,
  keys: readonly SettingKey[] = TAKEN_AS_IS,
): Partial<RunOptions> {
  const options: Record<string, unknown> = {};
  for (const key of keys) {
    const spec: SettingSpec = SETTING_SPECS[key];
    const value = values[key];
    if (value === undefined || spec.library === undefined) continue;
    setAt(options, spec.library, inLibraryUnit(value, spec));
  }
  return options as Partial<RunOptions>;
}

/** The top-level option a library path names: "prepare" for "prepare.maxPixels". */
type TopOf<L> = L extends `${infer Top}.${string}` ? Top : L;

/** The options of `captionImages` a queue fixes at its first enqueue (the table's `queueFixed`). */
type QueueFixedOption = {
  [K in SettingKey]: SettingTable[K] extends { queueFixed: true; library: infer L }
    ? TopOf<L> & keyof RunOptions
    : never;
}[SettingKey];

/**
 * What shapes the captions, as a queue keeps it: every option the table marks `queueFixed`, the
 * model always, whatever a worker's own settings say.
 */
export type FixedOptions = Pick<RunOptions, QueueFixedOption> & { model: string };

/** Those options' names, from the table. */
const QUEUE_FIXED_OPTIONS: readonly QueueFixedOption[] = [
  ...new Set(
    SETTING_KEYS.flatMap((key) => {
      const { queueFixed, library } = SETTING_SPECS[key] as SettingSpec;
      return queueFixed && library ? [library.split(".")[0] as QueueFixedOption] : [];
    }),
  ),
];

/** The options of these that a queue fixes, and only those. */
export function fixedOptionsOf(options: Partial<RunOptions>): Partial<FixedOptions> {
  return Object.fromEntries(QUEUE_FIXED_OPTIONS.map((option) => [option, options[option]]));
}

/** Top-level options whose setting has a default of its own, which `withDefaults` fills in. */
type DefaultedOption = {
  [K in SettingKey]: SettingTable[K] extends { default: unknown; library: infer L }
    ? SettingTable[K] extends { env: readonly string[] }
      ? never
      : L extends keyof RunOptions
        ? L
        : never
    : never;
}[SettingKey];

/** `prepare`'s options that have a default of their own. */
type DefaultedPrepare = {
  [K in SettingKey]: SettingTable[K] extends { default: unknown; library: `prepare.${infer P}` }
    ? P & keyof PrepareOptions
    : never;
}[SettingKey];

export type WithDefaults<T> = Omit<T, DefaultedOption | "prepare" | "video"> & {
  [O in DefaultedOption]-?: NonNullable<RunOptions[O]>;
} & {
  prepare: Partial<PrepareOptions> & Required<Pick<PrepareOptions, DefaultedPrepare>>;
  /** Every one of its settings has a default (the table's `video.*`). */
  video: VideoOptions;
  maxTokens: number;
};

/**
 * The options with every setting's default filled in where it was left out, from the table:
 * the one place a default is applied, for the CLI and a program alike. Settings that variables
 * give (the base URL, the key) are left to `fromEnvironment`, which the default comes after.
 */
export function withDefaults<T extends Partial<RunOptions>>(options: T): WithDefaults<T> {
  const filled: Record<string, unknown> = { ...options, prepare: { ...options.prepare } };
  for (const key of SETTING_KEYS) {
    const spec: SettingSpec = SETTING_SPECS[key];
    if (spec.default === undefined || spec.library === undefined || spec.env) continue;
    if (valueAt(filled, spec.library) === undefined) {
      setAt(filled, spec.library, inLibraryUnit(spec.default, spec));
    }
  }
  // The one default that depends on another setting: Thinking models get a larger budget.
  filled.maxTokens ??= defaultMaxTokens(String(filled.model));
  return filled as WithDefaults<T>;
}

function inLibraryUnit(value: unknown, spec: SettingSpec): unknown {
  return typeof value === "number" && spec.libraryScale !== undefined
    ? Math.round(value * spec.libraryScale)
    : value;
}

/** The value at a dotted path of the options ("prepare.maxPixels"). */
export function valueAt(options: object, path: string): unknown {
  let value: unknown = options;
  for (const part of path.split(".")) {
    if (typeof value !== "object" || value === null) return undefined;
    value = (value as Record<string, unknown>)[part];
  }
  return value;
}

function setAt(options: Record<string, unknown>, path: string, value: unknown): void {
  const parts = path.split(".");
  const last = parts.pop() as string;
  let inner = options;
  for (const part of parts) {
    const next = inner[part];
    inner[part] =
      typeof next === "object" && next !== null ? { ...(next as Record<string, unknown>) } : {};
    inner = inner[part] as Record<string, unknown>;
  }
  inner[last] = value;
}
