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
