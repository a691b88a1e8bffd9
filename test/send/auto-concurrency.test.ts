import { describe, expect, it } from "vitest";
import { ConcurrencyClimb } from "../../src/send/auto-concurrency.js";

/**
 * A closed loop against a batching server: as many requests in flight as the climb allows, each
 * taking `latency` × in-flight / `batch` once the batch is full. Returns the figures it chose and
 * the answers a second over the last half of the time.
 */
function simulate(
  batch: number | ((now: number) => number),
  latency: number,
  seconds: number,
  max = 256,
  spread = 0,
) {
  const batchAt = typeof batch === "number" ? () => batch : batch;
  let seed = 7;
  const random = () => {
    seed = (seed * 1664525 + 1013904223) >>> 0;
    return seed / 2 ** 32;
  };
  const climb = new ConcurrencyClimb(max, 0);
  const figures: number[] = [climb.limit];
  let now = 0;
  let answers = 0;
  const half = (seconds * 1000) / 2;
  climb.inFlight(climb.limit, now);
  while (now < seconds * 1000) {
    const inFlight = climb.limit;
    const mean = latency * Math.max(1, inFlight / batchAt(now));
    // Captions differ in length: each answer takes from (1 - spread) to (1 + spread) of the mean.
    const took = mean * (1 - spread + 2 * spread * random());
    now += mean / inFlight;
    climb.inFlight(inFlight, now);
    if (now > half) answers += 1;
    const next = climb.answered(took, now);
    if (next !== null) figures.push(next);
  }
  return { figures, throughput: answers / (seconds / 2), final: climb.limit };
}

describe("ConcurrencyClimb (-c auto)", () => {
  it("climbs to a full batch of 24 and settles there, not past twice that", () => {
    const { figures, throughput, final } = simulate(24, 500, 60);
    expect(Math.max(...figures)).toBeGreaterThanOrEqual(24);
    expect(final).toBeGreaterThanOrEqual(24);
    expect(final).toBeLessThanOrEqual(48);
    // Nearly the server's 48 a second once settled.
    expect(throughput).toBeGreaterThan(0.9 * 48);
  });

  it("is not thrown by answers whose latencies vary fivefold, as captions of different lengths do", () => {
    const { final, throughput } = simulate(24, 700, 90, 256, 0.7);
    expect(final).toBeGreaterThanOrEqual(24);
    expect(final).toBeLessThanOrEqual(64);
    expect(throughput).toBeGreaterThan(0.85 * (24 / 0.7));
  });

  it("holds where a small batch is already full, rather than queueing more", () => {
    const { final, throughput } = simulate(4, 500, 60);
    expect(final).toBeLessThanOrEqual(10);
    expect(throughput).toBeGreaterThan(0.95 * 8);
  });

  it("comes down below where it starts to a batch of 2, where more would only queue", () => {
    const { final, throughput } = simulate(2, 500, 60);
    expect(final).toBe(2);
    expect(throughput).toBeGreaterThan(0.95 * 4);
  });

  it("comes back down when the server starts to queue: latency inflates at the same throughput", () => {
    // A batch of 24, until another client takes three quarters of the server half-way through.
    const { figures, final, throughput } = simulate((now) => (now < 30_000 ? 24 : 6), 500, 60);
    expect(Math.max(...figures)).toBeGreaterThanOrEqual(24);
    expect(final).toBeLessThanOrEqual(12);
    expect(throughput).toBeGreaterThan(0.9 * 12);
  });

  it("goes up to the maximum when throughput keeps rising, and no further", () => {
    const { final, figures } = simulate(10_000, 200, 30, 100);
    expect(final).toBe(100);
    expect(Math.max(...figures)).toBe(100);
  });

  it("cuts back on a timeout or a rate limit", () => {
    const climb = new ConcurrencyClimb(256, 0, 40);
    expect(climb.congested(1000)).toBe(28);
    expect(climb.congested(2000)).toBe(19);
    const one = new ConcurrencyClimb(256, 0, 1);
    expect(one.congested(1000)).toBeNull();
    expect(one.limit).toBe(1);
  });
});
