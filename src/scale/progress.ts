import type { Redis } from "ioredis";

/** How far back `caption status` looks for its images per second. */
export const RATE_WINDOW_MS = 60_000;

const doneKey = (queue: string) => `caption:${queue}:done`;
const ticksKey = (queue: string) => `caption:${queue}:ticks`;
const totalKey = (queue: string) => `caption:${queue}:total`;

/** Images a worker finished (captioned or failed) since it last said. */
export async function countDone(redis: Redis, queue: string, images: number): Promise<void> {
  const now = Date.now();
  await redis
    .multi()
    .incrby(doneKey(queue), images)
    .zadd(ticksKey(queue), now, `${now}:${images}:${Math.random().toString(36).slice(2, 8)}`)
    .zremrangebyscore(ticksKey(queue), 0, now - 5 * RATE_WINDOW_MS)
    .exec();
}

/** Images in all shards enqueued so far. */
export async function setEnqueued(redis: Redis, queue: string, images: number): Promise<void> {
  await redis.set(totalKey(queue), String(images));
}

export interface QueueProgress {
  /** Images finished, over every worker and attempt. */
  done: number;
  total: number;
  /** Images finished per second over the last minute. */
  perSecond: number;
}

export async function readProgress(redis: Redis, queue: string): Promise<QueueProgress> {
  const now = Date.now();
  const [done, total, ticks] = await Promise.all([
    redis.get(doneKey(queue)),
    redis.get(totalKey(queue)),
    redis.zrangebyscore(ticksKey(queue), now - RATE_WINDOW_MS, "+inf"),
  ]);
  const recent = ticks.reduce((sum, tick) => sum + Number(tick.split(":")[1] ?? 0), 0);
  // A tick holds about a second of work; a run younger than the window is measured over its age.
  const first = ticks.length > 0 ? Number(ticks[0]?.split(":")[0]) : now;
  const seconds = Math.min(RATE_WINDOW_MS, now - first + 1000) / 1000;
  return { done: Number(done ?? 0), total: Number(total ?? 0), perSecond: recent / seconds };
}
