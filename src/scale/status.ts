import { Queue } from "bullmq";
import type { Redis } from "ioredis";
import { type QueueProgress, readProgress } from "./progress.js";

export interface QueueStatus {
  queue: string;
  shards: { waiting: number; active: number; completed: number; failed: number; delayed: number };
  /** Shards being captioned, by whom, and how far each is. */
  active: { id: string; worker: string | null; done: number; total: number }[];
  /** Failed shards with why, as BullMQ kept it (after its retries). */
  failed: { id: string; reason: string; attempts: number }[];
  images: QueueProgress;
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
    const active = await queue.getActive(0, 99);
    const failed = await queue.getFailed(0, 99);
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
      images: await readProgress(redis, name),
    };
  } finally {
    await queue.close();
  }
}

/** The status as lines for a person. */
export function statusLines(status: QueueStatus): string[] {
  const { shards, images } = status;
  const lines = [
    `queue ${status.queue}: ${shards.waiting} shards waiting, ${shards.active} active, ${shards.completed} completed, ${shards.failed} failed${shards.delayed ? `, ${shards.delayed} delayed (retrying)` : ""}`,
    `images: ${images.done} of ${images.total} done, ${images.perSecond.toFixed(1)}/s over the last minute`,
  ];
  for (const shard of status.active) {
    lines.push(`  active ${shard.id}: ${shard.done}/${shard.total} on ${shard.worker ?? "?"}`);
  }
  for (const shard of status.failed) {
    lines.push(`  failed ${shard.id} after ${shard.attempts} attempts: ${shard.reason}`);
  }
  return lines;
}
