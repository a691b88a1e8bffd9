import { mkdir, rm } from "node:fs/promises";
import { availableParallelism } from "node:os";
import path from "node:path";
import pLimit from "p-limit";
import { type ChatClient, createClient, type FetchLike, RequestCancelledError } from "./client.js";
import { ApiError, AuthError, CaptionError, ConnectionError, RunAbortedError } from "./errors.js";
import { redactSecret } from "./redact.js";
import { readFinishedWork } from "./resume.js";
import { retryDelay, shouldRetry } from "./retry.js";
import { discoverImages } from "./stages/discover.js";
import { prepareImage } from "./stages/prepare.js";
import { buildCaptionRequest, extractCaption } from "./stages/request.js";
import type {
  CaptionRecord,
  FailureRecord,
  ImageTask,
  OutputFormat,
  PreparedImage,
  PrepareOptions,
} from "./types.js";
import {
  CAPTION_COLUMNS,
  openCaptionWriter,
  openJsonlWriter,
  type RecordWriter,
} from "./writers/index.js";

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
  baseUrl: string;
  apiKey?: string | undefined;
  model: string;
  prompt: string;
  maxTokens: number;
  temperature?: number | undefined;
  /** Requests in flight at once, and so images held in memory at once. */
  concurrency: number;
  /** Further attempts after the first, for failures that may be transient. */
  retries: number;
  /** Per-attempt timeout. */
  timeoutMs: number;
  prepare: PrepareOptions;
  /** Injectable for tests and instrumentation. */
  fetch?: FetchLike;
}

export type RunEvent =
  | {
      type: "discovered";
      found: number;
      alreadyDone: number;
      todo: number;
      repairedBytes: number;
      emptyPatterns: readonly string[];
    }
  | { type: "prepared"; path: string; image: Omit<PreparedImage, "dataUrl"> }
  | { type: "retrying"; path: string; attempt: number; delayMs: number; reason: string }
  | { type: "captioned"; record: CaptionRecord }
  | { type: "failed"; failure: FailureRecord }
  /** The image's work ended without a result (the run was stopped or aborted); a rerun picks it up. */
  | { type: "unfinished"; path: string };

export interface RunSummary {
  /** Images found in the inputs. */
  found: number;
  /** Of those, already in OUT before this run. */
  alreadyDone: number;
  captioned: number;
  failed: number;
  /** Not finished because the run stopped early; a rerun picks them up. */
  unfinished: number;
  /** Dry run only: total bytes of the prepared images. */
  preparedBytes: number;
  elapsedMs: number;
  /** Why the run ended early, if it did. */
  aborted: RunAbortedError | null;
  /** True when stop() was called. */
  stopped: boolean;
}

/** Lets the caller end a run early: stop() finishes in-flight work, abort() cancels it too. */
export class RunControl {
  readonly stopSignal: AbortSignal;
  readonly abortSignal: AbortSignal;
  #stop = new AbortController();
  #abort = new AbortController();

  constructor() {
    this.stopSignal = this.#stop.signal;
    this.abortSignal = this.#abort.signal;
  }
  /** Start nothing new; let requests in flight finish. */
  stop(): void {
    this.#stop.abort();
  }
  /** Cancel requests in flight as well. */
  abort(): void {
    this.#stop.abort();
    this.#abort.abort();
  }
}

/**
 * Captions every image in the inputs that OUT does not hold yet. Per-image failures become
 * errors-file rows; only what makes every further request pointless ends the run early.
 */
export async function captionImages(
  options: RunOptions,
  hooks: { onEvent?: (event: RunEvent) => void; control?: RunControl } = {},
): Promise<RunSummary> {
  const started = performance.now();
  const emit = hooks.onEvent ?? (() => {});
  const control = hooks.control ?? new RunControl();
  const dryRun = options.dryRun ?? false;
  const summary: RunSummary = {
    found: 0,
    alreadyDone: 0,
    captioned: 0,
    failed: 0,
    unfinished: 0,
    preparedBytes: 0,
    elapsedMs: 0,
    aborted: null,
    stopped: false,
  };

  const discovery = await discoverImages(options.inputs, options.cwd);
  if (options.overwrite && !dryRun) await rm(options.output, { force: true });
  const finished = await readFinishedWork(options.output, options.format, CAPTION_COLUMNS, {
    repair: !dryRun,
  });
  const todo = discovery.tasks.filter((task) => !finished.done.has(task.path));
  summary.found = discovery.tasks.length;
  summary.alreadyDone = summary.found - todo.length;
  emit({
    type: "discovered",
    found: summary.found,
    alreadyDone: summary.alreadyDone,
    todo: todo.length,
    repairedBytes: finished.repairedBytes,
    emptyPatterns: discovery.emptyPatterns,
  });

  let out: RecordWriter<CaptionRecord> | null = null;
  let errors: RecordWriter<FailureRecord> | null = null;
  if (!dryRun) {
    // Last run's failures are retried below; the errors file describes this run only.
    await rm(options.errorsPath, { force: true });
    if (todo.length > 0) {
      try {
        await mkdir(path.dirname(options.output), { recursive: true });
        out = await openCaptionWriter(options.output, options.format);
      } catch (error) {
        throw new RunAbortedError(
          "output_not_writable",
          `cannot write ${options.output} (${errnoOf(error)}); choose another -o or fix its folder's permissions`,
          { cause: error },
        );
      }
    }
  }

  const client = createClient({
    baseUrl: options.baseUrl,
    apiKey: options.apiKey,
    timeoutMs: options.timeoutMs,
    ...(options.fetch ? { fetch: options.fetch } : {}),
  });
  const abortRun = (error: RunAbortedError) => {
    summary.aborted ??= error;
    control.abort();
  };
  const requestOptions = {
    model: options.model,
    prompt: options.prompt,
    maxTokens: options.maxTokens,
    temperature: options.temperature,
  };
  // Decoding is CPU-bound: running more at once than there are cores only holds more pixels in memory.
  const prepareSlots = pLimit(Math.max(1, Math.min(options.concurrency, availableParallelism())));

  const recordFailure = async (failure: FailureRecord) => {
    summary.failed += 1;
    emit({ type: "failed", failure });
    if (dryRun) return;
    try {
      if (!errors) {
        await mkdir(path.dirname(options.errorsPath), { recursive: true });
        errors = await openJsonlWriter<FailureRecord>(options.errorsPath);
      }
      await errors.write(failure);
    } catch (error) {
      abortRun(
        new RunAbortedError(
          "errors_not_writable",
          `cannot write the errors file ${options.errorsPath} (${errnoOf(error)}); pass --errors with a writable path`,
          { cause: error },
        ),
      );
    }
  };

  const processImage = async (task: ImageTask): Promise<void> => {
    let image: PreparedImage;
    try {
      image = await prepareSlots(() => prepareImage(task.absPath, options.prepare));
    } catch (error) {
      await recordFailure(failureOf(task, error, 0, options.apiKey));
      return;
    }
    const { dataUrl, ...shape } = image;
    emit({ type: "prepared", path: task.path, image: shape });
    if (dryRun) {
      summary.preparedBytes += image.bytes;
      return;
    }
    const request = buildCaptionRequest(dataUrl, requestOptions);
    const outcome = await requestWithRetries(client, request, task, options.retries, control, emit);
    if (outcome.kind === "unfinished") {
      summary.unfinished += 1;
      emit({ type: "unfinished", path: task.path });
      if (outcome.abort) abortRun(outcome.abort);
      return;
    }
    if (outcome.kind === "failed") {
      await recordFailure(failureOf(task, outcome.error, outcome.attempts, options.apiKey));
      return;
    }
    const { reply, extracted, attempts } = outcome;
    const record: CaptionRecord = {
      path: task.path,
      caption: extracted.caption,
      model: options.model,
      width: image.width,
      height: image.height,
      prompt_tokens: extracted.usage.promptTokens,
      completion_tokens: extracted.usage.completionTokens,
      attempts,
      latency_ms: reply.latencyMs,
      truncated: extracted.truncated,
      created_at: new Date().toISOString(),
    };
    try {
      await out?.write(record);
    } catch (error) {
      summary.unfinished += 1;
      abortRun(
        new RunAbortedError(
          "output_write_failed",
          `cannot write to ${options.output} (${errnoOf(error)}); the rows written so far are kept, rerun to resume once fixed`,
          { cause: error },
        ),
      );
      return;
    }
    summary.captioned += 1;
    emit({ type: "captioned", record });
  };

  // A fixed pool of workers pulling from one cursor: memory stays at about `concurrency` images
  // however many files there are, and nothing is queued up front.
  let cursor = 0;
  const worker = async () => {
    while (!control.stopSignal.aborted) {
      const task = todo[cursor];
      if (!task) return;
      cursor += 1;
      await processImage(task);
    }
  };
  try {
    await Promise.all(
      Array.from({ length: Math.min(options.concurrency, todo.length) }, () => worker()),
    );
  } finally {
    await Promise.allSettled([
      out?.close(),
      (errors as RecordWriter<FailureRecord> | null)?.close(),
    ]);
  }
  summary.unfinished += todo.length - cursor;
  summary.stopped = control.stopSignal.aborted && summary.aborted === null;
  summary.elapsedMs = Math.round(performance.now() - started);
  return summary;
}

type RequestOutcome =
  | {
      kind: "captioned";
      reply: Awaited<ReturnType<ChatClient["chat"]>>;
      extracted: ReturnType<typeof extractCaption>;
      attempts: number;
    }
  | { kind: "failed"; error: unknown; attempts: number }
  | { kind: "unfinished"; abort?: RunAbortedError };

async function requestWithRetries(
  client: ChatClient,
  request: object,
  task: ImageTask,
  retries: number,
  control: RunControl,
  emit: (event: RunEvent) => void,
): Promise<RequestOutcome> {
  for (let attempt = 1; ; attempt += 1) {
    try {
      const reply = await client.chat(request, control.abortSignal);
      return { kind: "captioned", reply, extracted: extractCaption(reply.body), attempts: attempt };
    } catch (error) {
      if (error instanceof RequestCancelledError) return { kind: "unfinished" };
      if (error instanceof AuthError) {
        return {
          kind: "unfinished",
          abort: new RunAbortedError(error.code, error.message, { cause: error }),
        };
      }
      const retryable = shouldRetry(error);
      if (!retryable || attempt > retries) {
        if (error instanceof ConnectionError) {
          // Nothing about this image made the connection fail: every other image would fail the same way.
          return {
            kind: "unfinished",
            abort: new RunAbortedError(
              "endpoint_unreachable",
              `${error.message} (after ${attempt} attempts on ${task.path}); check --base-url and that the server is up, then rerun to resume`,
              { cause: error },
            ),
          };
        }
        return { kind: "failed", error, attempts: attempt };
      }
      // Once a stop is asked for, no new attempts: the image is left for the next run.
      if (control.stopSignal.aborted) return { kind: "unfinished" };
      const delayMs = retryDelay(attempt, error);
      emit({ type: "retrying", path: task.path, attempt, delayMs, reason: messageOf(error) });
      await sleep(delayMs, control.stopSignal);
      if (control.stopSignal.aborted) return { kind: "unfinished" };
    }
  }
}

function failureOf(
  task: ImageTask,
  error: unknown,
  attempts: number,
  apiKey: string | undefined,
): FailureRecord {
  const status = error instanceof ApiError ? error.status : null;
  let message = messageOf(error);
  if (error instanceof ApiError && attempts > 1) message += ` (after ${attempts} attempts)`;
  return {
    path: task.path,
    code: error instanceof CaptionError ? error.code : "internal_error",
    message: redactSecret(message, apiKey),
    attempts,
    status,
    created_at: new Date().toISOString(),
  };
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function errnoOf(error: unknown): string {
  return (error as NodeJS.ErrnoException).code ?? messageOf(error);
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done, { once: true });
  });
}
