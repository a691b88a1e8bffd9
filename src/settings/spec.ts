export type SettingKind =
  | { type: "string" }
  /** http(s), or the schemes named ("redis:"). */
  | { type: "url"; schemes?: readonly string[] }
  /** A name of letters, digits, ".", "_" or "-" (a queue's: Redis keys are built from it). */
  | { type: "name" }
  | { type: "path" }
  /** A whole number, or one of the words in `or` ("auto"). */
  | { type: "int"; min: number; max: number; or?: readonly string[] }
  | { type: "number"; min: number; max: number; exclusiveMin?: boolean }
  | { type: "choice"; values: readonly string[] }
  /** Any text, the empty text included (a prefix may be a comma), or what `rule` allows. */
  | { type: "text"; rule?: (value: string) => string | null }
  | { type: "boolean" }
  /**
   * On or off, or on with a value: `--sidecar` alone or `"sidecar": true`, `--sidecar .caption`.
   * With `values`, the value must be one of them.
   */
  | {
      type: "switch";
      values?: readonly string[];
      /** What is wrong with a value given (a sidecar's extension), or null. */
      rule?: (value: string) => string | null;
    };

/** The commands besides a run (`caption`, `caption config`) that take some settings. */
export type SettingCommand = "check" | "models" | "enqueue" | "worker" | "status" | "merge";

/** The commands of many machines. */
export type ScaleCommand = "enqueue" | "worker" | "status" | "merge";

/**
 * One setting, declared once: how it is written on the command line and in a config file, which
 * variables give it, what a valid value is, its default, and which commands take it.
 */
export interface SettingSpec {
  flag: string;
  /** One-letter form, if any. */
  alias?: string;
  kind: SettingKind;
  describe: string;
  /**
   * The value a setting left out takes, the same for the CLI and the library (in the setting's
   * own unit: the library's is `libraryScale` times it). Absent where it depends on other
   * settings (`maxTokens` on the model, `concurrency` on the server) or there is none.
   */
  default?: number | string | boolean;
  /** The default as --help and the option reference show it, where `default` alone says too little. */
  shownDefault?: string;
  /** What the option reference adds to `describe` (Markdown). */
  more?: string;
  /** The unit of a number, for the option reference. */
  unit?: string;
  /** Listed first in --help: what a first run needs. */
  basic?: boolean;
  /**
   * "endpoint" settings serve `caption check` and `caption models` too; "run" ones a run; "scale"
   * ones only the commands of many machines named in `commands`.
   */
  scope: "endpoint" | "run" | "scale";
  /** Environment variables that give it, first set wins; flags outrank them, a config file not. */
  env?: readonly string[];
  /** The commands of many machines that take it (enqueue, worker, status, merge). */
  commands?: readonly ScaleCommand[];
  /** The commands that cannot go without it: its absence is a problem reported with the rest. */
  requiredBy?: readonly ScaleCommand[];
  /** What a command that requires it says it is for, after "required: ". */
  requiredFor?: string;
  /**
   * What `captionImages` calls it, a path into its options ("prepare.maxPixels"); absent where a
   * program gives something else (the prompt's text rather than its file).
   */
  library?: string;
  /** The library's value is this many times the setting's: timeoutMs for seconds. */
  libraryScale?: number;
  /** Fixed with the queue at its first enqueue: every worker captions with the queue's value. */
  queueFixed?: boolean;
}

/** The default as --help, the option reference and `caption config` show it; on-off ones aside. */
export function shownDefaultOf(spec: SettingSpec): string | undefined {
  if (spec.shownDefault !== undefined) return spec.shownDefault;
  return spec.default === undefined || typeof spec.default === "boolean"
    ? undefined
    : String(spec.default);
}
