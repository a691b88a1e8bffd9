import type { ConcurrencyCause } from "../send/limiter-options.js";
import type { CaptionRecord, FailureRecord, PreparedImage } from "../types.js";

/** What a run reports as it goes; the CLI's reporter is one listener. */
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
  | { type: "prepared"; path: string; image: Omit<PreparedImage, "dataUrl" | "data"> }
  | { type: "retrying"; path: string; attempt: number; delayMs: number; reason: string }
  | { type: "captioned"; record: CaptionRecord; copyOf: string | null }
  | { type: "failed"; failure: FailureRecord }
  /** The image's work ended without a result (the run was stopped or aborted); a rerun picks it up. */
  | { type: "unfinished"; path: string }
  | { type: "warning"; message: string }
  /** The server rate-limited us and the allowed concurrency changed (or grew back). */
  | { type: "concurrency"; allowed: number; cause: ConcurrencyCause };

/**
 * Why a run ended early: a RunAbortedError (errors.ts), named here by its shape so that the two
 * modules need not import each other.
 */
export interface RunAbort extends Error {
  readonly code: string;
  summary: RunSummary | null;
}

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
  /** Why the run ended early, if it did: a RunAbortedError. */
  aborted: RunAbort | null;
  /** True when stop() was called. */
  stopped: boolean;
  /** Why failures could not be written to the errors file, when they could not. */
  errorsFileProblem: string | null;
  /** Inputs that hold no image at all: probably a typo in a path or pattern. */
  emptyInputs: readonly string[];
  /** Captions kept with flags (repetition, refusal, truncated), by flag. */
  flagged: Record<string, number>;
  /** Images each endpoint answered (copies aside), by `host:port`. */
  byEndpoint: Record<string, number>;
  /**
   * Endpoints that ran out of the context their requests in flight share, by `host:port`: the
   * concurrency allowed before the first cut, the lowest it was cut to, how many times it was
   * cut, and how many requests were sent again for it at no cost to their attempts.
   */
  contextOverflows: Record<string, ContextOverflows>;
  /** What the servers said the answers of this run cost, kept or not; copies cost nothing. */
  tokens: TokenTotals;
  /**
   * The budget that stopped the run (`budgetTokens`, `budgetCost`), and what the run spent in the
   * end, the answers in flight when it stopped included.
   */
  budgetReached: BudgetReached | null;
}

/** Which budget stopped the run, its limit, and what was spent of it. */
export interface BudgetReached {
  kind: "tokens" | "cost";
  limit: number;
  spent: number;
}

export interface TokenTotals {
  /** Answers whose reply reported a usage at all. */
  answers: number;
  promptTokens: number;
  completionTokens: number;
  /** Of the completion tokens, those spent reasoning, where the server said. */
  reasoningTokens: number;
  /**
   * What they cost at the prices given (`inputPrice`, `outputPrice`, per million tokens); null
   * when no endpoint has a price.
   */
  cost: number | null;
}

export interface ContextOverflows {
  from: number;
  to: number;
  times: number;
  resent: number;
}

export function emptySummary(): RunSummary {
  return {
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
    flagged: {},
    byEndpoint: {},
    contextOverflows: {},
    tokens: { answers: 0, promptTokens: 0, completionTokens: 0, reasoningTokens: 0, cost: null },
    budgetReached: null,
  };
}
