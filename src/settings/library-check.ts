import type { SidecarOptions } from "../sinks/sidecar-sink.js";
import type { WebDatasetOutOptions } from "../sinks/webdataset-out.js";
import type { PrepareOptions, VideoOptions } from "../types.js";
import { checkSetting, checkValue } from "./check.js";
import { valueAt } from "./library-options.js";
import type { RunOptions } from "./run-options.js";
import {
  SETTING_KEYS,
  SETTING_SPECS,
  type SettingKey,
  type Settings,
  type SettingTable,
} from "./table.js";

/**
 * Paths a program gives in other shapes (a parsed schema), checked where they are used; every
 * other kind it gives as the table holds it.
 */
const GIVEN_OTHERWISE = new Set(["path"]);

/** What is wrong with the settings a program gave `captionImages`, each named as it wrote it. */
export function librarySettingProblems(options: object): string[] {
  const problems: string[] = [];
  for (const key of SETTING_KEYS) {
    const spec = SETTING_SPECS[key];
    if (!spec.library || GIVEN_OTHERWISE.has(spec.kind.type) || key === "apiKey") continue;
    const value = valueAt(options, spec.library);
    if (value === undefined) continue;
    const { kind } = spec;
    let problem: string | null;
    if (kind.type === "int" || kind.type === "number") {
      // A program gives numbers as numbers: "5" is a mistake there, unlike on a command line.
      const word = kind.type === "int" && typeof value === "string" && kind.or?.includes(value);
      const scale = spec.libraryScale ?? 1;
      problem =
        typeof value !== "number" && !word
          ? `expected a number, got ${JSON.stringify(value)}`
          : checkValue(value, { ...kind, min: kind.min * scale, max: kind.max * scale });
    } else if (kind.type === "switch") {
      // A program asks for the output by its value ("csv", ".caption"), never by true or false.
      problem =
        typeof value === "string" && value !== ""
          ? checkSetting(key, value)
          : `expected ${kind.values ? kind.values.map((each) => JSON.stringify(each)).join(" or ") : "a value"}, got ${JSON.stringify(value)}`;
    } else {
      problem = checkSetting(key, value);
    }
    if (problem) problems.push(`${spec.library}: ${problem}`);
  }
  return problems;
}

type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;

/** What `captionImages` calls a setting, where it is a top-level option. */
type LibraryOf<K extends SettingKey> = SettingTable[K] extends {
  library: infer L extends keyof RunOptions;
}
  ? L
  : never;

/** Settings a program gives at the top level of its options, as the table holds them. */
type TakenAsIs = {
  [K in SettingKey]: [LibraryOf<K>] extends [never]
    ? never
    : SettingTable[K]["kind"]["type"] extends "path" | "switch"
      ? never
      : K;
}[SettingKey];

/** Any of those whose option in RunOptions does not take exactly the table's values. */
type Mismatched = {
  [K in TakenAsIs]: Same<
    NonNullable<RunOptions[LibraryOf<K>]>,
    NonNullable<Settings[K]>
  > extends true
    ? never
    : K;
}[TakenAsIs];

type Holds<T extends true> = T;
/**
 * RunOptions is written by hand, for the documentation its fields carry; this fails to compile
 * when one of its options stops taking what the table says (a kind, a bound's word, a choice).
 */
export type LibraryTypesFollowTable = Holds<[Mismatched] extends [never] ? true : false>;

/** Settings whose `library` names no option of RunOptions (nor of `prepare` or `sidecar`). */
type NamesNoOption = {
  [K in SettingKey]: SettingTable[K] extends { library: infer L extends string }
    ? L extends `prepare.${infer Inner}`
      ? Inner extends keyof PrepareOptions
        ? never
        : K
      : L extends `video.${infer Inner}`
        ? Inner extends keyof VideoOptions
          ? never
          : K
        : L extends `sidecar.${infer Inner}`
          ? Inner extends keyof SidecarOptions
            ? never
            : K
          : L extends `webdataset.${infer Inner}`
            ? Inner extends keyof WebDatasetOutOptions
              ? never
              : K
            : L extends keyof RunOptions
              ? never
              : K
    : never;
}[SettingKey];

/** A table entry whose `library` is misspelt, or names an option RunOptions lacks, fails here. */
export type TableNamesLibraryOptions = Holds<[NamesNoOption] extends [never] ? true : false>;
