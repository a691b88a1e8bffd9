/**
 * The concurrency controllers `-c auto` was chosen against, written from the rules in
 * `../shared/docs/scaling.md` §7 (Netflix concurrency-limits' Vegas, Gradient2 and AIMD) so the
 * bench can race them on the same fake servers. Only the hill-climb ships (src/send/auto-concurrency.ts).
 *
 * All share the shipped controller's shape: told of every change in flight and every answer, and
 * read for the figure allowed. For a fair race every one starts where `-c auto` starts (8), may
 * go as low as 1 (the library's floors of 20 would flood a small server) and as high as the same
 * maximum; the rest of their settings are the library's defaults.
 */
import { AUTO_START, ConcurrencyClimb } from "../src/send/auto-concurrency.js";

export interface Controller {
  readonly limit: number;
  inFlight(count: number, now: number): void;
  answered(latencyMs: number, now: number): unknown;
  congested(now: number): unknown;
}

/** The library's log10 root: whole orders of magnitude, never below 1. */
const log10Root = (limit: number) => Math.max(1, Math.floor(Math.log10(Math.max(1, limit))));

/** Shared bookkeeping: the figure, its bounds, and the number in flight when an answer came. */
abstract class SampleController implements Controller {
  protected estimate = AUTO_START;
  protected current = 0;
  constructor(protected readonly max: number) {}
  get limit(): number {
    return Math.max(1, Math.floor(this.estimate));
  }
  inFlight(count: number): void {
    this.current = count;
  }
  answered(latencyMs: number): void {
    this.sample(latencyMs, this.current, false);
  }
  congested(): void {
    this.sample(0, this.current, true);
  }
  protected clamp(value: number): number {
    return Math.max(1, Math.min(this.max, value));
  }
  protected abstract sample(latencyMs: number, inFlight: number, dropped: boolean): void;
}

/** Vegas: the queue estimated as limit × (1 − lowest latency / latency), kept between alpha and beta. */
export class Vegas extends SampleController {
  #noLoad = 0;
  #samples = 0;
  protected sample(latencyMs: number, inFlight: number, dropped: boolean): void {
    const limit = this.estimate;
    if (dropped) {
      this.estimate = this.clamp(limit - log10Root(limit));
      return;
    }
    // Every 30 × limit answers the no-load latency is taken afresh from the next answer, as the
    // library re-probes (its random jitter of 0.5–1 replaced by its mean, so runs repeat).
    this.#samples += 1;
    if (this.#samples >= 0.75 * 30 * limit) {
      this.#samples = 0;
      this.#noLoad = latencyMs;
      return;
    }
    if (this.#noLoad === 0 || latencyMs < this.#noLoad) {
      this.#noLoad = latencyMs;
      return;
    }
    if (inFlight * 2 < limit) return;
    const queue = Math.ceil(limit * (1 - this.#noLoad / latencyMs));
    const root = log10Root(limit);
    let next: number;
    if (queue <= root) next = limit + 6 * root;
    else if (queue < 3 * root) next = limit + root;
    else if (queue > 6 * root) next = limit - root;
    else return;
    this.estimate = this.clamp(next);
  }
}

/** Gradient2: a long average of latency against the latest, with a fixed headroom of 4. */
export class Gradient2 extends SampleController {
  #long = 0;
  #count = 0;
  protected sample(latencyMs: number, inFlight: number, dropped: boolean): void {
    if (dropped) return;
    // An exponential average over 600 answers, a plain mean for the first ten.
    this.#count += 1;
    const weight = this.#count <= 10 ? 1 / this.#count : 2 / (600 + 1);
    this.#long = this.#long * (1 - weight) + latencyMs * weight;
    if (this.#long / latencyMs > 2) this.#long *= 0.95;
    if (inFlight < this.estimate / 2) return;
    const gradient = Math.max(0.5, Math.min(1, (1.5 * this.#long) / latencyMs));
    const next = this.estimate * gradient + 4;
    this.estimate = this.clamp(this.estimate * 0.8 + next * 0.2);
  }
}

/** AIMD: one more per answer while at least half the figure is in use; × 0.9 on a drop or 5 s. */
export class Aimd extends SampleController {
  protected sample(latencyMs: number, inFlight: number, dropped: boolean): void {
    if (dropped || latencyMs > 5000) this.estimate = this.clamp(Math.floor(this.estimate * 0.9));
    else if (inFlight * 2 >= this.estimate) this.estimate = this.clamp(this.estimate + 1);
  }
}

/** A fixed figure: the default `-c 8`, the baseline every controller is weighed against. */
export class Fixed implements Controller {
  constructor(readonly limit: number) {}
  inFlight(): void {}
  answered(): void {}
  congested(): void {}
}

export const CONTROLLERS: Record<string, (max: number, now: number) => Controller> = {
  "fixed -c 8": () => new Fixed(AUTO_START),
  "hill-climb (-c auto)": (max, now) => new ConcurrencyClimb(max, now),
  Vegas: (max) => new Vegas(max),
  Gradient2: (max) => new Gradient2(max),
  AIMD: (max) => new Aimd(max),
};
