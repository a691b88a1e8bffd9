/** Requests per minute shared by every process sending to one endpoint. */
export interface RequestBudget {
  /** Resolves true once a request may be sent, false if `signal` aborts first. */
  take(signal: AbortSignal): Promise<boolean>;
  /** The server said to wait this long: every process sharing the budget waits too. */
  refused(waitMs: number): void;
  /** A reply's rate-limit headers, which may give the rate for every process. */
  observe?(headers: Headers | null | undefined): void;
}
