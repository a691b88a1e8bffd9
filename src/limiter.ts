export interface LimiterOptions {
  /** The most requests in flight at once (`-c`). */
  concurrency: number;
  /** Requests per minute at most (`--rpm`); unlimited when undefined. */
  rpm?: number | undefined;
  /** Reported whenever the allowed concurrency changes. */
  onChange?: (allowed: number) => void;
}

interface Waiter {
  resolve: (slot: Slot | null) => void;
  signal: AbortSignal | undefined;
  onAbort: () => void;
}

/** A permit to send one request; say how it went when it is over. */
export interface Slot {
  /** The server answered (with anything but a rate limit). */
  done(): void;
  /**
   * The server said to slow down (429, or 503 with Retry-After), asking for this many ms of quiet.
   * `metered` says it named a wait of a second or more itself, the mark of a real rate limit
   * rather than a passing overload.
   */
  congested(pauseMs: number, metered: boolean): void;
  /** No answer to learn from (connection error, cancelled). */
  release(): void;
}

/**
 * One gate shared by every request of a run. It lets at most `allowed` requests be in flight,
 * where `allowed` starts at `-c`, halves when the server rate-limits and climbs back by about one
 * per round trip while it does not (AIMD, as TCP does); it holds every request back while the
 * server's Retry-After lasts; once rate-limited it also paces request starts at the rate the
 * server was seen to accept, probing slowly upwards; and it spaces request starts for `--rpm`.
 */
export class AdaptiveLimiter {
  readonly #max: number;
  readonly #interval: number;
  readonly #onChange: ((allowed: number) => void) | undefined;
  #allowed: number;
  #active = 0;
  #pausedUntil = 0;
  #nextStart = 0;
  #decreasedAt = Number.NEGATIVE_INFINITY;
  readonly #waiters: Waiter[] = [];
  #timer: NodeJS.Timeout | null = null;
  /** When requests succeeded in the last second, to learn the rate the server allows. */
  readonly #successes: number[] = [];
  /** Requests per second the server has shown it accepts; null until it first rate-limits. */
  #learnedRate: number | null = null;

  constructor(options: LimiterOptions) {
    this.#max = options.concurrency;
    this.#allowed = options.concurrency;
    this.#interval = options.rpm ? 60_000 / options.rpm : 0;
    this.#onChange = options.onChange;
  }

  /** Requests allowed in flight right now. */
  get allowed(): number {
    return Math.floor(this.#allowed);
  }

  get active(): number {
    return this.#active;
  }

  /** Waits for a permit; resolves null if `signal` aborts first. */
  acquire(signal?: AbortSignal): Promise<Slot | null> {
    if (signal?.aborted) return Promise.resolve(null);
    return new Promise((resolve) => {
      const waiter: Waiter = {
        resolve,
        signal,
        onAbort: () => {
          const index = this.#waiters.indexOf(waiter);
          if (index !== -1) this.#waiters.splice(index, 1);
          resolve(null);
          // A pending wake-up with nobody left to wake would keep the process alive for nothing.
          if (this.#waiters.length === 0 && this.#timer) {
            clearTimeout(this.#timer);
            this.#timer = null;
          }
        },
      };
      this.#waiters.push(waiter);
      signal?.addEventListener("abort", waiter.onAbort, { once: true });
      this.#pump();
    });
  }

  #pump(): void {
    if (this.#timer) return;
    while (this.#waiters.length > 0) {
      if (this.#active >= Math.max(1, Math.floor(this.#allowed))) return;
      const now = performance.now();
      const wakeAt = Math.max(this.#pausedUntil, this.#nextStart);
      if (wakeAt > now) {
        this.#timer = setTimeout(() => {
          this.#timer = null;
          this.#pump();
        }, wakeAt - now);
        return;
      }
      const waiter = this.#waiters.shift();
      if (!waiter) return;
      waiter.signal?.removeEventListener("abort", waiter.onAbort);
      const interval = Math.max(this.#interval, this.#learnedRate ? 1000 / this.#learnedRate : 0);
      if (interval > 0) this.#nextStart = Math.max(now, this.#nextStart) + interval;
      this.#active += 1;
      waiter.resolve(this.#slot(now));
    }
  }

  #slot(startedAt: number): Slot {
    let open = true;
    const finish = (update: () => void) => {
      if (!open) return;
      open = false;
      this.#active -= 1;
      update();
      this.#pump();
    };
    return {
      done: () =>
        finish(() => {
          const now = performance.now();
          this.#successes.push(now);
          while ((this.#successes[0] ?? now) < now - 1000) this.#successes.shift();
          // Additive increase: about +1 per round trip's worth of successes.
          if (this.#allowed < this.#max) {
            this.#setAllowed(Math.min(this.#max, this.#allowed + 1 / this.#allowed));
          }
          // The learned pace climbs about 10 % a second (0.1 a success at that rate), probing.
          if (this.#learnedRate !== null) this.#learnedRate += 0.1;
        }),
      congested: (pauseMs, metered) =>
        finish(() => {
          this.#pausedUntil = Math.max(this.#pausedUntil, performance.now() + pauseMs);
          // Requests sent before the last cut were sent at the old rate: one cut per episode.
          if (startedAt > this.#decreasedAt) {
            const now = performance.now();
            this.#decreasedAt = now;
            this.#setAllowed(Math.max(1, this.#allowed / 2));
            // With a fast server even one request in flight can outrun a rate limit, so the
            // rate it just accepted (successes in the last second) becomes a pace as well. With
            // no success to go by yet there is no rate to learn; the pause does the work.
            const recent = this.#successes.filter((t) => t >= now - 1000).length;
            if (metered && recent > 0) {
              this.#learnedRate = Math.min(recent, this.#learnedRate ?? recent);
            }
          }
        }),
      release: () => finish(() => {}),
    };
  }

  #setAllowed(value: number): void {
    const before = Math.floor(this.#allowed);
    this.#allowed = value;
    if (Math.floor(value) !== before) this.#onChange?.(Math.floor(value));
  }
}
