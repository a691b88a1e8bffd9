import type { Redis } from "ioredis";

/** How far back `caption status` looks for its images per second. */
export const RATE_WINDOW_MS = 60_000;

const shardsDoneKey = (queue: string) => `caption:${queue}:shards-done`;
const ticksKey = (queue: string) => `caption:${queue}:ticks`;
const totalKey = (queue: string) => `caption:${queue}:total`;

/** Images a worker finished (captioned or failed) since it last said: the images per second. */
export async function tickFinished(redis: Redis, queue: string, images: number): Promise<void> {
  const now = Date.now();
  await redis
    .multi()
    .zadd(ticksKey(queue), now, `${now}:${images}:${Math.random().toString(36).slice(2, 8)}`)
    .zremrangebyscore(ticksKey(queue), 0, now - 5 * RATE_WINDOW_MS)
    .exec();
}

/**
 * How many images of a shard have a row or a failure on disk, as a figure set rather than added
 * to: whoever takes a shard over (from a killed worker, whose last rows it never counted) counts
 * what the shard's files hold, so the sum is what `caption merge` writes.
 */
export async function setShardDone(
  redis: Redis,
  queue: string,
  shard: string,
  images: number,
): Promise<void> {
  await redis.hset(shardsDoneKey(queue), shard, String(images));
}

/** A shard's figure from its done file, unless a worker has already set it. */
export async function seedShardDone(
  redis: Redis,
  queue: string,
  shard: string,
  images: number,
): Promise<void> {
  await redis.hsetnx(shardsDoneKey(queue), shard, String(images));
}

/** Images in all shards enqueued so far. */
export async function setEnqueued(redis: Redis, queue: string, images: number): Promise<void> {
  await redis.set(totalKey(queue), String(images));
}

export interface QueueProgress {
  /** Images with a row or a failure in their shard's files: what merge writes. */
  done: number;
  total: number;
  /** Images finished per second over the last minute. */
  perSecond: number;
}

export async function readProgress(redis: Redis, queue: string): Promise<QueueProgress> {
  const now = Date.now();
  const [shards, total, ticks] = await Promise.all([
    redis.hvals(shardsDoneKey(queue)),
    redis.get(totalKey(queue)),
    redis.zrangebyscore(ticksKey(queue), now - RATE_WINDOW_MS, "+inf"),
  ]);
  const done = shards.reduce((sum, images) => sum + Number(images), 0);
  const recent = ticks.reduce((sum, tick) => sum + Number(tick.split(":")[1] ?? 0), 0);
  // A tick holds about a second of work; a run younger than the window is measured over its age.
  const first = ticks.length > 0 ? Number(ticks[0]?.split(":")[0]) : now;
  const seconds = Math.min(RATE_WINDOW_MS, now - first + 1000) / 1000;
  return { done, total: Number(total ?? 0), perSecond: recent / seconds };
}
