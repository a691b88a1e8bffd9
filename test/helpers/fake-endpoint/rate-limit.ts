/**
 * The `rateLimit` option: a token bucket checked before any work, as gateways do, and the
 * rate-limit headers that describe it.
 */
import { performance } from "node:perf_hooks";
import type { FakeEndpointOptions } from "./options.js";

export interface RateLimiter {
  /** Takes a token; false when the bucket is empty (always true without a limit). */
  take(): boolean;
  /** What the bucket looks like now, in the form the options ask for (none by default). */
  headers(): Record<string, string>;
}

export function createRateLimiter(limit: FakeEndpointOptions["rateLimit"]): RateLimiter {
  // The bucket starts full so a burst of up to perSecond requests passes, like most gateways.
  const capacity = Math.max(1, limit?.burst ?? limit?.perSecond ?? 1);
  let tokens = capacity;
  let refilledAt = performance.now();

  /** The bucket as it stands now, not as the last arrival left it. */
  const tokensNow = (perSecond: number, now: number): number =>
    Math.min(capacity, tokens + ((now - refilledAt) / 1000) * perSecond);

  return {
    take() {
      if (!limit) return true;
      const now = performance.now();
      tokens = tokensNow(limit.perSecond, now);
      refilledAt = now;
      if (tokens < 1) return false;
      tokens -= 1;
      return true;
    },
    headers(): Record<string, string> {
      if (!limit?.headers) return {};
      const level = tokensNow(limit.perSecond, performance.now());
      const remaining = Math.floor(level);
      const toFull = (capacity - level) / limit.perSecond;
      if (limit.headers === "openai") {
        return {
          "x-ratelimit-limit-requests": String(capacity),
          "x-ratelimit-remaining-requests": String(remaining),
          "x-ratelimit-reset-requests": `${Math.max(0, Math.round(toFull * 1000))}ms`,
        };
      }
      return {
        "ratelimit-policy": `"bucket";q=${limit.perSecond};w=1`,
        ratelimit: `"bucket";r=${remaining};t=${Math.ceil(toFull)}`,
      };
    },
  };
}
