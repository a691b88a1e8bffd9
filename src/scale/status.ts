import { Queue } from "bullmq";
import type { Redis } from "ioredis";
import type { TokenTotals } from "../run/events.js";
import { formatCost } from "../util/cost.js";
import { type QueueProgress, readProgress } from "./progress.js";
import type { HeldBack } from "./shard-job.js";
import { type QueueBudget, readQueueBudget, readQueueSpent } from "./shared-spend.js";

/** Shards looked at one by one (active, failed, delayed): a page, not the whole queue. */
const LISTED = 100;

export interface QueueStatus {
  queue: string;
  shards: { waiting: number; active: number; completed: number; failed: number; delayed: number };
  /** Shards being captioned, by whom, and how far each is. */
  active: { id: string; worker: string | null; done: number; total: number }[];
  /** Failed shards with why, as BullMQ kept it (after its retries). */
  failed: { id: string; reason: string; attempts: number }[];
  /**
   * Delayed shards and why: waiting out the backoff after a failure of their own files
   * ("retrying", with that failure), or for another run to let go of their output ("locked").
   * A shard given back (SIGINT, SIGTERM, a worker's endpoints or key) is waiting, not delayed.
   */
  delayed: { id: string; why: "retrying" | HeldBack; reason: string }[];
  images: QueueProgress;
  /** The budget given at enqueue, and what the workers spent of it; null without one. */
  budget: (QueueBudget & { spent: TokenTotals }) | null;
}

/** What the queue holds now: shards by state, who has which, images done and per second. */
export async function queueStatus(redis: Redis, name: string): Promise<QueueStatus> {
  const queue = new Queue(name, { connection: redis });
  try {
    const counts = await queue.getJobCounts(
      "wait",
      "prioritized",
      "active",
      "completed",
      "failed",
      "delayed",
    );
    const active = await queue.getActive(0, LISTED - 1);
    const failed = await queue.getFailed(0, LISTED - 1);
    const delayed = await queue.getDelayed(0, LISTED - 1);
    return {
      queue: name,
      shards: {
        waiting: (counts.wait ?? 0) + (counts.prioritized ?? 0),
        active: counts.active ?? 0,
        completed: counts.completed ?? 0,
        failed: counts.failed ?? 0,
        delayed: counts.delayed ?? 0,
      },
      active: active.map((job) => {
        const progress = (job.progress ?? {}) as { worker?: string; done?: number; total?: number };
        return {
          id: String(job.id),
          worker: progress.worker ?? null,
          done: progress.done ?? 0,
          total: progress.total ?? 0,
        };
      }),
      failed: failed.map((job) => ({
        id: String(job.id),
        reason: job.failedReason ?? "",
        attempts: job.attemptsMade,
      })),
      delayed: delayed.map((job) => {
        const progress = (job.progress ?? {}) as { heldBack?: HeldBack };
        return progress.heldBack === "locked"
          ? { id: String(job.id), why: "locked" as const, reason: "another run writes its output" }
          : { id: String(job.id), why: "retrying" as const, reason: job.failedReason ?? "" };
      }),
      images: await readProgress(redis, name),
      budget: await budgetStatus(redis, name),
    };
  } finally {
    await queue.close();
  }
}

async function budgetStatus(redis: Redis, name: string): Promise<QueueStatus["budget"]> {
  const budget = await readQueueBudget(redis, name);
  return budget ? { ...budget, spent: await readQueueSpent(redis, name) } : null;
}

/** The status as lines for a person. */
export function statusLines(status: QueueStatus): string[] {
  const { shards, images } = status;
  const locked = status.delayed.filter((shard) => shard.why === "locked").length;
  // Beyond the page looked at, a delayed shard is taken for the common case: a backoff.
  const retrying = shards.delayed - locked;
  const delayed = [
    retrying > 0 ? `${retrying} delayed (retrying after a failure)` : null,
    locked > 0 ? `${locked} delayed (another run holds its output)` : null,
  ].filter(Boolean);
  const lines = [
    `queue ${status.queue}: ${[
      `${shards.waiting} shards waiting`,
      `${shards.active} active`,
      `${shards.completed} completed`,
      `${shards.failed} failed`,
      ...delayed,
    ].join(", ")}`,
    `images: ${images.done} of ${images.total} done, ${images.perSecond.toFixed(1)}/s over the last minute`,
  ];
  const { budget } = status;
  if (budget) {
    const tokens = budget.spent.promptTokens + budget.spent.completionTokens;
    const limits = [
      budget.tokens === undefined ? null : `${tokens} of ${budget.tokens} tokens`,
      budget.cost === undefined ? null : `${formatCost(budget.spent.cost ?? 0)} of ${budget.cost}`,
    ].filter(Boolean);
    lines.push(
      `budget: ${limits.length > 0 ? limits.join(", ") : `${tokens} tokens`} spent by the workers${budget.spent.cost !== null && budget.cost === undefined ? `, cost ${formatCost(budget.spent.cost)}` : ""}`,
    );
  }
  for (const shard of status.active) {
    lines.push(`  active ${shard.id}: ${shard.done}/${shard.total} on ${shard.worker ?? "?"}`);
  }
  for (const shard of status.failed) {
    lines.push(`  failed ${shard.id} after ${shard.attempts} attempts: ${shard.reason}`);
  }
  for (const shard of status.delayed) {
    lines.push(
      `  delayed ${shard.id}: ${shard.why === "locked" ? shard.reason : `retrying after: ${shard.reason}`}`,
    );
  }
  return lines;
}
