import type { CaptionConfig } from "../settings/caption-config.js";
import { flagOf, namedWhereTheyLive } from "../settings/naming.js";

/**
 * flagOf for a run of this config: a setting the config file or a variable gave is named where it
 * lives, since a flag would only mend this run. Every endpoint gets a key of its own from
 * `chooseKey`, but only the config file's entries that name one have a key the user set there;
 * the rest have the run's.
 */
export function flagsFor(config: CaptionConfig): (option: string) => string {
  const named = namedWhereTheyLive(config.settingFrom);
  return (option) => {
    const entry = /^endpoints\[(\d+)\]\.apiKey$/.exec(option);
    if (!entry) return named(option);
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
