import { ApiError, CaptionError, RunAbortedError } from "../errors.js";
import type { ImageOutcome } from "../prepare/dedupe.js";
import type { Sink } from "../sinks/sink.js";
import { redactRecord } from "../trust/keys.js";
import type { CaptionRecord, FailureRecord, ImageTask, PreparedImage, Usage } from "../types.js";
import { describeErrno, errnoOf } from "../util/folders.js";
import { messageOf } from "../util/message.js";
import { redactSecret } from "../util/redact.js";
import {
  addUsage,
  type Budget,
  budgetPassed,
  costOf,
  type Prices,
  type SharedSpend,
  spentOf,
} from "./budget.js";
import type { RunControl } from "./control.js";

import {
  type ContextOverflows,
  emptySummary,
  type RunEvent,
  type RunSummary,
  type TokenTotals,
} from "./events.js";

/**
 * The run's state, owned in one place: the summary's counts, the events that report them, and
 * the hand-over of every result to the sinks. Stages report what happened here; nothing else
 * counts or emits.
 */
export class RunState {
  readonly summary: RunSummary = emptySummary();
  readonly control: RunControl;
  readonly #sink: Sink;
  readonly #emit: (event: RunEvent) => void;
  readonly #secrets: readonly (string | undefined)[];
  readonly #started = performance.now();
  readonly #preview: boolean;
  readonly #budget: Budget;
  readonly #shared: SharedSpend | undefined;

  constructor(options: {
    sink: Sink;
    control: RunControl;
    onEvent?: ((event: RunEvent) => void) | undefined;
    /** Masked out of every caption and message kept, in case a server echoes one. */
    secrets?: readonly (string | undefined)[] | undefined;
    /** A dry run: what is counted is what would be sent; copies would need no request. */
    preview?: boolean | undefined;
    /** Where the run stops sending: its tokens, in and out, or their cost. */
    budget?: Budget | undefined;
    /** Spending shared with other runs, which the budget is then judged on. */
    shared?: SharedSpend | undefined;
  }) {
    this.#budget = options.budget ?? {};
    this.#shared = options.shared;
    this.#preview = options.preview ?? false;
    this.#sink = options.sink;
    this.control = options.control;
    this.#emit = options.onEvent ?? (() => {});
    this.#secrets = options.secrets ?? [];
  }

  emit(event: RunEvent): void {
    // What a server said, retold: the reason for a retry, a warning about an endpoint.
    if (event.type === "retrying") {
      this.#emit({ ...event, reason: redactSecret(event.reason, this.#secrets) });
    } else if (event.type === "warning") {
      this.#emit({ ...event, message: redactSecret(event.message, this.#secrets) });
    } else this.#emit(event);
  }

  discovered(found: number, todo: number, repairedBytes: number, emptyInputs: string[]): void {
    Object.assign(this.summary, { found, alreadyDone: found - todo, emptyInputs });
    this.#emit({
      type: "discovered",
      found,
      alreadyDone: found - todo,
      todo,
      repairedBytes,
      emptyInputs,
    });
  }

  /** What one answer cost, as its server counted it, at its endpoint's prices if it has any. */
  spent(usage: Usage, prices: Prices): void {
    if (!addUsage(this.summary.tokens, usage, prices)) return;
    const totals = this.#shared?.add(usage, costOf(usage, prices)) ?? this.summary.tokens;
    this.#judge(totals);
  }

  /**
   * Before anything is sent: spending shared with other runs may have passed the budget already
   * (another worker's answers), and then nothing is sent at all; afterwards, each time the
   * others' spending is learned. Returns the end of that watch, for the run's end.
   */
  judgeShared(): () => void {
    if (!this.#shared) return () => {};
    this.#judge(this.#shared.current());
    return this.#shared.watch?.((totals) => this.#judge(totals)) ?? (() => {});
  }

  #judge(totals: TokenTotals): void {
    // Stopped already (a signal, or the budget): answers still in flight change nothing.
    if (this.control.stopSignal.aborted) return;
    const reached = budgetPassed(totals, this.#budget);
    if (reached === null) return;
    this.summary.budgetReached = reached;
    this.control.stop();
    this.#emit({
      type: "warning",
      message: `the ${reached.kind === "tokens" ? "token" : "cost"} budget is about to be passed: nothing new is sent, what is in flight finishes`,
    });
  }

  /** Ends the run early for the reason given; the first reason is the one reported. */
  abort(error: RunAbortedError): void {
    this.summary.aborted ??= error;
    this.control.abort();
  }

  /**
   * Keeps a caption; false when no sink could keep it (the run is then aborted). The one place a
   * caption reaches the sinks and the events: the run's keys are masked out of it here.
   */
  async captioned(answered: CaptionRecord, copyOf: string | null): Promise<boolean> {
    if (this.#preview) return true;
    const record = redactRecord(answered, this.#secrets);
    try {
      await this.#sink.write(record);
    } catch (error) {
      this.abort(asAbort(error));
      return false;
    }
    this.summary.captioned += 1;
    for (const flag of record.flags) {
      this.summary.flagged[flag] = (this.summary.flagged[flag] ?? 0) + 1;
    }
    if (copyOf !== null) this.summary.copies += 1;
    else if (record.endpoint !== "") {
      const answered = this.summary.byEndpoint;
      answered[record.endpoint] = (answered[record.endpoint] ?? 0) + 1;
    }
    this.#emit({ type: "captioned", record, copyOf });
    return true;
  }

  async failed(failure: FailureRecord): Promise<void> {
    this.summary.failed += 1;
    this.#emit({ type: "failed", failure });
    try {
      await this.#sink.fail(failure);
    } catch (error) {
      const abort = asAbort(error);
      if (abort.code === "errors_not_writable") {
        this.summary.errorsFileProblem ??= describeErrno(errnoOf(abort.cause));
      }
      this.abort(abort);
    }
  }

  /** The image's work ended without a result; a rerun picks it up. */
  unfinished(task: ImageTask): ImageOutcome {
    this.summary.unfinished += 1;
    this.#emit({ type: "unfinished", path: task.path });
    return { kind: "unfinished" };
  }

  prepared(task: ImageTask, image: PreparedImage): void {
    const { mime, width, height, original, bytes } = image;
    this.#emit({
      type: "prepared",
      path: task.path,
      image: { mime, width, height, original, bytes },
    });
  }

  /** A dry run counts what would be sent instead of sending it. */
  previewed(image: PreparedImage): void {
    this.summary.prepared += 1;
    this.summary.preparedBytes += image.bytes;
  }

  /** An endpoint ran out of shared context with `from` in flight; `to` are allowed now. */
  overflowed(endpoint: string, from: number, to: number): void {
    const seen = this.#overflowsAt(endpoint, from);
    seen.to = Math.min(seen.to, to);
    seen.times += 1;
  }

  /** A request to `endpoint` sent again after it ran out of context, costing no attempt. */
  resentForContext(endpoint: string, allowed: number): void {
    this.#overflowsAt(endpoint, allowed).resent += 1;
  }

  #overflowsAt(endpoint: string, allowed: number): ContextOverflows {
    const seen = this.summary.contextOverflows[endpoint] ?? {
      from: allowed,
      to: allowed,
      times: 0,
      resent: 0,
    };
    this.summary.contextOverflows[endpoint] = seen;
    return seen;
  }

  retrying(path: string, attempt: number, delayMs: number, error: unknown): void {
    this.emit({ type: "retrying", path, attempt, delayMs, reason: messageOf(error) });
  }

  /** The errors-file row for an image that could not be captioned. */
  failureOf(task: ImageTask, error: unknown, attempts: number): FailureRecord {
    const status = error instanceof ApiError ? error.status : null;
    let message = messageOf(error);
    if (error instanceof ApiError && attempts > 1) message += ` (after ${attempts} attempts)`;
    return {
      path: task.path,
      code: error instanceof CaptionError ? error.code : "internal_error",
      message: redactSecret(message, this.#secrets),
      attempts,
      status,
      created_at: new Date().toISOString(),
    };
  }

  /** The summary once the run is over; `neverTaken` images were not reached at all. */
  finish(neverTaken: number): RunSummary {
    this.summary.unfinished += neverTaken;
    // Whether the budget, not the caller, stopped the sending.
    const byBudget = this.summary.budgetReached !== null;
    // A budget that held nothing back (the last images were in flight) did not stop the run.
    if (this.summary.unfinished === 0) this.summary.budgetReached = null;
    const reached = this.summary.budgetReached;
    // What was spent in the end, the answers in flight when it stopped included.
    if (reached) {
      reached.spent = spentOf(this.#shared?.current() ?? this.summary.tokens, reached.kind);
    }
    this.summary.stopped =
      this.control.stopSignal.aborted && this.summary.aborted === null && !byBudget;
    this.summary.elapsedMs = Math.round(performance.now() - this.#started);
    return this.summary;
  }
}

function asAbort(error: unknown): RunAbortedError {
  return error instanceof RunAbortedError
    ? error
    : new RunAbortedError("output_write_failed", messageOf(error), { cause: error });
}
