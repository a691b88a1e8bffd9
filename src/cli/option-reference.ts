import { type SettingKind, type SettingSpec, shownDefaultOf } from "../settings/spec.js";
import { SETTING_KEYS, SETTING_SPECS } from "../settings/table.js";
import { COMMANDS } from "./command-table.js";
import type { FlagSpec } from "./flags.js";

/** Where the generated part of docs/options.md begins and ends; the prose around it is by hand. */
export const REFERENCE_BEGIN =
  "<!-- generated from src/settings/table-*.ts by `npm run docs`: edit the table, not this -->";
export const REFERENCE_END = "<!-- end of generated reference -->";

/**
 * The option reference: every setting of the table with its flag, config key, variables, values,
 * default and the commands that take it; then the switches of one invocation.
 */
export function optionReference(): string {
  const rows = SETTING_KEYS.map((key) => {
    const spec = SETTING_SPECS[key];
    const flag = `${spec.alias ? `-${spec.alias}, ` : ""}\`${spec.flag}\``;
    const variables = (spec.env ?? []).map((name) => `\`${name}\``).join(", ");
    return [
      flag,
      `\`${key}\`${variables ? `; ${variables}` : ""}${library(key, spec)}`,
      valuesOf(spec.kind, spec.unit),
      cell(shownDefaultOf(spec) ?? defaultOf(spec)),
      commandsOf(spec),
      `${cell(spec.describe)}${spec.more ? `; ${spec.more}` : ""}`,
    ];
  });
  const switches = switchesOfCommands().map(({ flag, commands }) => [
    `${flag.alias ? `-${flag.alias}, ` : ""}\`--${flag.name}\``,
    flag.defaultDescription ? cell(flag.defaultDescription) : "",
    commands.join(", "),
    cell(flag.describe),
  ]);
  return [
    REFERENCE_BEGIN,
    "",
    "### Settings",
    "",
    "Each can be a flag, a key of a config file, and where a variable is named, that variable; a",
    "program gives `captionImages` the option of the same name unless the table names another.",
    "Commands: `run` is `caption INPUTS…` (and `caption config`); `check` includes `caption models`;",
    "a command marked _fixed_ takes the value at the queue's first enqueue, and every worker keeps it.",
    "",
    table(["flag", "config key; variables", "values", "default", "commands", "meaning"], rows),
    "",
    "### Switches of one invocation",
    "",
    "What to do this time, or how much to print: flags only, never in a config file.",
    "",
    table(["flag", "default", "commands", "meaning"], switches),
    "",
    REFERENCE_END,
  ].join("\n");
}

/** The flags of the command table that are no settings, each with the commands that take it. */
function switchesOfCommands(): { flag: FlagSpec; commands: string[] }[] {
  const settingFlags = new Set(SETTING_KEYS.map((key) => SETTING_SPECS[key].flag));
  const found = new Map<string, { flag: FlagSpec; commands: string[] }>();
  for (const command of COMMANDS) {
    const name = command.usage.startsWith("$0") ? "run" : (command.usage.split(" ")[0] ?? "");
    for (const flag of command.flags) {
      if (settingFlags.has(`--${flag.name}`)) continue;
      const known = found.get(flag.name) ?? { flag, commands: [] };
      known.commands.push(name);
      found.set(flag.name, known);
    }
  }
  return [...found.values()].map(({ flag, commands }) => ({
    flag,
    commands: commands.length === COMMANDS.length ? ["all"] : commands,
  }));
}

/** What the library calls it, where that is not the config key. */
function library(key: string, spec: SettingSpec): string {
  // The commands of many machines are no part of the library.
  if (spec.library === key || spec.scope === "scale") return "";
  return spec.library ? `; library: \`${spec.library}\`` : "; not in the library";
}

function valuesOf(kind: SettingKind, unit: string | undefined): string {
  const per = unit ? ` ${unit}` : "";
  switch (kind.type) {
    case "int":
    case "number": {
      const range =
        kind.type === "number" && kind.exclusiveMin
          ? `over ${kind.min}, at most ${kind.max}`
          : `${kind.min}–${kind.max}`;
      const words = kind.type === "int" ? (kind.or ?? []).map((word) => ` or \`${word}\``) : [];
      return `${kind.type === "int" ? "whole " : ""}${range}${per}${words.join("")}`;
    }
    case "choice":
      return kind.values.map((value) => `\`${value}\``).join(" \\| ");
    case "switch":
      return `on/off${kind.values ? `, or ${kind.values.map((value) => `\`${value}\``).join(" \\| ")}` : ", or a value"}`;
    case "boolean":
      return "on/off";
    case "url":
      return kind.schemes
        ? `${kind.schemes.map((scheme) => `\`${scheme}//\``).join(" or ")} URL`
        : "http(s) URL";
    case "name":
      return "a name";
    case "path":
      return "file path";
    case "text":
      return "text (may be empty)";
    case "string":
      return "text";
  }
}

function defaultOf(spec: SettingSpec): string {
  return spec.kind.type === "boolean" || spec.kind.type === "switch" ? "off" : "";
}

function commandsOf(spec: SettingSpec): string {
  const commands = spec.scope === "scale" ? [] : [spec.scope === "endpoint" ? "run, check" : "run"];
  for (const command of spec.commands ?? []) {
    commands.push(command === "enqueue" && spec.queueFixed ? "enqueue (fixed)" : command);
  }
  // Required by every command that takes it, or by none: so one word says which.
  return commands.join(", ") + (spec.requiredBy ? "; required" : "");
}

/** Text safe inside a Markdown table cell. */
function cell(text: string): string {
  return text.replace(/\|/g, "\\|").replace(/\n/g, " ");
}

function table(header: string[], rows: string[][]): string {
  return [
    `| ${header.join(" | ")} |`,
    `| ${header.map(() => "---").join(" | ")} |`,
    ...rows.map((row) => `| ${row.join(" | ")} |`),
  ].join("\n");
}
