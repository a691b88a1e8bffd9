import type { CaptionConfig } from "../../settings/caption-config.js";
import { defaultConcurrency, defaultMaxTokens } from "../../settings/defaults.js";
import { shownDefaultOf } from "../../settings/spec.js";
import { SETTING_KEYS, SETTING_SPECS, type SettingKey } from "../../settings/table.js";
import { keyFor } from "../../settings/trial-key.js";
import { redactSecret, urlCredentials } from "../../util/redact.js";
import type { CommandIo } from "../command-io.js";
import { loadConfig } from "../context.js";
import { exitCodeOf } from "../exit-codes.js";

/** `caption config`: the settings a command line resolves to, each with where it came from. */
export async function run(
  args: Record<string, unknown>,
  { context, reporter }: CommandIo,
): Promise<number> {
  // As a run would check them: a policy without a sidecar is refused here too.
  const config = loadConfig(args, context, reporter, "config");
  const key = keyFor(config.baseUrl, config.apiKey);
  context.stdout.write(showConfig(config, { set: key.apiKey !== undefined, trial: key.trial }));
  return exitCodeOf({ done: true });
}

/** A prompt or a long path is shown this far, then "…": the line is for reading, not copying. */
const SHOWN_CHARACTERS = 60;

/**
 * `caption config`: every setting of a command line, its value and where it came from (a flag, a
 * variable, a config file and its key, or the default), as `git config --show-origin` does. The
 * first thing to look at when a cron job does something unexpected. A key is never shown, only
 * whether one is set and where.
 */
export function showConfig(
  config: CaptionConfig,
  keySet: { set: boolean; trial: boolean },
): string {
  // A run's settings, then those of many machines that a file or a variable gives (a worker's Redis).
  const keys = SETTING_KEYS.filter(
    (key) => SETTING_SPECS[key].scope !== "scale" || config.values[key] !== undefined,
  );
  const rows = keys.map((key) => {
    const spec = SETTING_SPECS[key];
    const given = config.values[key];
    let from = config.origins[key] ?? "default";
    if (key === "baseUrl" && config.endpoints) {
      from = config.settingFrom.baseUrl ?? from;
      const urls = config.endpoints.map((endpoint) => endpoint.baseUrl).join(", ");
      return [spec.flag, shown(`${config.endpoints.length} endpoints: ${urls}`), from] as const;
    }
    if (key === "prompt" && given === undefined && config.values.promptFile !== undefined) {
      return [spec.flag, "(from --prompt-file)", config.origins.promptFile ?? from] as const;
    }
    if (key === "prompt" && !config.promptGiven && config.outputs.tags === true) {
      return [spec.flag, "(the tags prompt)", config.origins.tags ?? from] as const;
    }
    if (key === "apiKey") {
      const value = keySet.trial
        ? "(the hosted API's shared trial key)"
        : keySet.set
          ? "(set)"
          : "(none)";
      // The trial key is the default: a variable it was chosen over is not where it came from.
      return [spec.flag, value, keySet.trial ? "default" : from] as const;
    }
    if (given !== undefined) {
      // A password in a URL (Redis's, a proxy's) is as secret as the key.
      const value =
        typeof given === "string" && spec.kind.type === "url"
          ? redactSecret(given, urlCredentials(given))
          : given;
      return [spec.flag, shown(value), from] as const;
    }
    return [spec.flag, defaultOf(key, config), from] as const;
  });
  const widths = [0, 1].map((column) =>
    Math.max(...rows.map((row) => row[column]?.length ?? 0), column === 0 ? 7 : 5),
  );
  const line = (cells: readonly string[]) =>
    cells
      .map((cell, column) => (column < 2 ? cell.padEnd(widths[column] ?? 0) : cell))
      .join("  ")
      .trimEnd();
  return `${[line(["setting", "value", "from"]), ...rows.map(line)].join("\n")}\n`;
}

/** What a setting left at its default comes to for this command line, as far as it is known. */
function defaultOf(key: SettingKey, config: CaptionConfig): string {
  const spec = SETTING_SPECS[key];
  if (key === "concurrency") return String(defaultConcurrency(config.baseUrl));
  if (key === "maxTokens") return String(defaultMaxTokens(config.model));
  if (spec.kind.type === "boolean") return "false";
  if (spec.kind.type === "switch") return "off";
  return shownDefaultOf(spec) ?? "(none)";
}

function shown(value: unknown): string {
  const text = typeof value === "string" ? JSON.stringify(value) : String(value);
  const flat = text.replace(/\s+/g, " ");
  return flat.length > SHOWN_CHARACTERS ? `${flat.slice(0, SHOWN_CHARACTERS - 1)}…` : flat;
}
