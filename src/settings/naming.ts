import { SETTING_KEYS, SETTING_SPECS, type SettingKey } from "./table.js";

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
  if (option === "xmpOn") return "xmp";
  const byLibrary = SETTING_KEYS.find((key) => SETTING_SPECS[key].library === option);
  if (byLibrary) return byLibrary;
  return SETTING_KEYS.find((key) => key === option);
}

/** What the library calls a setting ("sidecar.join" for sidecarJoin), for its own messages. */
export function libraryNameOf(option: string): string {
  const setting = SETTING_KEYS.find((key) => key === option);
  return (setting && SETTING_SPECS[setting].library) || option;
}

/** The flag that sets a library option, for messages that tell the user what to change. */
export function flagOf(option: string): string {
  const setting = settingOf(option);
  return OPTION_FLAGS[option] ?? (setting ? SETTING_SPECS[setting].flag : option);
}

/**
 * flagOf for settings some came from a config file or a variable: those are named where they
 * live ("maxTokens in run.json"), since a flag would only mend this run.
 */
export function namedWhereTheyLive(
  settingFrom: Partial<Record<SettingKey, string>>,
): (option: string) => string {
  return (option) => {
    const setting = settingOf(option);
    return (setting && settingFrom[setting]) ?? flagOf(option);
  };
}
