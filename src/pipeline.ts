import { availableParallelism } from "node:os";
import { createClient } from "./client.js";
import { DuplicateTracker } from "./dedupe.js";
import { checkModel, modelMissing, servedModels } from "./models.js";
import { captionProtocol } from "./prompts/protocol.js";
import { variesByFile } from "./prompts/template.js";
import { RunControl } from "./run/control.js";
import type { RunEvent, RunSummary } from "./run/events.js";
import { runFlow } from "./run/flow.js";
import { Intake } from "./run/intake.js";
import { type ResolvedRunOptions, type RunOptions, resolveRunOptions } from "./run/options.js";
import { PrepareStage } from "./run/prepare-stage.js";
import { createSender, previewSender } from "./run/send-stage.js";
import { findWork } from "./run/source.js";
import { RunState } from "./run/state.js";
import { openOutputs } from "./sinks/index.js";
import { withoutSharpCache } from "./stages/prepare.js";

/** Long enough for a server on the far side of the world, short enough not to hold a run up. */
const MODEL_LIST_TIMEOUT_MS = 5_000;

export { RunControl } from "./run/control.js";
export type { RunEvent, RunSummary } from "./run/events.js";
export type { RunOptions } from "./run/options.js";

/**
 * Captions every image in the inputs that OUT does not hold yet. Per-image failures become
 * errors-file rows; only what makes every further request pointless ends the run early.
 *
 * Data flows one way: source (discovery less what the sinks hold) → intake (read, hash, dedupe)
 * → prepare (decoder pool, bounded queue) → send (limiter, retries) → sinks, with the run state
 * counting and reporting every result.
 */
export async function captionImages(
  input: RunOptions,
  hooks: { onEvent?: (event: RunEvent) => void; control?: RunControl } = {},
): Promise<RunSummary> {
  const options = await resolveRunOptions(input);
  const dryRun = options.dryRun;
  const sink = openOutputs({
    output: options.output,
    format: options.format,
    errorsPath: options.errorsPath,
    overwrite: options.overwrite ?? false,
    csvFormulaGuard: options.csvFormulaGuard,
    recordOnly: options.recordOnly,
    recordRoot: options.recordRoot,
    dryRun,
    sidecar: options.sidecar,
    hfMetadata: options.hfMetadata,
    xmp: options.xmp,
    inputs: options.inputs,
    cwd: options.cwd,
    onWarning: (message) => hooks.onEvent?.({ type: "warning", message }),
    nameSetting: options.nameSetting,
    properties: options.answer?.properties,
    promptHash: options.promptHash,
  });
  const control = hooks.control ?? new RunControl();
  const state = new RunState({
    sink,
    control,
    onEvent: hooks.onEvent,
    secret: options.apiKey,
    preview: dryRun,
  });
  let neverTaken = 0;
  try {
    const { tasks, finished } = await findWork(
      options.inputs,
      options.cwd,
      options.strict ?? false,
      sink,
      state,
    );
    // Decoding is CPU-bound: one per core, plus one so a core never waits while another image's
    // file is read or its result encoded; more would only hold more pixels in memory.
    const decoders = Math.max(1, Math.min(options.concurrency, availableParallelism() + 1));
    const prepare = new PrepareStage(options.prepare, decoders, state);
    const intake = new Intake(
      new DuplicateTracker(finished.hashes, (sha256) => sink.stored(sha256)),
      prepare.produce,
      state,
      !variesByFile(options.template),
    );
    const send = dryRun
      ? previewSender(state)
      : await realSender(options, state, prepare, tasks.length > 0);
    const shape = { producers: decoders, senders: options.concurrency };
    neverTaken = await withoutSharpCache(() =>
      runFlow(tasks, shape, { intake, prepare, send }, state),
    );
  } finally {
    await sink.close();
  }
  return state.finish(neverTaken);
}

/**
 * The senders of a real run, after one short look at what the server lists: a wrong model id is
 * a usage error before the first image rather than a failure for every image. No list is no
 * verdict.
 */
async function realSender(
  options: ResolvedRunOptions,
  state: RunState,
  prepare: PrepareStage,
  anythingToSend: boolean,
) {
  const client = createClient({
    baseUrl: options.baseUrl,
    apiKey: options.apiKey,
    timeoutMs: options.timeoutMs,
    nameSetting: options.nameSetting,
    ...(options.fetch ? { fetch: options.fetch } : {}),
  });
  const listed = anythingToSend
    ? servedModels((await client.models(MODEL_LIST_TIMEOUT_MS)).body)
    : null;
  const verdict = checkModel(options.model, listed, options.baseUrl);
  if (verdict) state.emit({ type: "warning", message: verdict.warning });
  const ids = listed?.map((model) => model.id) ?? null;
  return createSender(
    {
      client,
      protocol: captionProtocol({
        model: options.model,
        template: options.template,
        maxTokens: options.maxTokens,
        temperature: options.temperature,
        answer: options.answer,
        tags: options.tags,
        sidecarExt: options.sidecar?.ext ?? ".txt",
        nameSetting: options.nameSetting,
        onWarning: (message) => state.emit({ type: "warning", message }),
      }),
      model: options.model,
      decorate: (caption) => `${options.prefix ?? ""}${caption}${options.suffix ?? ""}`,
      concurrency: options.concurrency,
      rpm: options.rpm,
      retries: options.retries,
      nameSetting: options.nameSetting,
      promptHash: options.promptHash,
      rejectFlagged: options.rejectFlagged,
      modelMissing: (error) => modelMissing(error, options.model, ids, options.baseUrl),
    },
    state,
    prepare,
  );
}
