import type { CliContext } from "./context.js";
import type { Reporter } from "./progress.js";

/** What a command is handed: where it runs, and where it says what happens. */
export interface CommandIo {
  context: CliContext;
  reporter: Reporter;
}

/** A command's work: the parsed flags in, the exit code out (through `exitCodeOf`). */
export type CommandRun = (args: Record<string, unknown>, io: CommandIo) => Promise<number>;
