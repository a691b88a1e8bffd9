const SLOW_START_STEP_MS = 250;
const TOLD_MARGIN = 0.97;
const FAST_PROBE = 0.1;
const SLOW_PROBE = 0.02;
const PACE_MARGIN = 1;

/**
 * The pace at which request starts are spaced for a server that meters a rate (it names a wait of
 * a second or more): the rate it accepted over the last full second. When that second was not
 * full yet (the first burst of a run), the pace starts from what was accepted and doubles every
 * quarter second until the next limit says where it is; after that it probes upwards by about 2 %
 * a second. A rate its rate-limit headers give is the pace from then on.
 */
export class MeteredPace {
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

  /** The pace is set: the server has metered a rate, or its headers gave one. */
  get known(): boolean {
    return this.#pace !== null;
  }

  /** The pace comes from the server's rate-limit headers. */
  get told(): boolean {
    return this.#told;
  }

  /** Ms from a request starting now to the next, at the pace as it is now; 0 without one. */
  intervalAt(now: number): number {
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
    return this.#pace ? 1000 / this.#pace : 0;
  }

  /** A request started now. */
  started(now: number): void {
    if (this.#sendingSince === Number.NEGATIVE_INFINITY) this.#sendingSince = now;
    this.#starts.push(now);
    prune(this.#starts, now);
  }

  /** The server answered a request (with anything but a rate limit). */
  answered(): void {
    if (this.#pace === null || this.#slowStart || this.#told) return;
    // Per success, so about that share of the pace a second: 10 % while the limit is
    // only known to lie between two paces, then 2 %.
    this.#pace += this.#narrowing ? FAST_PROBE : SLOW_PROBE;
  }

  /** The request started at `startedAt` was refused with a limit. */
  refused(startedAt: number, now: number): void {
    this.#refused.push(startedAt);
    prune(this.#refused, now);
  }

  /** Every start is held back until `at`: sending resumes then. */
  resumesAt(at: number): void {
    this.#sendingSince = at;
  }

  /** The first metered limit: the pace is set at the next start, from what was accepted. */
  firstLimit(now: number): void {
    // The rest of a burst is refused within moments of the first refusal: what got through
    // is counted once the pause is over, not at the first refusal.
    if (this.#firstLimit === null) {
      this.#firstLimit = { at: now, full: now - this.#sendingSince >= 1000 };
    }
  }

  /**
   * A later metered limit, one an episode: the pace comes down to what got through, from a full
   * second of sending when there is one.
   */
  limited(now: number): void {
    if (this.#pace === null) return;
    const accepted = this.#acceptedSince(now - 1000);
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

  /** The rate the server's headers give, in requests per second: the pace from now on. */
  setByServer(perSecond: number): void {
    this.#told = true;
    // Just under the quota: requests that leave evenly spaced do not all arrive so.
    this.#pace = perSecond * TOLD_MARGIN;
    this.#slowStart = false;
    this.#narrowing = false;
  }

  /** Requests started since `since` that no limit refused (those still in flight included). */
  #acceptedSince(since: number): number {
    const started = this.#starts.filter((t) => t > since).length;
    const refused = this.#refused.filter((t) => t > since).length;
    return Math.max(0, started - refused);
  }
}

/** Drops times older than two seconds: the windows look back one. */
function prune(times: number[], now: number): void {
  while ((times[0] ?? now) < now - 2000) times.shift();
}
