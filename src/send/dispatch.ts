/**
 * Something that admits requests one at a time: a limiter, or an endpoint (its limiter and
 * whether it is up). The dispatcher does all the waiting; a gate only says when it could admit.
 */
export interface Gate<S> {
  /**
   * When this gate could start a request: a time at or before `now` if at once, a later time when
   * paced or paused, Infinity while it has no free slot (it calls its listener when one frees).
   */
  readyAt(now: number): number;
  /** Starts a request; only called when readyAt(now) <= now. */
  start(now: number): S;
  /** Share of its slots in use: among gates ready at once, the least loaded is taken. */
  load(): number;
  /** Requests it lets in flight at once now: the dispatcher seats as many images as all allow. */
  capacity(): number;
  /** Called once by the dispatcher: the gate calls `listener` whenever readyAt may have moved. */
  listen(listener: () => void): void;
}

interface Waiter<T> {
  resolve: (value: T | null) => void;
  signal: AbortSignal | undefined;
  onAbort: () => void;
}

/**
 * Hands each waiting request, first come first served, to whichever gate can take it soonest. With
 * one gate it is that gate's queue; with several (one per endpoint) a faster server frees slots
 * more often and so takes more of the work.
 */
export class Dispatcher<S, G extends Gate<S> = Gate<S>> {
  readonly gates: readonly G[];
  readonly #waiters: Waiter<{ gate: G; slot: S }>[] = [];
  #timer: NodeJS.Timeout | null = null;
  #timerAt = Number.POSITIVE_INFINITY;
  #seated = 0;
  /** Waiting for a seat; each is handed the function that gives it back. */
  readonly #seatWaiters: Waiter<() => void>[] = [];

  constructor(gates: readonly G[]) {
    this.gates = gates;
    for (const gate of gates) gate.listen(() => this.#pump());
  }

  /**
   * Waits for a seat: room for one more image in the send stage, as many as the gates let in
   * flight. An image is taken off the queue only once seated, so no more are held prepared than
   * can be sent; its requests then wait here for slots (and their pace) one by one.
   */
  seat(signal?: AbortSignal): Promise<(() => void) | null> {
    return this.#wait(this.#seatWaiters, signal);
  }

  /** Waits for a slot on some gate; resolves null if `signal` aborts first. */
  acquire(signal?: AbortSignal): Promise<{ gate: G; slot: S } | null> {
    return this.#wait(this.#waiters, signal);
  }

  /** Joins `queue` until the pump hands over a value, or `signal` aborts (null). */
  #wait<T>(queue: Waiter<T>[], signal: AbortSignal | undefined): Promise<T | null> {
    if (signal?.aborted) return Promise.resolve(null);
    return new Promise((resolve) => {
      const waiter: Waiter<T> = {
        resolve,
        signal,
        onAbort: () => {
          const index = queue.indexOf(waiter);
          if (index !== -1) queue.splice(index, 1);
          resolve(null);
          // A pending wake-up with nobody left to wake would keep the process alive for nothing.
          if (this.#waiters.length === 0) this.#clearTimer();
        },
      };
      queue.push(waiter);
      signal?.addEventListener("abort", waiter.onAbort, { once: true });
      this.#pump();
    });
  }

  #pump(): void {
    const seats = this.gates.reduce((sum, gate) => sum + gate.capacity(), 0);
    while (this.#seatWaiters.length > 0 && this.#seated < Math.max(1, seats)) {
      const waiter = this.#seatWaiters.shift();
      if (!waiter) break;
      waiter.signal?.removeEventListener("abort", waiter.onAbort);
      this.#seated += 1;
      let open = true;
      waiter.resolve(() => {
        if (!open) return;
        open = false;
        this.#seated -= 1;
        this.#pump();
      });
    }
    while (this.#waiters.length > 0) {
      const now = performance.now();
      let soonest = Number.POSITIVE_INFINITY;
      let chosen: G | null = null;
      for (const gate of this.gates) {
        const at = gate.readyAt(now);
        if (at <= now) {
          if (chosen === null || gate.load() < chosen.load()) chosen = gate;
        } else if (at < soonest) {
          soonest = at;
        }
      }
      if (chosen === null) {
        this.#wakeAt(soonest, now);
        return;
      }
      const waiter = this.#waiters.shift();
      if (!waiter) return;
      waiter.signal?.removeEventListener("abort", waiter.onAbort);
      waiter.resolve({ gate: chosen, slot: chosen.start(now) });
    }
    this.#clearTimer();
  }

  /** Sleeps until `at` (or until a gate calls); a nearer wake-up replaces a later one. */
  #wakeAt(at: number, now: number): void {
    if (at === Number.POSITIVE_INFINITY) return;
    if (this.#timer && this.#timerAt <= at) return;
    this.#clearTimer();
    this.#timerAt = at;
    this.#timer = setTimeout(() => {
      this.#timer = null;
      this.#timerAt = Number.POSITIVE_INFINITY;
      this.#pump();
    }, at - now);
  }

  #clearTimer(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    this.#timerAt = Number.POSITIVE_INFINITY;
  }
}
