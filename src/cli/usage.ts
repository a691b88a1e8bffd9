import { CaptionError, RunAbortedError, UsageError } from "../errors.js";
import { closestName } from "../util/suggest.js";
import { exitCodeOf } from "./exit-codes.js";
import { asFlags } from "./naming.js";
import type { Reporter } from "./progress.js";

/** Prints what an error that ended the CLI means to the user, and returns its exit code. */
export function reportError(error: unknown, reporter: Reporter, verbose: boolean): number {
  if (error instanceof UsageError) {
    for (const problem of error.problems) reporter.say(asFlags(problem), "error");
    reporter.say("see caption --help", "error");
  } else if (error instanceof CaptionError) {
    reporter.say(error.message, "error");
    if (verbose && error.stack && !(error instanceof RunAbortedError)) reporter.detail(error.stack);
  } else {
    const message = error instanceof Error ? error.message : String(error);
    reporter.say(
      `internal error: ${message}${verbose ? "" : " (rerun with --verbose for the stack trace)"}`,
      "error",
    );
    if (verbose && error instanceof Error && error.stack) reporter.detail(error.stack);
  }
  return exitCodeOf({ error });
}

/** yargs' own messages, reworded to read like every other usage error of the tool. */
export function friendlyUsage(message: string, known: readonly string[]): string {
  if (/Not enough non-option arguments/.test(message)) {
    return "no inputs given: name one or more folders, image files or glob patterns, e.g. caption photos/ -o captions.csv (a word right after --sidecar is taken as its EXT: put --sidecar after the inputs)";
  }
  const unknown = /^Unknown arguments?: (.+)$/.exec(message);
  if (unknown?.[1]) {
    // yargs names a mistyped --max-pixles twice, once camel-cased; the user typed one flag.
    const typed = new Map<string, string>();
    for (const name of unknown[1].split(", ")) {
      const key = name.toLowerCase().replace(/-/g, "");
      if (!typed.has(key) || name.includes("-")) typed.set(key, name);
    }
    return [...typed.values()]
      .map((name) => {
        // A one-letter typo is as close to every short flag as to any.
        const near = name.length > 2 ? closestName(name, known) : undefined;
        return `${flagName(name)}: no such flag${near ? ` (did you mean ${flagName(near)}?)` : ""}`;
      })
      .join("\n");
  }
  const exclusive = /^Arguments (\S+) and (\S+) are mutually exclusive$/.exec(message);
  if (exclusive?.[1] && exclusive[2]) {
    return `${flagName(exclusive[1])} and ${flagName(exclusive[2])} cannot be used together; pass one of them`;
  }
  const missing = /^Not enough arguments following: (\S+)$/.exec(message);
  if (missing?.[1]) return `${flagName(missing[1])}: needs a value`;
  return message;
}

function flagName(name: string): string {
  return name.length === 1 ? `-${name}` : `--${name}`;
}
