import { availableParallelism } from "node:os";
import path from "node:path";
import { isClipPath } from "../discover/extensions.js";
import { requireTools } from "../prepare/clip/ffmpeg.js";
import { DuplicateTracker } from "../prepare/dedupe.js";
import { withSharpForRuns } from "../prepare/prepare.js";
import { PrepareStage } from "../prepare/stage.js";
import { promptFields } from "../prompts/prompt-set.js";
import { variesByFile } from "../prompts/template.js";
import { previewSender } from "../send/variants.js";
import { VideoRoutes } from "../send/video-routes.js";
import { resolveRunOptions } from "../settings/resolve-run-options.js";
import type { RunOptions } from "../settings/run-options.js";
import { openOutputs } from "../sinks/index.js";
import type { ImageTask } from "../types.js";
import { urlCredentials } from "../util/redact.js";
import { RunControl } from "./control.js";
import type { RunEvent, RunSummary } from "./events.js";
import { runFlow } from "./flow.js";
import { Intake } from "./intake.js";
import { realSender } from "./real-sender.js";
import { findWork } from "./source.js";
import { RunState } from "./state.js";

/** What a program may follow or steer in a run besides its options. */
export interface RunHooks {
  onEvent?: (event: RunEvent) => void;
  control?: RunControl;
  /**
   * Of the images OUT does not hold yet, those this run captions (`caption estimate`'s sample);
   * the rest are left for a later run, and not counted as found.
   */
  pick?: (pending: readonly ImageTask[]) => readonly ImageTask[];
}

/**
 * Captions every image in the inputs that OUT does not hold yet. Per-image failures become
 * errors-file rows; only what makes every further request pointless ends the run early.
 *
 * Data flows one way: source (discovery less what the sinks hold) → intake (read, hash, dedupe)
 * → prepare (decoder pool, bounded queue) → send (limiter, retries) → sinks, with the run state
 * counting and reporting every result.
 */
export async function captionImages(input: RunOptions, hooks: RunHooks = {}): Promise<RunSummary> {
  const options = await resolveRunOptions(input);
  const dryRun = options.dryRun;
  const sink = openOutputs({
    // The outputs are named alike in the run's options: OUT, its format, the errors file, the
    // files beside the images.
    ...options,
    onWarning: (message) => hooks.onEvent?.({ type: "warning", message }),
    properties: options.answer?.properties,
    // A clip named as a file is taken without `video`: its row needs the columns too.
    clips: options.video.include || options.inputs.some(isClipPath),
    prompts: options.promptSet
      ? { names: options.promptSet.names, fields: promptFields(options.promptSet) }
      : undefined,
  });
  const control = hooks.control ?? new RunControl();
  const state = new RunState({
    sink,
    control,
    onEvent: hooks.onEvent,
    secrets: options.endpoints.flatMap((endpoint) => [
      endpoint.apiKey,
      ...urlCredentials(endpoint.baseUrl),
    ]),
    preview: dryRun,
    budget: { tokens: options.budgetTokens, cost: options.budgetCost },
    shared: options.sharedSpend,
  });
  const unwatch = state.judgeShared();
  for (const notice of options.notices) state.emit({ type: "warning", message: notice });
  // Every endpoint is in the count, those that answered nothing too.
  for (const endpoint of options.endpoints) state.summary.byEndpoint[endpoint.label] = 0;
  let neverTaken = 0;
  try {
    const { tasks, finished } = await findWork(
      options.inputs,
      options.cwd,
      {
        strict: options.strict,
        followSymlinks: options.followSymlinks,
        video: options.video.include,
        besideImages: (["sidecar", "xmpOn", "hfMetadata"] as const).filter((name) =>
          Boolean(options[name === "xmpOn" ? "xmp" : name]),
        ),
        webdatasetOut: options.webdataset !== undefined,
        own: {
          files: [path.resolve(options.cwd, options.output)],
          folders: options.webdataset ? [path.resolve(options.cwd, options.webdataset.out)] : [],
        },
        nameSetting: options.nameSetting,
      },
      sink,
      state,
      hooks.pick,
    );
    // Decoding is CPU-bound: one per core, plus one so a core never waits while another image's
    // file is read or its result encoded; more would only hold more pixels in memory.
    const senders = options.endpoints.reduce(
      (sum, endpoint) =>
        sum + (endpoint.concurrency === "auto" ? options.maxConcurrency : endpoint.concurrency),
      0,
    );
    const decoders = Math.max(1, Math.min(senders, availableParallelism() + 1));
    const video = new VideoRoutes(
      options.video.mode,
      options.endpoints.map((endpoint) => endpoint.label),
    );
    // Said once, before anything is sent, rather than as a failure for every clip.
    if (tasks.some((task) => isClipPath(task.absPath))) await requireTools(options.video.timeoutMs);
    const prepare = new PrepareStage(options.prepare, decoders, state, {
      options: options.video,
      form: () => video.form(),
    });
    const intake = new Intake(
      new DuplicateTracker(finished.hashes, (sha256) => sink.stored(sha256)),
      prepare.produce,
      state,
      !(options.promptSet?.prompts.map((prompt) => prompt.template) ?? [options.template]).some(
        variesByFile,
      ),
    );
    const shape = { producers: decoders, senders };
    neverTaken = await withSharpForRuns(async () =>
      dryRun
        ? runFlow(tasks, shape, { intake, prepare, send: previewSender(state) }, state)
        : runFlow(
            tasks,
            shape,
            {
              intake,
              prepare,
              send: await realSender(
                options,
                state,
                { prepare, video },
                tasks.length > 0,
                sink.recorded,
              ),
            },
            state,
          ),
    );
  } finally {
    unwatch();
    await sink.close();
  }
  const summary = state.finish(neverTaken);
  // A run that could not go on rejects, so a program cannot take it for one that finished; the
  // error carries what was done before it stopped.
  if (summary.aborted) {
    summary.aborted.summary = summary;
    throw summary.aborted;
  }
  return summary;
}
