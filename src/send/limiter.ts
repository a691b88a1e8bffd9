import { AUTO_MAX, ConcurrencyClimb } from "./auto-concurrency.js";
import { Dispatcher, type Gate } from "./dispatch.js";
import { readRateHeaders } from "./rate-headers.js";

/**
 * Why the allowed concurrency moved: `-c auto` measuring, an overload (429 or 503) cutting it,
 * the climb back after one, a timeout under `-c auto`, or the server running out of the context
 * (KV cache) its requests in flight share.
 */
export type ConcurrencyCause = "auto" | "overload" | "recovery" | "timeout" | "context";

export interface LimiterOptions {
  /** The most requests in flight at once (`-c`), or "auto": found by measuring, up to `max`. */
  concurrency: number | "auto";
  /** With "auto", the most it may reach (`--max-concurrency`). @default 256 */
  maxConcurrency?: number | undefined;
  /** Requests per minute at most (`--rpm`); unlimited when undefined. */
  rpm?: number | undefined;
  /** Reported whenever the allowed concurrency changes. */
  onChange?: (allowed: number, cause: ConcurrencyCause) => void;
  /**
   * Reported at each cut for running out of context: the figure allowed before it and the one
   * allowed from then on.
   */
  onOverflow?: (from: number, to: number) => void;
  /**
   * A budget shared with other processes paces metered limits for all of them (`caption
   * worker`): this limiter then learns no pace of its own from them, which would be its share.
   */
  sharedPace?: boolean;
}

/** A permit to send one request; say how it went when it is over. */
export interface Slot {
  /**
   * The server answered (with anything but a rate limit); `captioned` when it was a success, the
   * only answers whose latency says how long a caption takes.
   */
  done(captioned?: boolean): void;
  /**
   * The server said to slow down (429, or 503 with Retry-After), asking for this many ms of quiet.
   * `metered` says it named a wait of a second or more itself, the mark of a real rate limit
   * rather than a passing overload.
   */
  congested(pauseMs: number, metered: boolean): void;
  /** No answer to learn from (connection error, cancelled). */
  release(): void;
  /** No answer within the timeout: as much a sign of too many in flight as a 429. */
  timedOut(): void;
  /**
   * The server ran out of the context its requests in flight share: the allowance is cut, once
   * for all the requests that fail together.
   */
  overflowed(): void;
}

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
  /** Start times of the requests of the last two seconds, and of those refused with a limit. */
  readonly #starts: number[] = [];
  readonly #refused: number[] = [];
  /** Requests per second to start at; null until the server first meters a rate. */
  #pace: number | null = null;
  /** Doubling the pace until the server says where its limit is. */
  #slowStart = false;
  /** The pace comes from the server's rate-limit headers. */
  #told = false;
  /** When the first metered limit came, and whether a full second of sending preceded it. */
  #firstLimit: { at: number; full: boolean } | null = null;
  /** Probing faster after slow start, until a limit is met at a steady pace. */
  #narrowing = false;
  #paceChangedAt = 0;
  /** Since when requests have been started without a pause: a window is full after a second. */
  #sendingSince = Number.NEGATIVE_INFINITY;

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
    if (this.#pace === null && this.#firstLimit !== null) {
      const { at, full } = this.#firstLimit;
      this.#pace = Math.max(1, this.#acceptedSince(at - 1000));
      this.#slowStart = !full;
      this.#paceChangedAt = now;
      this.#sendingSince = now;
    }
    // Slow start doubles on the clock, not per success: at a low pace successes are rare.
    if (this.#pace !== null && this.#slowStart && now - this.#paceChangedAt >= SLOW_START_STEP_MS) {
      this.#pace *= 2;
      this.#paceChangedAt = now;
    }
    const interval = Math.max(this.#interval, this.#pace ? 1000 / this.#pace : 0);
    // From now, not from when this start was due: a late timer must not bunch the next start
    // up against this one, which a strict limiter would refuse.
    if (interval > 0) this.#nextStart = now + interval;
    if (this.#sendingSince === Number.NEGATIVE_INFINITY) this.#sendingSince = now;
    this.#starts.push(now);
    prune(this.#starts, now);
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
          if (this.#pace === null || this.#slowStart || this.#told) return;
          // Per success, so about that share of the pace a second: 10 % while the limit is
          // only known to lie between two paces, then 2 %.
          this.#pace += this.#narrowing ? FAST_PROBE : SLOW_PROBE;
        }),
      congested: (pauseMs, metered) =>
        finish(() => {
          const now = performance.now();
          this.#refused.push(startedAt);
          prune(this.#refused, now);
          if (metered) {
            this.#metered(now, pauseMs, startedAt);
            return;
          }
          this.#pausedUntil = Math.max(this.#pausedUntil, now + pauseMs);
          this.#sendingSince = this.#pausedUntil;
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
    if (this.#told || this.#sharedPace) return;
    const accepted = this.#acceptedSince(now - 1000);
    if (this.#pace === null) {
      this.#pausedUntil = Math.max(this.#pausedUntil, now + pauseMs);
      // The rest of a burst is refused within moments of the first refusal: what got through
      // is counted once the pause is over, not at the first refusal.
      if (this.#firstLimit === null) {
        this.#firstLimit = { at: now, full: now - this.#sendingSince >= 1000 };
      }
      this.#decreasedAt = now;
      return;
    }
    if (startedAt <= this.#decreasedAt) return;
    this.#decreasedAt = now;
    const seconds = Math.min(1, Math.max(0.25, (now - this.#sendingSince) / 1000));
    // A little under what got through, so timer jitter does not spend the next token too early.
    const measured = (accepted / seconds) * PACE_MARGIN;
    if (this.#slowStart) {
      // Half the pace was still accepted a step ago, so the limit lies above that, whatever a
      // second spent mostly below the limit measured.
      this.#slowStart = false;
      this.#narrowing = true;
      this.#pace = Math.max(1, this.#pace / 2, Math.min(this.#pace, measured));
      return;
    }
    this.#narrowing = false;
    this.#pace = Math.max(1, Math.min(this.#pace, measured));
  }

  /** Requests started since `since` that no limit refused (those still in flight included). */
  #acceptedSince(since: number): number {
    const started = this.#starts.filter((t) => t > since).length;
    const refused = this.#refused.filter((t) => t > since).length;
    return Math.max(0, started - refused);
  }

  /**
   * What a reply's rate-limit headers say. A rate they give is the pace from then on, and no
   * longer guessed at from refusals; a spent quota holds every start back until it refills.
   */
  observe(headers: Headers | null | undefined): void {
    const told = readRateHeaders(headers);
    if (!told) return;
    if (told.perSecond !== null && told.perSecond > 0) {
      this.#told = true;
      // Just under the quota: requests that leave evenly spaced do not all arrive so.
      this.#pace = told.perSecond * TOLD_MARGIN;
      this.#slowStart = false;
      this.#narrowing = false;
    }
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

const SLOW_START_STEP_MS = 250;
/** Out of context, a quarter fewer in flight (at least one fewer): the cache held nearly that. */
const OVERFLOW_CUT = 0.75;
/** Captions under the ceiling an overflow sets before one more in flight is tried. */
const OVERFLOW_HOLD = 32;
const TOLD_MARGIN = 0.97;
const FAST_PROBE = 0.1;
const SLOW_PROBE = 0.02;
const PACE_MARGIN = 1;

/** Drops times older than two seconds: the windows look back one. */
function prune(times: number[], now: number): void {
  while ((times[0] ?? now) < now - 2000) times.shift();
}
