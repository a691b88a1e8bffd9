import type { CaptionConfig } from "../settings/resolve.js";
import { SETTING_KEYS, SETTING_SPECS, type SettingKey } from "../settings/table.js";

/** Library options that are not settings, by the flag that sets them. */
const OPTION_FLAGS: Record<string, string> = {
  output: "-o/--output",
  overwrite: "--overwrite",
  // The library's `xmp` is the naming, which --xmp-naming sets; the switch itself is --xmp.
  xmp: "--xmp-naming",
  xmpOn: "--xmp",
  apiKey: "MINICPM_API_KEY or --api-key",
  inputs: "inputs",
};

/** The setting a name means: what the library calls it (timeoutMs), or its own key. */
function settingOf(option: string): SettingKey | undefined {
  const byLibrary = SETTING_KEYS.find((key) => SETTING_SPECS[key].library === option);
  if (byLibrary) return byLibrary;
  return SETTING_KEYS.find((key) => key === option);
}

/** The flag that sets a library option, for messages that tell the user what to change. */
export const flagOf = (option: string): string => {
  const setting = settingOf(option);
  return OPTION_FLAGS[option] ?? (setting ? SETTING_SPECS[setting].flag : option);
};

/**
 * flagOf for a run of this config: a setting the config file or a variable gave is named where it
 * lives, since a flag would only mend this run. Every endpoint gets a key of its own from
 * `chooseKey`, but only the config file's entries that name one have a key the user set there;
 * the rest have the run's.
 */
export function flagsFor(config: CaptionConfig): (option: string) => string {
  return (option) => {
    const entry = /^endpoints\[(\d+)\]\.apiKey$/.exec(option);
    if (!entry) {
      const setting = settingOf(option);
      return (setting && config.settingFrom[setting]) ?? flagOf(option);
    }
    return config.endpoints?.[Number(entry[1])]?.apiKey !== undefined
      ? `${option} in the config file (or the variable it names)`
      : flagOf("apiKey");
  };
}

/**
 * The library names its options in what it reports ("concurrency: …"); on the command line the
 * same problem names the flag the user typed.
 */
export function asFlags(problem: string): string {
  return problem.replace(/^([a-zA-Z.]+):/, (whole, key: string) => {
    const flag = flagOf(key);
    return flag === key ? whole : `${flag}:`;
  });
}
