import { setMaxListeners } from "node:events";
import { open, rm, unlink } from "node:fs/promises";
import { availableParallelism } from "node:os";
import path from "node:path";
import pLimit from "p-limit";
import { createClient, type FetchLike } from "./client.js";
import { DuplicateTracker, type ImageOutcome } from "./dedupe.js";
import { ApiError, CaptionError, RunAbortedError, UsageError } from "./errors.js";
import { describeErrno, ensureFolder, errnoOf, outputFileProblem } from "./folders.js";
import { AdaptiveLimiter } from "./limiter.js";
import { lockOutput, type OutputLock } from "./lock.js";
import { BoundedQueue } from "./queue.js";
import { redactSecret } from "./redact.js";
import { readFinishedWork, type StoredCaption } from "./resume.js";
import { ConnectionBreaker, type SendContext, sendWithRetries } from "./send.js";
import { discoverImages } from "./stages/discover.js";
import { readAndHash } from "./stages/hash.js";
import { prepareImage } from "./stages/prepare.js";
import { encodeCaptionRequest } from "./stages/request.js";
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
  /** Refuse to run when an input holds no image at all (a mistyped glob or folder). @default false */
  strict?: boolean;
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

export type RunEvent =
  | {
      type: "discovered";
      found: number;
      alreadyDone: number;
      todo: number;
      repairedBytes: number;
      /** Inputs holding no image at all (a glob that matched nothing, a folder without images). */
      emptyInputs: readonly string[];
    }
  | { type: "prepared"; path: string; image: Omit<PreparedImage, "dataUrl"> }
  | { type: "retrying"; path: string; attempt: number; delayMs: number; reason: string }
  | { type: "captioned"; record: CaptionRecord; copyOf: string | null }
  | { type: "failed"; failure: FailureRecord }
  /** The image's work ended without a result (the run was stopped or aborted); a rerun picks it up. */
  | { type: "unfinished"; path: string }
  | { type: "warning"; message: string }
  /** The server rate-limited us and the allowed concurrency changed (or grew back). */
  | { type: "concurrency"; allowed: number };

export interface RunSummary {
  /** Images found in the inputs. */
  found: number;
  /** Of those, already in OUT before this run. */
  alreadyDone: number;
  captioned: number;
  /** Of the captioned, how many reused the caption of an identical file instead of a request. */
  copies: number;
  failed: number;
  /** Not finished because the run stopped early; a rerun picks them up. */
  unfinished: number;
  /** Dry run only: images that would be sent, and their total bytes. */
  prepared: number;
  preparedBytes: number;
  elapsedMs: number;
  /** Why the run ended early, if it did. */
  aborted: RunAbortedError | null;
  /** True when stop() was called. */
  stopped: boolean;
  /** Why failures could not be written to the errors file, when they could not. */
  errorsFileProblem: string | null;
  /** Inputs that hold no image at all: probably a typo in a path or pattern. */
  emptyInputs: readonly string[];
}

/** Lets the caller end a run early: stop() finishes in-flight work, abort() cancels it too. */
export class RunControl {
  readonly #stop = new AbortController();
  readonly #abort = new AbortController();
  readonly stopSignal: AbortSignal = this.#stop.signal;
  readonly abortSignal: AbortSignal = this.#abort.signal;

  constructor() {
    // Every request in flight listens on these; at -c 64 that is 64 listeners, not a leak.
    setMaxListeners(0, this.stopSignal, this.abortSignal);
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

/** A 413 means the body was too big: the image is sent once more at this fraction of its pixels. */
const SHRINK_ON_413 = 1 / 4;

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
    copies: 0,
    failed: 0,
    unfinished: 0,
    prepared: 0,
    preparedBytes: 0,
    elapsedMs: 0,
    aborted: null,
    stopped: false,
    errorsFileProblem: null,
    emptyInputs: [],
  };

  const discovery = await discoverImages(options.inputs, options.cwd);
  summary.emptyInputs = discovery.emptyInputs;
  if (options.strict && discovery.emptyInputs.length > 0) {
    throw new UsageError(
      discovery.emptyInputs.map(
        (input) => `--strict: ${input} matches no image file; fix the path or pattern`,
      ),
    );
  }
  await refuseSpecialFiles(options);
  let lock: OutputLock | null = null;
  if (!dryRun) {
    try {
      await createFolderOf(options.output);
      lock = await lockOutput(options.output, (message) => emit({ type: "warning", message }));
    } catch (error) {
      if (error instanceof CaptionError) throw error;
      throw new RunAbortedError(
        "output_not_writable",
        `cannot create ${options.output} or its lock beside it (${describeErrno(errnoOf(error))}); -o must name a file in a folder you can write`,
        { cause: error },
      );
    }
  }
  let out: RecordWriter<CaptionRecord> | null = null;
  let errorsOpening: Promise<RecordWriter<FailureRecord>> | null = null;
  let cursor = 0;
  let todo: ImageTask[] = [];
  try {
    if (options.overwrite && !dryRun) await rm(options.output, { force: true });
    // A dry run with --overwrite shows what the real run would send: everything.
    const finished =
      options.overwrite && dryRun
        ? { done: new Set<string>(), hashes: new Set<string>(), repairedBytes: 0 }
        : await readFinishedWork(options.output, options.format, CAPTION_COLUMNS, {
            repair: !dryRun,
          });
    todo = discovery.tasks.filter((task) => !finished.done.has(task.path));
    summary.found = discovery.tasks.length;
    summary.alreadyDone = summary.found - todo.length;
    emit({
      type: "discovered",
      found: summary.found,
      alreadyDone: summary.alreadyDone,
      todo: todo.length,
      repairedBytes: finished.repairedBytes,
      emptyInputs: discovery.emptyInputs,
    });

    if (!dryRun) {
      // Last run's failures are retried below; the errors file describes this run only.
      await probeErrorsFile(options.errorsPath);
      if (todo.length > 0) {
        out = await openCaptionWriter(options.output, options.format, {
          csvFormulaGuard: options.csvFormulaGuard ?? false,
        }).catch((error: unknown) => {
          throw new RunAbortedError(
            "output_not_writable",
            `cannot write ${options.output} (${describeErrno(errnoOf(error))}); choose another -o or fix its folder's permissions`,
            { cause: error },
          );
        });
      }
    }

    const abortRun = (error: RunAbortedError) => {
      summary.aborted ??= error;
      control.abort();
    };
    const duplicates = new DuplicateTracker(
      options.output,
      options.format,
      CAPTION_COLUMNS,
      finished.hashes,
    );
    const send: SendContext = {
      client: createClient({
        baseUrl: options.baseUrl,
        apiKey: options.apiKey,
        timeoutMs: options.timeoutMs,
        ...(options.fetch ? { fetch: options.fetch } : {}),
      }),
      retries: options.retries,
      stopSignal: control.stopSignal,
      abortSignal: control.abortSignal,
      // A dead endpoint shows up as every worker failing to connect; a flaky one does not.
      breaker: new ConnectionBreaker(Math.max(10, 2 * options.concurrency)),
      limiter: new AdaptiveLimiter({
        concurrency: options.concurrency,
        rpm: options.rpm,
        onChange: (allowed) => emit({ type: "concurrency", allowed }),
      }),
      onRetry: (path, attempt, delayMs, error) =>
        emit({ type: "retrying", path, attempt, delayMs, reason: messageOf(error) }),
    };
    const requestOptions = {
      model: options.model,
      prompt: options.prompt,
      maxTokens: options.maxTokens,
      temperature: options.temperature,
    };
    // Decoding is CPU-bound: one per core, plus one so a core never waits while another image's
    // file is read or its result encoded; more would only hold more pixels in memory.
    const decoders = Math.max(1, Math.min(options.concurrency, availableParallelism() + 1));
    const prepareSlots = pLimit(decoders);

    const writeRecord = async (record: CaptionRecord, copyOf: string | null): Promise<boolean> => {
      try {
        await out?.write(record);
      } catch (error) {
        abortRun(
          new RunAbortedError(
            "output_write_failed",
            `cannot write to ${options.output} (${describeErrno(errnoOf(error))}); the rows written so far are kept, rerun to resume once fixed`,
            { cause: error },
          ),
        );
        return false;
      }
      summary.captioned += 1;
      if (copyOf !== null) summary.copies += 1;
      emit({ type: "captioned", record, copyOf });
      return true;
    };

    const recordFailure = async (failure: FailureRecord) => {
      summary.failed += 1;
      emit({ type: "failed", failure });
      if (dryRun) return;
      try {
        // Opened once, on the first failure, however many arrive together.
        errorsOpening ??= createFolderOf(options.errorsPath).then(() =>
          openJsonlWriter<FailureRecord>(options.errorsPath),
        );
        await (await errorsOpening).write(failure);
      } catch (error) {
        summary.errorsFileProblem ??= describeErrno(errnoOf(error));
        abortRun(
          new RunAbortedError(
            "errors_not_writable",
            `cannot write the errors file ${options.errorsPath} (${describeErrno(errnoOf(error))}); pass --errors with a writable path`,
            { cause: error },
          ),
        );
      }
    };

    const leaveUnfinished = (task: ImageTask): ImageOutcome => {
      summary.unfinished += 1;
      emit({ type: "unfinished", path: task.path });
      return { kind: "unfinished" };
    };

    const prepare = async (
      task: ImageTask,
      maxPixels: number,
      bytes?: Buffer,
    ): Promise<PreparedImage | FailureRecord> => {
      try {
        const image = await prepareSlots(() =>
          prepareImage(task.absPath, { ...options.prepare, maxPixels }, bytes),
        );
        const { dataUrl: _, ...shape } = image;
        emit({ type: "prepared", path: task.path, image: shape });
        return image;
      } catch (error) {
        return failureOf(task, error, 0, options.apiKey);
      }
    };

    /** Sends one prepared image and records the result; a 413 gets one more try, smaller. */
    const sendOne = async (work: PreparedWork): Promise<ImageOutcome> => {
      const { task, sha256 } = work;
      let image = work.image;
      for (let shrunk = false; ; shrunk = true) {
        const request = encodeCaptionRequest(image.dataUrl, requestOptions);
        const outcome = await sendWithRetries(request, task.path, send);
        if (outcome.kind === "unfinished") {
          if (outcome.abort) abortRun(outcome.abort);
          return leaveUnfinished(task);
        }
        if (outcome.kind === "failed") {
          if (!shrunk && outcome.error instanceof ApiError && outcome.error.status === 413) {
            const maxPixels = Math.max(
              1024,
              Math.floor(image.width * image.height * SHRINK_ON_413),
            );
            emit({
              type: "retrying",
              path: task.path,
              attempt: outcome.attempts,
              delayMs: 0,
              reason: `${messageOf(outcome.error)}; sending it again at ${maxPixels} pixels`,
            });
            const smaller = await prepare(task, maxPixels);
            if ("dataUrl" in smaller) {
              image = smaller;
              continue;
            }
          }
          const failure = failureOf(task, outcome.error, outcome.attempts, options.apiKey);
          await recordFailure(failure);
          return { kind: "failed", failure };
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
          sha256,
        };
        if (!(await writeRecord(record, null))) return leaveUnfinished(task);
        return { kind: "captioned", stored: record };
      }
    };

    /** Gives a copy of an already-handled image the same result, without a request. */
    const settleCopy = async (task: ImageTask, sha256: string, earlier: ImageOutcome) => {
      if (earlier.kind === "dry") return;
      if (earlier.kind === "unfinished") {
        if (!dryRun) leaveUnfinished(task);
        return;
      }
      if (earlier.kind === "failed") {
        await recordFailure({
          ...earlier.failure,
          path: task.path,
          created_at: new Date().toISOString(),
        });
        return;
      }
      if (dryRun) return;
      if (!(await writeRecord(copyRecord(task, sha256, earlier.stored), earlier.stored.path))) {
        leaveUnfinished(task);
      }
    };

    // Prepared images wait here for a sender. Room is reserved before preparing, so at most
    // `prefetch` images are prepared ahead of the `concurrency` being sent.
    const prefetch = decoders;
    const queue = new BoundedQueue<PreparedWork>(prefetch);
    const waitingCopies = new Set<Promise<void>>();

    /** Hashes, dedupes and prepares one image, then hands it to the senders. */
    const produce = async (
      task: ImageTask,
      sha256: string,
      bytes: Buffer | undefined,
      settle: Settle,
    ): Promise<void> => {
      if (!dryRun && !(await queue.reserve())) {
        settle(leaveUnfinished(task));
        return;
      }
      // Room came free because a stop is draining the queue: decoding now would be thrown away.
      if (!dryRun && control.stopSignal.aborted) {
        queue.cancel();
        settle(leaveUnfinished(task));
        return;
      }
      const image = await prepare(task, options.prepare.maxPixels, bytes);
      if (!("dataUrl" in image)) {
        if (!dryRun) queue.cancel();
        await recordFailure(image);
        settle({ kind: "failed", failure: image });
        return;
      }
      if (dryRun) {
        summary.prepared += 1;
        summary.preparedBytes += image.bytes;
        settle({ kind: "dry" });
        return;
      }
      queue.push({ task, sha256, image, settle });
    };

    const intake = async (task: ImageTask): Promise<void> => {
      const read = await readAndHash(task.absPath);
      // Unreadable: preparing it from its path produces the error that says why.
      if (read === null) return produce(task, "", undefined, () => {});
      const { sha256, bytes } = read;
      const claim = duplicates.begin(sha256);
      if (claim.first) return produce(task, sha256, bytes, claim.settle);
      // A copy holds no image while it waits for the first of its bytes to finish, and the
      // producer goes on to the next file meanwhile.
      const waiting = claim.outcome
        .then(async (earlier) => {
          if (earlier) await settleCopy(task, sha256, earlier);
          else await produce(task, sha256, undefined, () => {});
        })
        .finally(() => waitingCopies.delete(waiting));
      waitingCopies.add(waiting);
    };

    const producer = async () => {
      while (!control.stopSignal.aborted) {
        const task = todo[cursor];
        if (!task) return;
        cursor += 1;
        await intake(task);
      }
    };
    const sender = async () => {
      for (let work = await queue.shift(); work; work = await queue.shift()) {
        // Once a stop is asked for, prepared images are left for the next run, not sent.
        if (control.stopSignal.aborted) {
          work.settle(leaveUnfinished(work.task));
          continue;
        }
        try {
          work.settle(await sendOne(work));
        } catch (error) {
          // Copies waiting on this image must not wait forever.
          work.settle(leaveUnfinished(work.task));
          throw error;
        }
      }
    };
    const senders = Promise.all(
      dryRun
        ? []
        : Array.from({ length: Math.min(options.concurrency, todo.length) }, () => sender()),
    );
    // Handled now, so a failing sender cannot become an unhandled rejection while producers run.
    senders.catch(() => {});
    // Whatever happens to the producers, the senders are let finish before OUT is closed.
    let producerFailure: unknown = null;
    try {
      await Promise.all(Array.from({ length: Math.min(prefetch, todo.length) }, () => producer()));
      while (waitingCopies.size > 0) await Promise.all([...waitingCopies]);
    } catch (error) {
      producerFailure = error;
    } finally {
      queue.close();
    }
    await senders;
    if (producerFailure) throw producerFailure;
  } finally {
    const errors = await (errorsOpening as Promise<RecordWriter<FailureRecord>> | null)?.catch(
      () => null,
    );
    await Promise.allSettled([out?.close(), errors?.close()]);
    await lock?.release().catch(() => {});
  }
  if (!dryRun) summary.unfinished += todo.length - cursor;
  summary.stopped = control.stopSignal.aborted && summary.aborted === null;
  summary.elapsedMs = Math.round(performance.now() - started);
  return summary;
}

type Settle = (outcome: ImageOutcome) => void;

/** An image prepared and waiting for a sender, with the hook that tells its copies how it ended. */
interface PreparedWork {
  task: ImageTask;
  sha256: string;
  image: PreparedImage;
  settle: Settle;
}

function copyRecord(task: ImageTask, sha256: string, stored: StoredCaption): CaptionRecord {
  return {
    path: task.path,
    caption: stored.caption,
    model: stored.model,
    width: stored.width,
    height: stored.height,
    prompt_tokens: null,
    completion_tokens: null,
    attempts: 0,
    latency_ms: 0,
    truncated: stored.truncated,
    created_at: new Date().toISOString(),
    sha256,
  };
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

/** OUT and the errors file are read and appended to: a pipe or a device there would hang the run. */
async function refuseSpecialFiles(options: RunOptions): Promise<void> {
  const problems: string[] = [];
  const output = await outputFileProblem(options.output);
  if (output) problems.push(`-o/--output: ${options.output} ${output}`);
  const errors = await outputFileProblem(options.errorsPath);
  if (errors) problems.push(`--errors: ${options.errorsPath} ${errors}`);
  if (problems.length > 0) throw new UsageError(problems);
}

/**
 * Clears the last run's errors file and makes sure a new one can be written, before any image is
 * sent: finding out at the first failure would leave that failure nowhere but on stderr.
 */
async function probeErrorsFile(errorsPath: string): Promise<void> {
  try {
    await rm(errorsPath, { force: true });
    await createFolderOf(errorsPath);
    await (await open(errorsPath, "wx")).close();
    await unlink(errorsPath);
  } catch (error) {
    throw new RunAbortedError(
      "errors_not_writable",
      `cannot create the errors file ${errorsPath} (${describeErrno(errnoOf(error))}); pass --errors with a writable file path`,
      { cause: error },
    );
  }
}

async function createFolderOf(file: string): Promise<void> {
  await ensureFolder(path.dirname(file));
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
