import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { AdaptiveLimiter } from "../../src/send/limiter.js";
import { readRateHeaders } from "../../src/send/rate-headers.js";
import type { Slot } from "../../src/send/slot.js";

describe("rate-limit headers", () => {
  it.each([
    [
      "OpenAI's, after a spend of 20 of 60 refilling in 2 s",
      {
        "x-ratelimit-limit-requests": "60",
        "x-ratelimit-remaining-requests": "40",
        "x-ratelimit-reset-requests": "2s",
      },
      { perSecond: 10, waitMs: null },
    ],
    [
      "OpenAI's durations in minutes",
      {
        "x-ratelimit-limit-requests": "3500",
        "x-ratelimit-remaining-requests": "3440",
        "x-ratelimit-reset-requests": "1m0s",
      },
      { perSecond: 1, waitMs: null },
    ],
    [
      "OpenAI's, spent but too little to tell a rate: a wait",
      {
        "x-ratelimit-limit-requests": "1",
        "x-ratelimit-remaining-requests": "0",
        "x-ratelimit-reset-requests": "50ms",
      },
      { perSecond: null, waitMs: 50 },
    ],
    [
      "the IETF policy and state",
      { "ratelimit-policy": '"default";q=100;w=60', ratelimit: '"default";r=0;t=3' },
      { perSecond: 100 / 60, waitMs: null },
    ],
    [
      "an older draft's policy, its quota bare",
      { "ratelimit-policy": "100;w=60", "ratelimit-remaining": "40", "ratelimit-reset": "20" },
      { perSecond: 100 / 60, waitMs: null },
    ],
    [
      "an older draft's limit with its policies after it: the shortest window",
      { "ratelimit-limit": "10, 10;w=1, 300;w=60", "ratelimit-remaining": "9" },
      { perSecond: 10, waitMs: null },
    ],
    [
      "several IETF policies: the shortest window paces, not the daily quota",
      { "ratelimit-policy": '"day";q=1000;w=86400, "burst";q=20;w=1, "other";q=15;w=1' },
      { perSecond: 15, waitMs: null },
    ],
    [
      "an older draft's limit with no window: no rate, only a wait when spent",
      { "ratelimit-limit": "10", "ratelimit-remaining": "0", "ratelimit-reset": "2" },
      { perSecond: null, waitMs: 2000 },
    ],
    [
      "the IETF state alone, spent",
      { ratelimit: '"default";r=0;t=2' },
      { perSecond: null, waitMs: 2000 },
    ],
    [
      "the older separate IETF fields",
      { "ratelimit-limit": "10", "ratelimit-remaining": "0", "ratelimit-reset": "4" },
      { perSecond: null, waitMs: 4000 },
    ],
  ])("reads %s", (_, fields, expected) => {
    const told = readRateHeaders(new Headers(fields));
    expect(told?.waitMs ?? null).toBe(expected.waitMs);
    if (expected.perSecond === null) expect(told?.perSecond ?? null).toBeNull();
    else expect(told?.perSecond).toBeCloseTo(expected.perSecond, 6);
  });

  it("says nothing when there are none", () => {
    expect(readRateHeaders(new Headers({ "content-type": "application/json" }))).toBeNull();
    expect(readRateHeaders(null)).toBeNull();
  });
});

describe("AdaptiveLimiter and rate-limit headers", () => {
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "performance"] });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it("paces starts at the rate the headers give, before any 429, and a later 429 pauses no one", async () => {
    const limiter = new AdaptiveLimiter({ concurrency: 64 });
    limiter.observe(new Headers({ "ratelimit-policy": '"q";q=10;w=1' }));
    const granted: Slot[] = [];
    for (let i = 0; i < 30; i += 1) {
      void limiter.acquire().then((slot) => slot && granted.push(slot));
    }
    await vi.advanceTimersByTimeAsync(0);
    expect(granted).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1000);
    // Ten a second, a little under: 9 or 10 more.
    expect(granted.length).toBeGreaterThanOrEqual(10);
    expect(granted.length).toBeLessThanOrEqual(11);
    const before = granted.length;
    granted[0]?.congested(1000, true);
    await vi.advanceTimersByTimeAsync(500);
    expect(granted.length - before).toBeGreaterThanOrEqual(4);
  });
});
