import { availableParallelism } from "node:os";
import { createClient, type FetchLike } from "./client.js";
import { DuplicateTracker } from "./dedupe.js";
import { RunControl } from "./run/control.js";
import type { RunEvent, RunSummary } from "./run/events.js";
import { runFlow } from "./run/flow.js";
import { Intake } from "./run/intake.js";
import { PrepareStage } from "./run/prepare-stage.js";
import { createSender, previewSender } from "./run/send-stage.js";
import { findWork } from "./run/source.js";
import { RunState } from "./run/state.js";
import type { HfMetadataFormat } from "./sinks/hf-metadata-sink.js";
import { openOutputs } from "./sinks/index.js";
import type { SidecarOptions } from "./sinks/sidecar-sink.js";
import { withoutSharpCache } from "./stages/prepare.js";
import { plainCaptionProtocol } from "./stages/request.js";
import type { OutputFormat, PrepareOptions } from "./types.js";

export { RunControl } from "./run/control.js";
export type { RunEvent, RunSummary } from "./run/events.js";

export interface RunOptions {
  /** Folders, files or glob patterns. */
  inputs: readonly string[];
  /** Relative inputs and the paths written to OUT are relative to this folder. */
  cwd: string;
  /** OUT: where captions go. */
  output: string;
  format: OutputFormat;
  /** Where this run's failures go. */
  errorsPath: string;
  /** Discard OUT and start fresh instead of resuming. @default false */
  overwrite?: boolean;
  /** Prepare the images and report what would be sent, without sending or writing anything. */
  dryRun?: boolean;
  /** Refuse to run when an input holds no image at all (a mistyped glob or folder). @default false */
  strict?: boolean;
  /** Also write each caption beside its image, as LoRA trainers read it. */
  sidecar?: SidecarOptions | undefined;
  /** Also write Hugging Face `metadata.jsonl` (or `.csv`) at the root of each folder input. */
  hfMetadata?: HfMetadataFormat | undefined;
  /** Put before every caption, in every output: a LoRA trigger word such as "ohwx, ". */
  prefix?: string | undefined;
  /** Put after every caption, in every output. */
  suffix?: string | undefined;
  /** Quote captions a spreadsheet would run as formulas (CSV only). @default false */
  csvFormulaGuard?: boolean;
  baseUrl: string;
  apiKey?: string | undefined;
  model: string;
  prompt: string;
  maxTokens: number;
  temperature?: number | undefined;
  /** Requests in flight at once, and so images held in memory at once. */
  concurrency: number;
  /** Requests per minute at most. @default unlimited */
  rpm?: number | undefined;
  /** Further attempts after the first, for failures that may be transient. */
  retries: number;
  /** Per-attempt timeout. */
  timeoutMs: number;
  prepare: PrepareOptions;
  /** Injectable for tests and instrumentation. */
  fetch?: FetchLike;
}

/**
 * Captions every image in the inputs that OUT does not hold yet. Per-image failures become
 * errors-file rows; only what makes every further request pointless ends the run early.
 *
 * Data flows one way: source (discovery less what the sinks hold) → intake (read, hash, dedupe)
 * → prepare (decoder pool, bounded queue) → send (limiter, retries) → sinks, with the run state
 * counting and reporting every result.
 */
export async function captionImages(
  options: RunOptions,
  hooks: { onEvent?: (event: RunEvent) => void; control?: RunControl } = {},
): Promise<RunSummary> {
  const dryRun = options.dryRun ?? false;
  const sink = openOutputs({
    output: options.output,
    format: options.format,
    errorsPath: options.errorsPath,
    overwrite: options.overwrite ?? false,
    csvFormulaGuard: options.csvFormulaGuard ?? false,
    dryRun,
    sidecar: options.sidecar,
    hfMetadata: options.hfMetadata,
    inputs: options.inputs,
    cwd: options.cwd,
    onWarning: (message) => hooks.onEvent?.({ type: "warning", message }),
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
    );
    const client = createClient({
      baseUrl: options.baseUrl,
      apiKey: options.apiKey,
      timeoutMs: options.timeoutMs,
      ...(options.fetch ? { fetch: options.fetch } : {}),
    });
    const send = dryRun
      ? previewSender(state)
      : createSender(
          {
            client,
            protocol: plainCaptionProtocol(options),
            model: options.model,
            decorate: (caption) => `${options.prefix ?? ""}${caption}${options.suffix ?? ""}`,
            concurrency: options.concurrency,
            rpm: options.rpm,
            retries: options.retries,
          },
          state,
          prepare,
        );
    const shape = { producers: decoders, senders: options.concurrency };
    neverTaken = await withoutSharpCache(() =>
      runFlow(tasks, shape, { intake, prepare, send }, state),
    );
  } finally {
    await sink.close();
  }
  return state.finish(neverTaken);
}
