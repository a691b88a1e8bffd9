import { setMaxListeners } from "node:events";

/** Lets the caller end a run early: stop() finishes in-flight work, abort() cancels it too. */
export class RunControl {
  readonly #stop = new AbortController();
  readonly #abort = new AbortController();
  readonly stopSignal: AbortSignal = this.#stop.signal;
  readonly abortSignal: AbortSignal = this.#abort.signal;

  constructor() {
    // Every request in flight listens on these; at -c 64 that is 64 listeners, not a leak.
    setMaxListeners(0, this.stopSignal, this.abortSignal);
  }

  /** Start nothing new; let requests in flight finish. */
  stop(): void {
    this.#stop.abort();
  }
  /** Cancel requests in flight as well. */
  abort(): void {
    this.#stop.abort();
    this.#abort.abort();
  }
}
