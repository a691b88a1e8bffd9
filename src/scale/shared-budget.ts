import type { Redis } from "ioredis";
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes } from "rate-limiter-flexible";
import { readRateHeaders } from "../send/rate-headers.js";
import type { RequestBudget } from "../send/request-budget.js";
import { sleep } from "../util/sleep.js";

/** How often a worker rereads the pace the workers learned together. */
const PACE_REFRESH_MS = 500;
/** The learned pace climbs this much a second without a 429, to find a limit that was raised. */
const PROBE_PER_SECOND = 0.02;
/** Just under a rate the headers give: requests that leave evenly spaced do not all arrive so. */
const TOLD_MARGIN = 0.97;
/** A pace learned is forgotten after an hour without a refusal to renew it. */
const PACE_KEPT_S = 3600;

/**
 * One endpoint's request budget, shared by every worker of a queue through Redis, so ten workers
 * on one key send what the key allows in all, not ten times it.
 *
 * With an rpm it is that rate, enforced by rate-limiter-flexible in windows of a second (or a
 * minute below 60 rpm), which keeps bursts within what a gateway's bucket holds; a rate that does
 * not divide into seconds is rounded down, never up. Without one, the rate is learned from the
 * server's 429s by all the workers together: a refusal pauses every worker for its Retry-After,
 * and the pace becomes what the server accepted from all of them over the last full second,
 * climbing 2 % a second from there until the next refusal. While Redis is away each worker keeps
 * to the rate on its own (the insurance limiter).
 */
export function sharedBudget(
  redis: Redis,
  endpoint: { label: string },
  /** The key's id in Redis names (`trust/key-id.ts`): never the key, nor a fast hash of it. */
  keyId: string,
  rpm: number | undefined,
): RequestBudget {
  // One budget per endpoint and key, whatever queue its workers serve: a gateway limits the key.
  const prefix = `caption:budget:${endpoint.label}:${keyId}`;
  // A shard goes on while Redis is away: nothing here may wait for it to come back.
  const ready = () => redis.status === "ready";
  const limiterFor = (perSecond: number) => {
    const whole = Math.floor(perSecond);
    const [points, duration] =
      whole >= 1 ? [whole, 1] : [Math.max(1, Math.floor(perSecond * 60)), 60];
    return new RateLimiterRedis({
      storeClient: redis,
      keyPrefix: `${prefix}:window`,
      points,
      duration,
      insuranceLimiter: new RateLimiterMemory({ points, duration }),
      // While Redis is away, the insurance limiter answers at once instead of waiting for it.
      rejectIfRedisNotReady: true,
    });
  };
  const fixed = rpm ? limiterFor(rpm / 60) : null;
  let learned: { perSecond: number; limiter: RateLimiterRedis } | null = null;
  let readAt = 0;
  /** The last rate this worker stored from the server's headers. */
  let told_: number | null = null;

  /** The pace learned so far (null: no limit met yet), reread every PACE_REFRESH_MS. */
  async function currentLimiter(): Promise<RateLimiterRedis | null> {
    if (fixed) return fixed;
    const now = Date.now();
    if (now - readAt < PACE_REFRESH_MS || !ready()) return learned?.limiter ?? null;
    readAt = now;
    const stored = await redis
      .hgetall(`${prefix}:pace`)
      .catch(() => ({}) as Record<string, string>);
    const base = Number(stored.base);
    const since = Number(stored.since);
    if (!Number.isFinite(base) || base <= 0 || !Number.isFinite(since)) {
      learned = null;
      return null;
    }
    // A rate the server's headers gave is not probed beyond.
    const growth =
      stored.told === "1" ? 1 : (1 + PROBE_PER_SECOND) ** Math.max(0, (now - since) / 1000);
    const perSecond = base * growth;
    if (!learned || Math.floor(learned.perSecond) !== Math.floor(perSecond)) {
      learned = { perSecond, limiter: limiterFor(perSecond) };
    }
    return learned.limiter;
  }

  /** Counts a start in this second's bucket, for the next refusal to measure from. */
  function countStart(): void {
    if (!ready()) return;
    const second = Math.floor(Date.now() / 1000);
    const key = `${prefix}:starts:${second}`;
    redis
      .multi()
      .incr(key)
      .expire(key, 5)
      .exec()
      .catch(() => {});
  }

  async function pausedFor(): Promise<number> {
    if (!ready()) return 0;
    const ttl = await redis.pttl(`${prefix}:pause`).catch(() => -2);
    return Math.max(ttl, 0);
  }

  return {
    async take(signal: AbortSignal): Promise<boolean> {
      while (!signal.aborted) {
        const pause = await pausedFor();
        if (pause > 0) {
          if (!(await sleep(pause, signal))) return false;
          continue;
        }
        const limiter = await currentLimiter();
        if (!limiter) {
          countStart();
          return true;
        }
        try {
          await limiter.consume("requests");
          countStart();
          return true;
        } catch (refusal) {
          const waitMs = refusal instanceof RateLimiterRes ? refusal.msBeforeNext : 250;
          if (!(await sleep(Math.max(5, waitMs), signal))) return false;
        }
      }
      return false;
    },
    refused(waitMs: number): void {
      void learnFromRefusal(waitMs).catch(() => {});
    },
    observe(headers: Headers | null | undefined): void {
      const told = readRateHeaders(headers)?.perSecond;
      if (fixed || !told || told <= 0 || !ready()) return;
      const base = told * TOLD_MARGIN;
      if (told_ !== null && Math.abs(told_ - base) / base < 0.01) return;
      told_ = base;
      redis
        .multi()
        .hset(`${prefix}:pace`, { base: String(base), since: String(Date.now()), told: "1" })
        .expire(`${prefix}:pace`, PACE_KEPT_S)
        .exec()
        .then(() => {
          readAt = 0;
        })
        .catch(() => {});
    },
  };

  async function learnFromRefusal(waitMs: number): Promise<void> {
    if (!ready()) return;
    const refusedKey = `${prefix}:refused:${Math.floor(Date.now() / 1000)}`;
    await redis.multi().incr(refusedKey).expire(refusedKey, 5).exec();
    // Everyone waits out the server's Retry-After, not just the worker it answered.
    await redis.set(`${prefix}:pause`, "1", "PX", Math.max(1, Math.round(waitMs)), "NX");
    if (fixed) return;
    // One worker learns per episode; the refusals of the others in that second say nothing new.
    const first = await redis.set(`${prefix}:episode`, "1", "PX", 1000, "NX");
    if (first !== "OK") return;
    const second = Math.floor(Date.now() / 1000);
    const [lastStarts, lastRefused, nowStarts, nowRefused] = await redis.mget(
      `${prefix}:starts:${second - 1}`,
      `${prefix}:refused:${second - 1}`,
      `${prefix}:starts:${second}`,
      `${prefix}:refused:${second}`,
    );
    // What all workers got through over the last full second, or over this one so far when that
    // is more (the opening burst of a run); a little under, so jitter does not overrun it, and
    // never above the pace in force, which was just shown to be too fast.
    const accepted = Math.max(
      Number(lastStarts ?? 0) - Number(lastRefused ?? 0),
      Number(nowStarts ?? 0) - Number(nowRefused ?? 0),
    );
    const current = learned?.perSecond ?? Number.POSITIVE_INFINITY;
    const base = Math.max(1, Math.min(current, accepted) * 0.95);
    await redis
      .multi()
      .hset(`${prefix}:pace`, { base: String(base), since: String(Date.now()), told: "0" })
      .expire(`${prefix}:pace`, PACE_KEPT_S)
      .exec();
    readAt = 0;
  }
}
