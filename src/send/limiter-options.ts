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
