import { withoutPassword } from "../util/redact.js";
import { DEFAULT_BASE_URL } from "./defaults.js";
import type { SettingKind } from "./spec.js";
import { SETTING_KEYS, SETTING_SPECS, type SettingKey, type Settings } from "./table.js";

/** Values as one layer gave them, and how a problem in it names the setting. */
export interface LayerValues {
  describe: (key: SettingKey) => string;
  values: Record<string, unknown>;
  /** A command line: a word right after a switch may be an input taken as its value. */
  typed?: boolean;
}

/** The settings a layer gives that are valid; each that is not is a problem naming where it lives. */
export function validateLayer(
  layer: LayerValues,
  problems: string[],
  keys: readonly SettingKey[] = SETTING_KEYS,
): Settings {
  const valid: Record<string, unknown> = {};
  for (const key of keys) {
    const raw = layer.values[key];
    if (raw === undefined) continue;
    const kind = SETTING_SPECS[key].kind;
    const problem = checkValue(raw, kind);
    if (problem) {
      // Never echo a key back, even a malformed one.
      const shown = key === "apiKey" ? "expected a non-empty string" : problem;
      const flag = SETTING_SPECS[key].flag;
      const hint =
        layer.typed && kind.type === "switch"
          ? `; put ${flag} after the inputs, or give it a value of its own`
          : "";
      problems.push(`${layer.describe(key)}: ${shown}${hint}`);
    } else {
      valid[key] = typeof raw === "string" ? coerce(raw, kind) : raw;
    }
  }
  return valid as Settings;
}

function coerce(raw: string, kind: SettingKind): unknown {
  if (kind.type === "int" && kind.or?.includes(raw)) return raw;
  return kind.type === "int" || kind.type === "number" ? Number(raw) : raw;
}

/** What is wrong with `value` for a setting, or null when it is valid (numbers as numbers). */
export function checkSetting(key: SettingKey, value: unknown): string | null {
  return checkValue(value, SETTING_SPECS[key].kind);
}

export function checkValue(raw: unknown, kind: SettingKind): string | null {
  switch (kind.type) {
    case "string":
    case "path":
      return typeof raw === "string" && raw !== ""
        ? null
        : `expected a non-empty string, got ${show(raw)}`;
    case "url": {
      if (typeof raw !== "string") return `expected a URL, got ${show(raw)}`;
      const schemes = kind.schemes ?? ["http:", "https:"];
      try {
        const url = new URL(raw);
        // "redis:/u:p@h", one slash short, parses with no host: a typo, and its password unmasked.
        if (schemes.includes(url.protocol) && url.host !== "") return null;
      } catch {
        // Reported below.
      }
      const expected = kind.schemes
        ? `a ${schemes.map((scheme) => `${scheme}//`).join(" or ")} URL`
        : `an http:// or https:// URL such as ${DEFAULT_BASE_URL}`;
      return `expected ${expected}, got ${show(withoutPassword(raw))}`;
    }
    case "name":
      return typeof raw === "string" && /^[A-Za-z0-9._-]{1,100}$/.test(raw)
        ? null
        : `expected a name of letters, digits, ".", "_" or "-", got ${show(raw)}`;
    case "int":
    case "number": {
      const words = kind.type === "int" ? (kind.or ?? []) : [];
      if (typeof raw === "string" && words.includes(raw)) return null;
      const value = typeof raw === "string" && raw.trim() !== "" ? Number(raw) : raw;
      const whole = kind.type === "int";
      const or = words.map((word) => ` or ${word}`).join("");
      const expected = `expected ${whole ? "a whole number" : "a number"} ${describeRange(kind)}${or}, got ${show(raw)}`;
      if (typeof value !== "number" || !Number.isFinite(value)) return expected;
      if (whole && !Number.isInteger(value)) return expected;
      const tooLow =
        kind.type === "number" && kind.exclusiveMin ? value <= kind.min : value < kind.min;
      return tooLow || value > kind.max ? expected : null;
    }
    case "choice":
      return typeof raw === "string" && kind.values.includes(raw)
        ? null
        : `expected one of ${kind.values.join(", ")}, got ${show(raw)}`;
    case "text":
      return typeof raw === "string"
        ? (kind.rule?.(raw) ?? null)
        : `expected text, got ${show(raw)}`;
    case "boolean":
      return typeof raw === "boolean" ? null : `expected true or false, got ${show(raw)}`;
    case "switch": {
      if (typeof raw === "boolean" || raw === "") return null;
      if (typeof raw === "string" && (kind.values === undefined || kind.values.includes(raw))) {
        return kind.rule?.(raw) ?? null;
      }
      // Named as the command line writes it; a config file may also say true or false.
      return kind.values
        ? `expected ${kind.values.join(" or ")}, got ${show(raw)}`
        : `expected a value, true or false, got ${show(raw)}`;
    }
  }
}

function describeRange(kind: { min: number; max: number; exclusiveMin?: boolean }): string {
  return kind.exclusiveMin
    ? `greater than ${kind.min} and at most ${kind.max}`
    : `from ${kind.min} to ${kind.max}`;
}

function show(value: unknown): string {
  return typeof value === "string" ? `"${value}"` : (JSON.stringify(value) ?? String(value));
}
