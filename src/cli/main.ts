import yargs from "yargs";
import { UsageError } from "../errors.js";
import { ENV_VARIABLES } from "../settings/table.js";
import { COMMANDS } from "./command-table.js";
import { type CliContext, defaultContext } from "./context.js";
import { exitCodeOf } from "./exit-codes.js";
import { addFlags, CAPTION_FLAGS, knownFlags, readLogFlags } from "./flags.js";
import { Reporter } from "./progress.js";
import { friendlyUsage, reportError } from "./usage.js";

/** Runs the CLI and returns the exit code; never calls process.exit. */
export async function main(
  argv: string[],
  context: CliContext = defaultContext(),
): Promise<number> {
  let job: (() => Promise<number>) | null = null;
  const logFlags = readLogFlags(argv);
  const reporter = new Reporter({
    stream: context.stderr,
    format: logFlags.format,
    quiet: logFlags.quiet,
    verbose: logFlags.verbose,
    secret: (ENV_VARIABLES.apiKey ?? []).map((name) => context.env[name]).find(Boolean),
  });

  const parser = yargs(argv)
    .scriptName("caption")
    .usage(
      "$0 <inputs..> -o OUT [options]\n\nCaption every image in folders, files or glob patterns through an OpenAI-compatible vision model. Rerunning the same command resumes where the last run stopped.",
    );
  for (const command of COMMANDS) {
    parser.command(
      command.usage,
      command.describe,
      (y) => {
        const withFlags = addFlags(y, command.flags);
        const { positional, conflicts } = command;
        if (positional) {
          withFlags.positional(positional.name, {
            type: "string",
            ...(positional.array ? { array: true } : {}),
            ...(positional.describe ? { describe: positional.describe } : {}),
          });
        }
        return conflicts ? withFlags.conflicts(conflicts[0], conflicts[1]) : withFlags;
      },
      (args) => {
        job = async () =>
          (await command.load()).run(args as Record<string, unknown>, { context, reporter });
      },
    );
  }
  parser
    .example("$0 photos/ -o captions.csv", "Caption a folder (hosted API)")
    .example("$0 'shots/**/*.png' -o out.jsonl", "Caption a glob")
    .example("$0 photos/ -o c.csv --config vllm", "Use a bundled config")
    .example("$0 check --config ollama", "Test a server")
    .epilogue(
      "Exit codes: 0 all captioned, 3 some images failed (see the errors file), 2 usage or config error, 1 run aborted, 4 budget reached, 130/143 interrupted; docs/failures.md has them all.",
    )
    .strict()
    .help()
    .alias("help", "h")
    .version()
    .wrap(Math.min(100, process.stdout.columns || 80))
    .exitProcess(false)
    .fail((message, error) => {
      // yargs reports its own parse problems as a YError; anything else came from our handlers.
      if (error && error.name !== "YError") throw error;
      const named = COMMANDS.find((command) => command.usage.split(" ")[0] === argv[0]);
      const flags = named?.flags ?? CAPTION_FLAGS;
      throw new UsageError([friendlyUsage(message ?? error?.message ?? "", knownFlags(flags))]);
    });

  try {
    await parser.parseAsync();
    if (!job) return exitCodeOf({ done: true }); // --help or --version was printed
    return await (job as () => Promise<number>)();
  } catch (error) {
    reporter.stop();
    return reportError(error, reporter, logFlags.verbose);
  }
}
