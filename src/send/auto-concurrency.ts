/** Where `-c auto` starts: the fixed default's figure, so a small server is never flooded. */
export const AUTO_START = 8;
/** `--max-concurrency`'s default. */
export const AUTO_MAX = 256;

/** A larger figure must give this much more throughput to count as better. */
const GAIN = 1.08;
/** Among figures within this share of the best throughput, the smallest is kept: less latency. */
const NEAR_BEST = 0.95;
/** Latency past this multiple of the lowest seen is queueing, whatever throughput says. */
const INFLATED = 2;
/** Windows spent holding a figure before trying a larger one again, as servers change. */
const HOLD_WINDOWS = 12;
const CUT = 0.7;

type Phase = "climb" | "descend" | "hold" | "probe";

/**
 * `-c auto`: finds the number of requests in flight that gives the most throughput for the least
 * latency, by measurement. A batching server (vLLM, SGLang) answers more per second as more are
 * in flight until its batch is full, then only slower; it never says 429. So the figure doubles
 * while each doubling brings clearly more captions a second, then settles on the smallest figure
 * that gave nearly the best (halving below the start while that costs no throughput, for a batch
 * smaller than the start); it cuts back when latency more than doubles over the lowest seen,
 * on a timeout and on a rate limit, and now and then tries a larger figure again.
 *
 * Latency alone misleads on such a server (each extra sequence slows every decoding step a little
 * well before the batch is full), so latency only guards against queueing; throughput decides.
 *
 * Each figure is measured over a window that starts one round trip after the change, when the
 * requests in flight are those it allows, and lasts one more round trip and at least a few answers.
 * Throughput is taken by Little's law, requests in flight (averaged over time) over mean latency:
 * counting answers would depend on where a window's edge falls among answers that come back in
 * bunches, as a batch's do.
 */
export class ConcurrencyClimb {
  readonly #max: number;
  #limit: number;
  #phase: Phase = "climb";
  /** Best throughput seen at each figure tried, in answers a second. */
  readonly #seen = new Map<number, number>();
  /** The lowest median latency of any window: one fast answer is no baseline. */
  #minLatency = Number.POSITIVE_INFINITY;
  /** Windows in a row whose latency was inflated: one is noise, two are a queue. */
  #inflated = 0;
  #measureFrom: number;
  #answers = 0;
  #latencies: number[] = [];
  /** In flight now, and its integral over the window (request-milliseconds). */
  #inFlight = 0;
  #inFlightArea = 0;
  #trackedAt: number;
  #holding = 0;
  /** The figure a probe started from, to go back to if it gained nothing. */
  #before = 0;
  /** The most it may set while the server's context (KV cache) bounds it; see capAt. */
  #ceiling = Number.POSITIVE_INFINITY;

  constructor(max: number, now: number, start: number = AUTO_START) {
    this.#max = Math.max(1, max);
    this.#limit = Math.min(this.#max, start);
    this.#measureFrom = now;
    this.#trackedAt = now;
  }

  get limit(): number {
    return this.#limit;
  }

  /** How many requests are in flight from `now` on: told at every start and every end. */
  inFlight(count: number, now: number): void {
    if (now > this.#measureFrom) {
      this.#inFlightArea += this.#inFlight * (now - Math.max(this.#trackedAt, this.#measureFrom));
    }
    this.#inFlight = count;
    this.#trackedAt = now;
  }

  /**
   * A caption came back after `latencyMs` (only successful answers: an error is answered in
   * moments and says nothing of how long a caption takes). Returns the new figure when it changes.
   */
  answered(latencyMs: number, now: number): number | null {
    if (now < this.#measureFrom) return null;
    this.#answers += 1;
    this.#latencies.push(latencyMs);
    const elapsed = now - this.#measureFrom;
    const latency = mean(this.#latencies);
    if (elapsed < Math.max(latency, 200) || this.#answers < Math.min(8, this.#limit)) return null;
    this.inFlight(this.#inFlight, now);
    const throughput = (this.#inFlightArea / elapsed / latency) * 1000;
    const typical = median(this.#latencies);
    const next = this.#decide(throughput, typical, now);
    this.#minLatency = Math.min(this.#minLatency, typical);
    return next;
  }

  /** A timeout or a rate limit: fewer at once, and no climbing for a while. */
  congested(now: number): number | null {
    const next = Math.max(1, Math.floor(this.#limit * CUT));
    this.#phase = "hold";
    this.#holding = 0;
    return this.#set(next, now, this.#roundTrip());
  }

  /**
   * The server ran out of the context its requests share at more than `ceiling` in flight: no
   * figure above it is tried until the limiter raises it again. `cut` also brings the figure
   * down to it now, and holds there, as after a timeout.
   */
  capAt(ceiling: number, now: number, cut = true): number | null {
    this.#ceiling = Math.max(1, ceiling);
    if (!cut) return null;
    this.#phase = "hold";
    this.#holding = 0;
    // What was measured above the ceiling cannot be had: it must not pull the figure back up.
    for (const tried of [...this.#seen.keys()]) if (tried > this.#ceiling) this.#seen.delete(tried);
    return this.#set(Math.min(this.#limit, this.#ceiling), now, this.#roundTrip());
  }

  #decide(throughput: number, latency: number, now: number): number | null {
    const figure = this.#limit;
    this.#seen.set(figure, Math.max(this.#seen.get(figure) ?? 0, throughput));
    const inflated = latency > INFLATED * this.#minLatency && figure > 1;
    this.#inflated = inflated ? this.#inflated + 1 : 0;
    if (this.#inflated >= 2) {
      // Queueing: back to a figure that was fast enough, or a cut when none was tried below.
      this.#inflated = 0;
      this.#phase = "hold";
      this.#holding = 0;
      return this.#set(this.#settled(figure - 1) ?? Math.floor(figure * CUT), now, latency);
    }
    const next = this.#step(throughput, latency, now);
    // Once inflated, no higher until the next window says whether it was noise.
    if (inflated && next !== null && next > figure) return this.#set(figure, now, latency);
    return next;
  }

  #step(throughput: number, latency: number, now: number): number | null {
    const figure = this.#limit;
    const below = this.#bestBelow(figure);
    if (this.#phase === "climb") {
      if (below === null || throughput >= below * GAIN) {
        if (figure >= this.#max) {
          this.#phase = "hold";
          return this.#set(figure, now, latency);
        }
        return this.#set(Math.min(this.#max, figure * 2), now, latency);
      }
      const keep = this.#settled(figure) ?? figure;
      // Nothing gained even on the first doubling: the batch may be smaller than where the climb
      // started, and every figure tried so far only queues. Halve while that costs nothing.
      if (keep === this.#smallestTried() && keep > 1) {
        this.#phase = "descend";
        return this.#set(Math.floor(keep / 2), now, latency);
      }
      this.#phase = "hold";
      this.#holding = 0;
      return this.#set(keep, now, latency);
    }
    if (this.#phase === "descend") {
      const best = Math.max(...this.#seen.values());
      if (throughput >= best * NEAR_BEST && figure > 1) {
        return this.#set(Math.floor(figure / 2), now, latency);
      }
      this.#phase = "hold";
      this.#holding = 0;
      return this.#set(this.#settled(Number.POSITIVE_INFINITY) ?? figure, now, latency);
    }
    if (this.#phase === "probe") {
      const before = this.#seen.get(this.#before) ?? 0;
      if (throughput >= before * GAIN) {
        this.#phase = "climb";
        return this.#set(Math.min(this.#max, Math.ceil(figure * 1.5)), now, latency);
      }
      this.#phase = "hold";
      this.#holding = 0;
      return this.#set(this.#before, now, latency);
    }
    this.#holding += 1;
    if (this.#holding >= HOLD_WINDOWS && figure < this.#max) {
      this.#phase = "probe";
      this.#before = figure;
      // What was learnt above may no longer hold: the server's load changes.
      for (const tried of [...this.#seen.keys()]) if (tried > figure) this.#seen.delete(tried);
      return this.#set(Math.min(this.#max, Math.ceil(figure * 1.25)), now, latency);
    }
    return this.#set(figure, now, latency);
  }

  /** The smallest figure up to `upTo` whose throughput was near the best seen. */
  #settled(upTo: number): number | null {
    const best = Math.max(...this.#seen.values());
    const good = [...this.#seen.entries()]
      .filter(([figure, throughput]) => figure <= upTo && throughput >= best * NEAR_BEST)
      .map(([figure]) => figure);
    return good.length > 0 ? Math.min(...good) : null;
  }

  #smallestTried(): number {
    return Math.min(...this.#seen.keys());
  }

  #bestBelow(figure: number): number | null {
    const below = [...this.#seen.entries()].filter(([tried]) => tried < figure);
    return below.length > 0 ? Math.max(...below.map(([, throughput]) => throughput)) : null;
  }

  #roundTrip(): number {
    return this.#latencies.length > 0 ? mean(this.#latencies) : 0;
  }

  /** Starts the next window; returns the figure when it changed. */
  #set(next: number, now: number, roundTrip: number): number | null {
    const bounded = Math.max(1, Math.min(next, this.#ceiling));
    const changed = bounded !== this.#limit;
    this.#limit = bounded;
    // The requests in flight were started under the old figure: measure once they are back.
    this.#measureFrom = changed ? now + roundTrip : now;
    this.#answers = 0;
    this.#latencies = [];
    this.#inFlightArea = 0;
    this.#trackedAt = now;
    return changed ? this.#limit : null;
  }
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1
    ? (sorted[middle] ?? 0)
    : ((sorted[middle - 1] ?? 0) + (sorted[middle] ?? 0)) / 2;
}

function mean(values: readonly number[]): number {
  return values.reduce((sum, value) => sum + value, 0) / Math.max(1, values.length);
}
