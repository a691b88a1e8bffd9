import path from "node:path";
import { containerKind, splitMemberInput } from "../../archive/containers.js";
import { RunAbortedError, UsageError } from "../../errors.js";
import { RunControl } from "../../run/control.js";
import type { RunEvent, RunSummary } from "../../run/events.js";
import { captionImages, type RunHooks } from "../../run/pipeline.js";
import type { CaptionConfig } from "../../settings/caption-config.js";
import { captionOptionsOf, endpointOptionsOf, runOwnOf } from "../../settings/config-options.js";
import { defaultConcurrency } from "../../settings/defaults.js";
import { chooseOutputFormat, defaultErrorsPath } from "../../settings/output-format.js";
import type { RunOptions } from "../../settings/run-options.js";
import { SETTING_SPECS } from "../../settings/table.js";
import { recordFolderProblem } from "../../trust/links.js";
import { forTerminal } from "../../trust/text.js";
import { statOrNull } from "../../util/folders.js";
import type { CommandIo } from "../command-io.js";
import { chooseKey, loadConfig, refusalMessage } from "../context.js";
import { exitCodeOf } from "../exit-codes.js";
import { checkHfInputs, readJsonSchema, readPromptsFile, recordFolder } from "../input-files.js";
import { flagsFor } from "../naming.js";
import { watchSignals } from "../signals.js";
import { summaryLine } from "../summary-line.js";

/** `caption INPUTS… -o OUT`: a run, from its settings to its summary line and exit code. */
export async function run(args: Record<string, unknown>, io: CommandIo): Promise<number> {
  return runCaption(args, io, captionImages);
}

/**
 * A run's command line, from its settings to its summary line and exit code, around the library
 * call that does the run: `captionImages`, or `caption estimate`'s sampling run.
 */
export async function runCaption(
  args: Record<string, unknown>,
  { context, reporter }: CommandIo,
  call: (options: RunOptions, hooks: RunHooks) => Promise<RunSummary>,
): Promise<number> {
  const config = loadConfig(args, context, reporter, "caption");
  const { sidecar, hfMetadata, xmp } = config.dataset;
  const webdataset = config.webdataset;
  if (!config.output && !sidecar && !hfMetadata && !xmp && !webdataset) {
    throw new UsageError([
      "-o/--output is required (or --sidecar, --hf-metadata, --xmp, --webdataset-out): where to write the captions, e.g. -o captions.csv",
    ]);
  }
  if (!config.output && config.format) {
    throw new UsageError(["--format names OUT's format: give -o as well"]);
  }
  // Shards have no folder to write beside: the run refuses them with its own message.
  const shards = (args.inputs as string[]).some((input) =>
    Boolean(containerKind(input) || splitMemberInput(input)),
  );
  if (hfMetadata && !shards)
    await checkHfInputs(args.inputs as string[], context.cwd, config.output);
  // Without OUT, the run still keeps its record (what it captioned, for resume), its errors file
  // and its lock: in a hidden folder (which discovery never walks) of the first folder input, so
  // runs from anywhere, and runs on other folders, each find their own.
  const shardFolder = webdataset && (await statOrNull(webdataset.out));
  if (shardFolder && !shardFolder.isDirectory()) {
    throw new UsageError([
      `--webdataset-out: ${webdataset.out} is a file, not a folder; name a folder for the new shards`,
    ]);
  }
  // New shards only: the record goes with them, keyed relative to their folder.
  const recordRoot = config.output
    ? undefined
    : (webdataset?.out ?? (await recordFolder(args.inputs as string[], context.cwd)));
  const output =
    config.output ?? path.join(recordRoot ?? context.cwd, ".caption", "captions.jsonl");
  const chosen = await chooseOutputFormat(output, config.format);
  if (chosen.warning) reporter.say(chosen.warning, "warn");
  const concurrencies = (config.endpoints ?? [{ baseUrl: config.baseUrl }]).map(
    (e) => e.concurrency ?? config.values.concurrency ?? defaultConcurrency(e.baseUrl),
  );
  if (config.values.maxConcurrency !== undefined && !concurrencies.includes("auto")) {
    reporter.say("--max-concurrency only bounds -c auto; this run's -c is fixed", "warn");
  }
  const errorsPath = config.errors ?? defaultErrorsPath(output);
  if (config.output === undefined) {
    const linked = await recordFolderProblem([
      path.dirname(output),
      output,
      ...(config.errors === undefined ? [errorsPath] : []),
    ]);
    if (linked) throw new UsageError([linked]);
  }
  if (path.resolve(errorsPath) === path.resolve(output)) {
    throw new UsageError(["--errors: the errors file must not be OUT itself; pick another path"]);
  }
  const dryRun = args.dryRun === true;
  const key = dryRun
    ? { apiKey: config.apiKey, trial: false, endpoints: config.endpoints }
    : chooseKey(config, reporter, context.env);
  const overwrite = args.overwrite === true || args.resume === false;
  const control = new RunControl();
  const signals = watchSignals(control, (text) => reporter.say(text, "warn"));

  // `caption --dry-run | head` closes stdout early; that is the reader's choice, not an error.
  let stdoutOpen = true;
  context.stdout.on("error", () => {
    stdoutOpen = false;
  });
  const onEvent = (event: RunEvent): void => {
    if (event.type === "discovered") signals.sending();
    reporter.onEvent(event);
    if (dryRun && stdoutOpen && event.type === "prepared") {
      // A file name is someone else's text: its control characters are shown, not obeyed.
      context.stdout.write(
        `${forTerminal(event.path)}\t${event.image.width}x${event.image.height}\t${event.image.bytes}\n`,
      );
    }
  };
  let summary: RunSummary | null;
  try {
    const run = call(
      {
        inputs: (args.inputs as string[]).map(String),
        cwd: context.cwd,
        output,
        format: chosen.format,
        errorsPath,
        overwrite,
        dryRun,
        ...runOwnOf(config),
        ...endpointOptionsOf(config, key),
        // What the command line read, the run reads: nothing else is looked up.
        env: context.env,
        ...captionOptionsOf(config),
        // As given: left out, each prompt's own model sets its default (a Thinking one thinks).
        maxTokens: config.values.maxTokens,
        jsonSchema: await readJsonSchema(config.jsonSchema, config.jsonSchemaFrom),
        // Checked by the library, as a program's would be.
        prompts: redoRequest(
          config,
          (await readPromptsFile(config.prompts, config.promptsFrom)) as RunOptions["prompts"],
        ),
        sidecar,
        recordOnly: config.output === undefined,
        recordRoot,
        hfMetadata,
        xmp,
        webdataset,
        ...(context.fetch ? { fetch: context.fetch } : {}),
        nameSetting: flagsFor(config),
      },
      { onEvent, control },
    );
    // If the run never ends after being cancelled, its result no longer matters.
    run.catch(() => {});
    // A run that stopped early rejects with what it did: that is the summary to report.
    const ended = run.catch((error: unknown) => {
      if (error instanceof RunAbortedError && error.summary) return error.summary;
      throw error;
    });
    summary = await Promise.race([ended, signals.abandoned.then(() => null)]);
  } catch (error) {
    const refused = refusalMessage(error, key.trial, true);
    if (refused) throw new RunAbortedError("trial_key_refused", refused, { cause: error });
    throw error;
  } finally {
    reporter.stop();
    signals.dispose();
  }
  const stoppedBy = signals.stoppedBy;
  if (summary === null) {
    reporter.say(
      `the run did not end within seconds of ${stoppedBy ?? "the signal"} (something it waits on does not return); exiting now, rerun to resume`,
      "error",
    );
    return exitCodeOf({ summary: null, stoppedBy });
  }
  const record = path.relative(context.cwd, output) || output;
  const shownOutput = config.output
    ? record
    : `${sidecar ? "sidecars" : xmp ? "XMP sidecars" : webdataset ? "shards" : "metadata files"} (record in ${record})`;
  const shownErrors = path.relative(context.cwd, errorsPath) || errorsPath;
  if (summary.aborted) {
    reporter.say(
      refusalMessage(summary.aborted, key.trial, true) ?? summary.aborted.message,
      "error",
    );
  }
  const exitCode = exitCodeOf({ summary, stoppedBy });
  reporter.finish(summary, summaryLine(summary, shownOutput, shownErrors, dryRun), exitCode);
  return exitCode;
}

/**
 * A redo's `--max-tokens` and `--temperature`, typed on its command line, go with every prompt
 * of its images, over a prompt's own: a larger budget for the truncated is why one redoes them.
 */
function redoRequest(config: CaptionConfig, prompts: RunOptions["prompts"]): RunOptions["prompts"] {
  if (prompts === undefined || config.values.redo === undefined) return prompts;
  const typed = (key: "maxTokens" | "temperature") =>
    config.origins[key] === SETTING_SPECS[key].flag ? config.values[key] : undefined;
  const request = {
    ...(typed("maxTokens") === undefined ? {} : { max_tokens: typed("maxTokens") }),
    ...(typed("temperature") === undefined ? {} : { temperature: typed("temperature") }),
  };
  if (Object.keys(request).length === 0) return prompts;
  return Object.fromEntries(
    Object.entries(prompts).map(([name, spec]) => [
      name,
      typeof spec === "string"
        ? { prompt: spec, ...request }
        : typeof spec === "object" && spec !== null
          ? { ...spec, ...request }
          : spec,
    ]),
  );
}
