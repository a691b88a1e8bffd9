import type { SettingCommand, SettingSpec } from "./spec.js";
import { OUTPUT_TABLE } from "./table-outputs.js";
import { RUN_TABLE } from "./table-run.js";
import { RUN_OWN_TABLE } from "./table-run-own.js";
import { SCALE_TABLE } from "./table-scale.js";
import { VIDEO_TABLE } from "./table-video.js";

/** The value a setting of this kind holds once checked. */
type ValueOf<K> = K extends { type: "int"; or: readonly (infer W)[] }
  ? number | W
  : K extends { type: "int" | "number" }
    ? number
    : K extends { type: "choice"; values: readonly (infer V)[] }
      ? V
      : K extends { type: "boolean" }
        ? boolean
        : K extends { type: "switch" }
          ? string | boolean
          : string;

const TABLE = { ...RUN_TABLE, ...VIDEO_TABLE, ...RUN_OWN_TABLE, ...OUTPUT_TABLE, ...SCALE_TABLE };

/** The table as declared, every literal kept: for types that follow it. */
export type SettingTable = typeof TABLE;

export type SettingKey = keyof typeof TABLE;

/** The settings that may come from a config file, the environment or flags, as the table types them. */
export type Settings = { [K in SettingKey]?: ValueOf<(typeof TABLE)[K]["kind"]> };

/**
 * The one table of settings: it drives every command's flags and their help, the config file's
 * keys, the environment, validation, the option reference (docs/options.md) and the defaults,
 * for the CLI and the library.
 */
export const SETTING_SPECS: Readonly<Record<SettingKey, SettingSpec>> = TABLE;

export const SETTING_KEYS = Object.keys(SETTING_SPECS) as SettingKey[];

/** The outputs and switches of a run: what it writes besides OUT and how it reads captions. */
export const OUTPUT_KEYS = Object.keys(OUTPUT_TABLE) as (keyof typeof OUTPUT_TABLE)[];
export type OutputSettings = Pick<Settings, keyof typeof OUTPUT_TABLE>;

/** The settings that have a default of their own, and its type. */
type Defaulted = {
  [K in SettingKey]: (typeof TABLE)[K] extends { default: unknown } ? K : never;
}[SettingKey];

/** A setting's value, or its default where it was left out. */
export function valueOrDefault<K extends Defaulted>(
  values: Settings,
  key: K,
): NonNullable<Settings[K]> {
  return (values[key] ?? TABLE[key].default) as NonNullable<Settings[K]>;
}

/** The environment variables read for each setting, first match wins. */
export const ENV_VARIABLES = Object.fromEntries(
  SETTING_KEYS.flatMap((key) => {
    const names = SETTING_SPECS[key].env;
    return names ? [[key, names]] : [];
  }),
) as Partial<Record<SettingKey, readonly string[]>>;

/** The settings a command takes, in the table's order. */
export function settingsOf(command: "caption" | SettingCommand): SettingKey[] {
  return SETTING_KEYS.filter((key) => {
    const spec = SETTING_SPECS[key];
    if (command === "caption") return spec.scope !== "scale";
    if (command === "check" || command === "models") return spec.scope === "endpoint";
    return spec.commands?.includes(command) === true;
  });
}

/** The settings a command cannot go without. */
export function requiredBy(command: "caption" | SettingCommand): SettingKey[] {
  return SETTING_KEYS.filter((key) => {
    const needs: readonly string[] | undefined = SETTING_SPECS[key].requiredBy;
    return needs?.includes(command) === true;
  });
}

/**
 * The settings a command reads from every layer: all but those of many machines it does not take,
 * so a worker's Redis URL in the shell never stops a run. `caption config` reads them all.
 */
export function settingsReadBy(command: "caption" | "config" | SettingCommand): SettingKey[] {
  if (command === "config") return SETTING_KEYS;
  const taken = new Set(settingsOf(command));
  return SETTING_KEYS.filter((key) => SETTING_SPECS[key].scope !== "scale" || taken.has(key));
}
