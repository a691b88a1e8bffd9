import type { Redis } from "ioredis";
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes } from "rate-limiter-flexible";
import type { RequestBudget } from "../run/endpoint.js";

/**
 * One endpoint's requests per minute, shared by every worker of a queue through Redis
 * (rate-limiter-flexible), so ten workers on one key send what one key allows, not ten times
 * it. Windows of a second (or a minute below 60 rpm) keep bursts within what a gateway's bucket
 * holds; a rate that does not divide into seconds is rounded down, never up. While Redis is
 * away each worker keeps to the whole rate on its own (the insurance limiter), and a 429 one
 * worker gets makes all of them wait it out.
 */
export function sharedBudget(
  redis: Redis,
  queue: string,
  endpointLabel: string,
  rpm: number,
): RequestBudget {
  const perSecond = Math.floor(rpm / 60);
  const [points, duration] = perSecond >= 1 ? [perSecond, 1] : [Math.max(1, Math.floor(rpm)), 60];
  const limiter = new RateLimiterRedis({
    storeClient: redis,
    keyPrefix: `caption:${queue}:rpm`,
    points,
    duration,
    insuranceLimiter: new RateLimiterMemory({ points, duration }),
  });
  const key = endpointLabel;
  return {
    async take(signal: AbortSignal): Promise<boolean> {
      while (!signal.aborted) {
        try {
          await limiter.consume(key);
          return true;
        } catch (refusal) {
          const waitMs = refusal instanceof RateLimiterRes ? refusal.msBeforeNext : 250;
          if (!(await sleep(Math.max(5, waitMs), signal))) return false;
        }
      }
      return false;
    },
    refused(waitMs: number): void {
      const seconds = Math.max(1, Math.ceil(waitMs / 1000));
      limiter.block(key, seconds).catch(() => {});
    },
  };
}

function sleep(ms: number, signal: AbortSignal): Promise<boolean> {
  return new Promise((resolve) => {
    const done = (value: boolean) => {
      clearTimeout(timer);
      signal.removeEventListener("abort", onAbort);
      resolve(value);
    };
    const onAbort = () => done(false);
    const timer = setTimeout(() => done(true), ms);
    signal.addEventListener("abort", onAbort, { once: true });
  });
}
