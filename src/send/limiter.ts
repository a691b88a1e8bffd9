import { AUTO_MAX, ConcurrencyClimb } from "./auto-concurrency.js";
import { Dispatcher, type Gate } from "./dispatch.js";
import type { ConcurrencyCause, LimiterOptions } from "./limiter-options.js";
import { MeteredPace } from "./pace.js";
import { readRateHeaders } from "./rate-headers.js";
import type { Slot } from "./slot.js";

/**
 * One gate shared by every request of a run. It lets at most `allowed` requests be in flight,
 * where `allowed` starts at `-c`, halves when the server rate-limits and climbs back by about one
 * per round trip while it does not (AIMD, as TCP does), and holds every request back while the
 * server's Retry-After lasts. A server that meters a rate (it names a wait of a second or more)
 * is met with a pace instead: request starts are spaced at the rate it accepted over the last
 * full second. When that second was not full yet (the first burst of a run), the pace starts from
 * what was accepted and doubles every quarter second until the next limit says where it is; after
 * that it probes upwards by about 2 % a second. It also spaces request starts for `--rpm`.
 */
export class AdaptiveLimiter implements Gate<Slot> {
  readonly #max: number;
  readonly #interval: number;
  readonly #onChange: ((allowed: number, cause: ConcurrencyCause) => void) | undefined;
  readonly #sharedPace: boolean;
  #allowed: number;
  #active = 0;
  #pausedUntil = 0;
  #nextStart = 0;
  #decreasedAt = Number.NEGATIVE_INFINITY;
  #listener: () => void = () => {};
  /** Its own queue, for a caller that waits on this limiter alone. */
  #queue: Dispatcher<Slot, AdaptiveLimiter> | null = null;
  /** The pace a server that meters a rate is met with, learnt from its limits and headers. */
  readonly #pace = new MeteredPace();

  /** With `-c auto`, what sets `allowed` instead of AIMD. */
  readonly #climb: ConcurrencyClimb | null;
  readonly #onOverflow: ((from: number, to: number) => void) | undefined;
  /**
   * After the server ran out of context: the most allowed in flight, raised by one after each
   * `#ceilingHold` captions without another overflow. Null when none has happened.
   */
  #ceiling: number | null = null;
  #ceilingHold = 0;
  #ceilingLeft = 0;

  constructor(options: LimiterOptions) {
    if (options.concurrency === "auto") {
      this.#climb = new ConcurrencyClimb(options.maxConcurrency ?? AUTO_MAX, performance.now());
      this.#max = options.maxConcurrency ?? AUTO_MAX;
      this.#allowed = this.#climb.limit;
    } else {
      this.#climb = null;
      this.#max = options.concurrency;
      this.#allowed = options.concurrency;
    }
    this.#interval = options.rpm ? 60_000 / options.rpm : 0;
    this.#onChange = options.onChange;
    this.#onOverflow = options.onOverflow;
    this.#sharedPace = options.sharedPace ?? false;
  }

  /** Requests allowed in flight right now. */
  get allowed(): number {
    return Math.floor(this.#allowed);
  }

  get active(): number {
    return this.#active;
  }

  /** Waits for a permit; resolves null if `signal` aborts first. */
  async acquire(signal?: AbortSignal): Promise<Slot | null> {
    this.#queue ??= new Dispatcher<Slot, AdaptiveLimiter>([this]);
    return (await this.#queue.acquire(signal))?.slot ?? null;
  }

  readyAt(_now: number): number {
    if (this.#active >= Math.max(1, Math.floor(this.#allowed))) return Number.POSITIVE_INFINITY;
    return Math.max(this.#pausedUntil, this.#nextStart);
  }

  load(): number {
    return this.#active / Math.max(1, Math.floor(this.#allowed));
  }

  capacity(): number {
    return Math.max(1, Math.floor(this.#allowed));
  }

  listen(listener: () => void): void {
    this.#listener = listener;
  }

  start(now: number): Slot {
    const interval = Math.max(this.#interval, this.#pace.intervalAt(now));
    // From now, not from when this start was due: a late timer must not bunch the next start
    // up against this one, which a strict limiter would refuse.
    if (interval > 0) this.#nextStart = now + interval;
    this.#pace.started(now);
    this.#active += 1;
    this.#climb?.inFlight(this.#active, now);
    return this.#slot(now);
  }

  #slot(startedAt: number): Slot {
    let open = true;
    const activeAtStart = this.#active;
    const finish = (update: () => void) => {
      if (!open) return;
      open = false;
      this.#active -= 1;
      this.#climb?.inFlight(this.#active, performance.now());
      update();
      this.#listener();
    };
    const climb = this.#climb;
    return {
      done: (captioned = false) =>
        finish(() => {
          if (captioned) this.#heldUnderCeiling();
          if (climb && captioned) {
            const now = performance.now();
            const next = climb.answered(now - startedAt, now);
            if (next !== null) this.#setAllowed(next, "auto");
          }
          // Additive increase: about +1 per round trip's worth of successes.
          const top = Math.min(this.#max, this.#ceiling ?? this.#max);
          if (!climb && this.#allowed < top) {
            this.#setAllowed(Math.min(top, this.#allowed + 1 / this.#allowed), "recovery");
          }
          this.#pace.answered();
        }),
      congested: (pauseMs, metered) =>
        finish(() => {
          const now = performance.now();
          this.#pace.refused(startedAt, now);
          if (metered) {
            this.#metered(now, pauseMs, startedAt);
            return;
          }
          this.#pausedUntil = Math.max(this.#pausedUntil, now + pauseMs);
          this.#pace.resumesAt(this.#pausedUntil);
          // Requests sent before the last cut were sent at the old rate: one cut per episode.
          if (startedAt > this.#decreasedAt) {
            this.#decreasedAt = now;
            const next = climb ? climb.congested(now) : null;
            this.#setAllowed(next ?? Math.max(1, this.#allowed / 2), "overload");
          }
        }),
      release: () => finish(() => {}),
      timedOut: () =>
        finish(() => {
          const now = performance.now();
          if (!climb || startedAt <= this.#decreasedAt) return;
          this.#decreasedAt = now;
          const next = climb.congested(now);
          if (next !== null) this.#setAllowed(next, "timeout");
        }),
      overflowed: () =>
        finish(() => {
          if (startedAt <= this.#decreasedAt) return;
          const before = this.allowed;
          // What was in flight when the cache ran out: every request of that batch fails at once,
          // so the figure is the most seen while this one ran, not what is left when it returns.
          const inFlight = Math.max(activeAtStart, Math.min(before, this.#active + 1));
          if (inFlight <= 1 && before <= 1) return;
          const now = performance.now();
          this.#decreasedAt = now;
          const to = Math.max(1, Math.min(inFlight - 1, Math.floor(inFlight * OVERFLOW_CUT)));
          // Each repeat holds the ceiling twice as long before the next careful step up.
          this.#ceilingHold = this.#ceilingHold === 0 ? OVERFLOW_HOLD : this.#ceilingHold * 2;
          this.#ceilingLeft = this.#ceilingHold;
          this.#ceiling = to;
          climb?.capAt(to, now);
          this.#setAllowed(Math.min(this.#allowed, to), "context");
          this.#onOverflow?.(before, Math.min(before, to));
        }),
    };
  }

  /** A caption under a ceiling: after enough of them, one more in flight is allowed. */
  #heldUnderCeiling(): void {
    if (this.#ceiling === null || this.#ceiling >= this.#max) return;
    this.#ceilingLeft -= 1;
    if (this.#ceilingLeft > 0) return;
    this.#ceiling += 1;
    this.#ceilingLeft = this.#ceilingHold;
    this.#climb?.capAt(this.#ceiling, performance.now(), false);
  }

  /**
   * A metered limit. The first one pauses everyone for its wait and sets the pace from what was
   * accepted; later ones only correct the pace (the refused request waits on its own), once per
   * episode, from a full second of sending when there is one.
   */
  #metered(now: number, pauseMs: number, startedAt: number): void {
    // The server's own headers, or the shared budget, set the pace; only the refused request waits.
    if (this.#pace.told || this.#sharedPace) return;
    if (!this.#pace.known) {
      this.#pausedUntil = Math.max(this.#pausedUntil, now + pauseMs);
      this.#pace.firstLimit(now);
      this.#decreasedAt = now;
      return;
    }
    if (startedAt <= this.#decreasedAt) return;
    this.#decreasedAt = now;
    this.#pace.limited(now);
  }

  /**
   * What a reply's rate-limit headers say. A rate they give is the pace from then on, and no
   * longer guessed at from refusals; a spent quota holds every start back until it refills.
   */
  observe(headers: Headers | null | undefined): void {
    const told = readRateHeaders(headers);
    if (!told) return;
    if (told.perSecond !== null && told.perSecond > 0) this.#pace.setByServer(told.perSecond);
    if (told.waitMs !== null) {
      this.#nextStart = Math.max(this.#nextStart, performance.now() + told.waitMs);
    }
    this.#listener();
  }

  #setAllowed(value: number, cause: ConcurrencyCause): void {
    const before = Math.floor(this.#allowed);
    this.#allowed = value;
    if (Math.floor(value) !== before) this.#onChange?.(Math.floor(value), cause);
  }
}

/** Out of context, a quarter fewer in flight (at least one fewer): the cache held nearly that. */
const OVERFLOW_CUT = 0.75;
/** Captions under the ceiling an overflow sets before one more in flight is tried. */
const OVERFLOW_HOLD = 32;
