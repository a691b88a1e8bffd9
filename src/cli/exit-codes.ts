import { UsageError } from "../errors.js";
import type { RunSummary } from "../run/events.js";

/** Exit codes, as docs/failures.md documents them. */
export const EXIT = {
  ok: 0,
  aborted: 1,
  usage: 2,
  someFailed: 3,
  budget: 4,
  interrupted: 130,
  terminated: 143,
} as const;

/**
 * How a command ended: an error; a run (null when it was abandoned after a signal); a check of a
 * server; a merge; a worker (settled: it stopped by itself, for a reason every shard would share).
 */
export type Outcome =
  /** A command that did all it was asked: showed settings or a status, enqueued, wrote a report. */
  | { done: true }
  | { error: unknown }
  | { summary: RunSummary | null; stoppedBy: NodeJS.Signals | null }
  /** A check of servers: each answered, and none refused the model as not served (usage). */
  | { answered: boolean; refused?: boolean }
  /** A merge: every image of the finished shards has its caption. */
  | { mergedAll: boolean }
  | { settled: boolean; stoppedBy: NodeJS.Signals | null; budgetReached?: boolean };

/** The one place an outcome becomes an exit code, as docs/failures.md's table lists them. */
export function exitCodeOf(outcome: Outcome): number {
  if ("done" in outcome) return EXIT.ok;
  if ("error" in outcome) return outcome.error instanceof UsageError ? EXIT.usage : EXIT.aborted;
  if ("answered" in outcome) {
    if (outcome.refused) return EXIT.usage;
    return outcome.answered ? EXIT.ok : EXIT.aborted;
  }
  if ("mergedAll" in outcome) return outcome.mergedAll ? EXIT.ok : EXIT.someFailed;
  if ("settled" in outcome) {
    if (outcome.settled) return EXIT.aborted;
    return signalCode(outcome.stoppedBy) ?? (outcome.budgetReached ? EXIT.budget : EXIT.ok);
  }
  const { summary, stoppedBy } = outcome;
  // The server's own word that the model id is wrong: as much a usage error as a bad flag.
  if (summary?.aborted?.code === "model_not_found") return EXIT.usage;
  if (summary?.aborted) return EXIT.aborted;
  if (stoppedBy) return signalCode(stoppedBy) ?? EXIT.interrupted;
  if (!summary) return EXIT.interrupted;
  // Images are left, as after a signal, but for a reason the user set: a rerun goes on.
  if (summary.budgetReached) return EXIT.budget;
  return summary.failed > 0 ? EXIT.someFailed : EXIT.ok;
}

/** 128 + the signal's number, for the two signals a run stops on; null for none. */
function signalCode(signal: NodeJS.Signals | null): number | null {
  if (signal === null) return null;
  return signal === "SIGTERM" ? EXIT.terminated : EXIT.interrupted;
}
