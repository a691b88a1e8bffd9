import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { AdaptiveLimiter } from "../../src/send/limiter.js";
import type { Slot } from "../../src/send/slot.js";

beforeEach(() => {
  vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "performance"] });
});
afterEach(() => {
  vi.useRealTimers();
});

/** Acquires n slots, returning those granted so far without blocking the test. */
function request(limiter: AdaptiveLimiter, n: number, signal?: AbortSignal) {
  const granted: Slot[] = [];
  const pending = Array.from({ length: n }, () =>
    limiter.acquire(signal).then((slot) => {
      if (slot) granted.push(slot);
      return slot;
    }),
  );
  return { granted, pending };
}

describe("AdaptiveLimiter", () => {
  it("lets at most `concurrency` requests in flight", async () => {
    const limiter = new AdaptiveLimiter({ concurrency: 3 });
    const { granted } = request(limiter, 5);
    await vi.advanceTimersByTimeAsync(0);
    expect(granted).toHaveLength(3);
    granted[0]?.done();
    await vi.advanceTimersByTimeAsync(0);
    expect(granted).toHaveLength(4);
  });

  it("halves on a rate limit, pauses everyone for the Retry-After, then grows back additively", async () => {
    const changes: number[] = [];
    const limiter = new AdaptiveLimiter({ concurrency: 8, onChange: (n) => changes.push(n) });
    const first = request(limiter, 8);
    await vi.advanceTimersByTimeAsync(0);
    // All eight were sent together: their 429s are one episode, so one cut, not eight.
    for (const slot of first.granted) slot.congested(1000, false);
    expect(limiter.allowed).toBe(4);
    const next = request(limiter, 8);
    await vi.advanceTimersByTimeAsync(999);
    expect(next.granted).toHaveLength(0);
    await vi.advanceTimersByTimeAsync(1);
    expect(next.granted).toHaveLength(4);
    // A 429 on a request sent after the cut is a new episode.
    next.granted[0]?.congested(0, false);
    expect(limiter.allowed).toBe(2);
    // Every later request succeeds: about one more allowed per round trip's worth of successes.
    let released = 1;
    for (let round = 0; round < 60; round += 1) {
      request(limiter, 1).pending[0]?.then((slot) => next.granted.push(slot as Slot));
      await vi.advanceTimersByTimeAsync(0);
      while (released < next.granted.length) next.granted[released++]?.done();
    }
    expect(limiter.allowed).toBe(8);
    expect(changes[0]).toBe(4);
    expect(changes.at(-1)).toBe(8);
  });

  it("once rate-limited after a full second of sending, paces starts at the rate the server accepted", async () => {
    const limiter = new AdaptiveLimiter({ concurrency: 50 });
    // Ten requests succeed over a second, then one is rate-limited.
    for (let i = 0; i < 10; i += 1) {
      const { granted } = request(limiter, 1);
      await vi.advanceTimersByTimeAsync(100);
      granted[0]?.done();
    }
    const { granted } = request(limiter, 1);
    await vi.advanceTimersByTimeAsync(0);
    granted[0]?.congested(0, true);
    // Now starts are spaced about 100 ms apart (10/s), however many are waiting.
    const next = request(limiter, 10);
    await vi.advanceTimersByTimeAsync(0);
    expect(next.granted).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(450);
    expect(next.granted.length).toBeGreaterThanOrEqual(4);
    expect(next.granted.length).toBeLessThanOrEqual(6);
  });

  it("after a first burst, starts from what got through and doubles the pace until the next limit", async () => {
    const limiter = new AdaptiveLimiter({ concurrency: 64 });
    // A gateway with no burst allowance: of 16 sent at once, 2 get through.
    const burst = request(limiter, 16);
    await vi.advanceTimersByTimeAsync(0);
    for (const slot of burst.granted.slice(2)) slot.congested(1000, true);
    for (const slot of burst.granted.slice(0, 2)) slot.done();
    const next = request(limiter, 100);
    // Everyone waits out the Retry-After, then the pace (2/s) doubles every quarter second.
    await vi.advanceTimersByTimeAsync(999);
    expect(next.granted).toHaveLength(0);
    await vi.advanceTimersByTimeAsync(1001);
    const afterOneSecond = next.granted.length;
    // 2/s, then 4, 8 and 16 a second, a quarter second each: not the 2 that a fixed pace allows.
    expect(afterOneSecond).toBeGreaterThanOrEqual(4);
    expect(afterOneSecond).toBeLessThanOrEqual(8);
    for (const slot of next.granted) slot.done();
    // The next limit ends the doubling: the pace falls back to about half, not to a crawl.
    await vi.advanceTimersByTimeAsync(250);
    const last = next.granted.at(-1);
    last?.congested(1000, true);
    const before = next.granted.length;
    await vi.advanceTimersByTimeAsync(1000);
    const perSecond = next.granted.length - before;
    expect(perSecond).toBeGreaterThanOrEqual(6);
    expect(perSecond).toBeLessThanOrEqual(20);
  });

  it("does not pace after a passing overload that names no real wait", async () => {
    const limiter = new AdaptiveLimiter({ concurrency: 50 });
    for (let i = 0; i < 10; i += 1) {
      const { granted } = request(limiter, 1);
      await vi.advanceTimersByTimeAsync(50);
      granted[0]?.done();
    }
    const { granted } = request(limiter, 1);
    await vi.advanceTimersByTimeAsync(0);
    granted[0]?.congested(0, false);
    const next = request(limiter, 10);
    await vi.advanceTimersByTimeAsync(0);
    expect(next.granted).toHaveLength(10);
  });

  it("never drops below one request in flight", async () => {
    const limiter = new AdaptiveLimiter({ concurrency: 2 });
    for (let i = 0; i < 5; i += 1) {
      const { granted } = request(limiter, 1);
      await vi.advanceTimersByTimeAsync(0);
      granted[0]?.congested(0, false);
    }
    expect(limiter.allowed).toBe(1);
  });

  it("spaces request starts to honour --rpm", async () => {
    const limiter = new AdaptiveLimiter({ concurrency: 10, rpm: 120 });
    const { granted } = request(limiter, 4);
    await vi.advanceTimersByTimeAsync(0);
    expect(granted).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(499);
    expect(granted).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(granted).toHaveLength(2);
    await vi.advanceTimersByTimeAsync(1000);
    expect(granted).toHaveLength(4);
  });

  it("out of context: a quarter fewer in flight once for the batch, held there, then one more at a time", async () => {
    const overflows: [number, number][] = [];
    const limiter = new AdaptiveLimiter({
      concurrency: 4,
      onOverflow: (from, to) => overflows.push([from, to]),
    });
    const first = request(limiter, 4);
    await vi.advanceTimersByTimeAsync(0);
    // The whole batch fails together: one cut.
    for (const slot of first.granted) slot.overflowed();
    expect(limiter.allowed).toBe(3);
    expect(overflows).toEqual([[4, 3]]);
    // Unlike after a 429, successes do not climb back to where the cache ran out...
    const slots: Slot[] = [];
    const settle = async (captions: number) => {
      for (let i = 0; i < captions; i += 1) {
        request(limiter, 1).pending[0]?.then((slot) => slots.push(slot as Slot));
        await vi.advanceTimersByTimeAsync(1);
        slots.shift()?.done(true);
      }
    };
    await settle(31);
    expect(limiter.allowed).toBe(3);
    // ...until 32 captions in a row fitted: then one more is tried.
    await settle(10);
    expect(limiter.allowed).toBe(4);
    // Running out again there holds the lower figure twice as long.
    const again = request(limiter, 4);
    await vi.advanceTimersByTimeAsync(0);
    for (const slot of again.granted) slot.overflowed();
    expect(limiter.allowed).toBe(3);
    await settle(63);
    expect(limiter.allowed).toBe(3);
  });

  it("out of context at one in flight: nothing to cut", async () => {
    const overflows: [number, number][] = [];
    const limiter = new AdaptiveLimiter({
      concurrency: 1,
      onOverflow: (from, to) => overflows.push([from, to]),
    });
    (await limiter.acquire())?.overflowed();
    expect(limiter.allowed).toBe(1);
    expect(overflows).toEqual([]);
  });

  it("gives a waiter null when its signal aborts", async () => {
    const limiter = new AdaptiveLimiter({ concurrency: 1 });
    const controller = new AbortController();
    const { granted, pending } = request(limiter, 2, controller.signal);
    await vi.advanceTimersByTimeAsync(0);
    controller.abort();
    expect(await pending[1]).toBeNull();
    granted[0]?.done();
    expect(limiter.active).toBe(0);
  });
});
