import type { Argv } from "yargs";
import { Parser } from "yargs/helpers";
import { type SettingCommand, shownDefaultOf } from "../settings/spec.js";
import { SETTING_SPECS, settingsOf } from "../settings/table.js";
import type { LogFormat } from "./progress.js";

/** One command-line flag. Values are taken as text and checked by the settings layer, which names them. */
export interface FlagSpec {
  name: string;
  alias?: string;
  boolean?: boolean;
  /** Parsed as a number by yargs but left as text when it is not one, so the message can show it. */
  number?: boolean;
  describe: string;
  defaultDescription?: string;
  /** Listed first in --help, under "Basics": what a first run needs. */
  basic?: boolean;
  /** May be given without a value (`--sidecar` alone means `.txt`). */
  optionalValue?: boolean;
}

/** The flags of the settings a command takes, from the one table of settings. */
export function settingFlags(command: "caption" | SettingCommand): FlagSpec[] {
  return settingsOf(command).map((key) => {
    const spec = SETTING_SPECS[key];
    return {
      name: spec.flag.slice(2),
      describe: spec.describe,
      number: spec.kind.type === "int" || spec.kind.type === "number",
      ...(spec.kind.type === "boolean" ? { boolean: true } : {}),
      ...(spec.kind.type === "switch" ? { optionalValue: true } : {}),
      ...(spec.alias ? { alias: spec.alias } : {}),
      defaultDescription: shownDefaultOf(spec),
      ...(spec.basic ? { basic: true } : {}),
    };
  });
}

/** How much is printed: every command has these. */
export const LOG_SWITCHES: readonly FlagSpec[] = [
  {
    name: "log-format",
    describe: "stderr as text, or json: one JSON object per event",
    defaultDescription: "text",
  },
  { name: "quiet", alias: "q", boolean: true, describe: "Print only errors and the summary" },
  {
    name: "verbose",
    alias: "v",
    boolean: true,
    describe: "Print retries, and stack traces on errors",
  },
];

/** Switches of the command line itself, which are no settings of a run. */
export const CONFIG_SWITCHES: readonly FlagSpec[] = [
  {
    name: "config",
    basic: true,
    describe: "Settings file (JSON), or the name of a bundled one: vllm, ollama, …",
  },
  ...LOG_SWITCHES,
];

/** Switches of one invocation, which no config file keeps: what to do this time. */
export const RUN_SWITCHES: readonly FlagSpec[] = [
  {
    name: "dry-run",
    boolean: true,
    basic: true,
    describe: "Prepare images and list what would be sent; send nothing",
  },
  { name: "overwrite", boolean: true, describe: "Discard OUT and caption everything again" },
  {
    name: "resume",
    boolean: true,
    describe: "Skip images already in OUT (--no-resume: like --overwrite)",
    defaultDescription: "true",
  },
];

export const CAPTION_FLAGS: readonly FlagSpec[] = [
  ...settingFlags("caption"),
  ...CONFIG_SWITCHES,
  ...RUN_SWITCHES,
];

/** Gives a command its flags, grouped in --help as basics first. */
export function addFlags<T>(y: Argv<T>, flags: readonly FlagSpec[]): Argv<T> {
  for (const flag of flags) {
    y.option(flag.name, {
      ...(flag.number ? {} : { type: flag.boolean ? "boolean" : "string" }),
      describe: flag.describe,
      ...(flag.alias ? { alias: flag.alias } : {}),
      ...(flag.defaultDescription ? { defaultDescription: flag.defaultDescription } : {}),
      ...(flag.boolean || flag.optionalValue ? {} : { requiresArg: true }),
    });
  }
  const basics = flags.filter((flag) => flag.basic).map((flag) => flag.name);
  y.group(basics, "Basics:");
  y.group(
    flags.filter((flag) => !flag.basic).map((flag) => flag.name),
    "More options:",
  );
  return flags.some((flag) => flag.name === "quiet") ? y.conflicts("quiet", "verbose") : y;
}

/** Every name and alias a command's flags can be written with, for "did you mean" suggestions. */
export function knownFlags(flags: readonly FlagSpec[]): string[] {
  return [...flags, { name: "help", alias: "h" }, { name: "version" }].flatMap((flag) => [
    flag.name,
    ...(flag.alias ? [flag.alias] : []),
  ]);
}

/**
 * The flags that shape what is printed, read before the real parse so that even a usage error
 * comes out as asked. A real parser, so a prompt that mentions "--log-format json" is just text.
 */
export function readLogFlags(argv: string[]): {
  format: LogFormat;
  quiet: boolean;
  verbose: boolean;
} {
  const flags = CAPTION_FLAGS;
  const parsed = Parser(argv, {
    string: flags.filter((flag) => !flag.boolean).map((flag) => flag.name),
    boolean: flags.filter((flag) => flag.boolean).map((flag) => flag.name),
    alias: Object.fromEntries(
      flags.filter((flag) => flag.alias).map((flag) => [flag.name, [flag.alias as string]]),
    ),
  });
  return {
    format: parsed["log-format"] === "json" ? "json" : "text",
    quiet: parsed.quiet === true,
    verbose: parsed.verbose === true,
  };
}
