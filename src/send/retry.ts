import {
  ApiError,
  ConnectionError,
  EmptyCaptionError,
  InvalidJsonError,
  InvalidResponseError,
  RateLimitError,
  RetryableStatusError,
  ServerError,
  TimeoutError,
} from "../errors.js";

/** The longest wait a server can ask for; past this we wait the cap and try again. */
export const MAX_RETRY_AFTER_MS = 60_000;
const BASE_DELAY_MS = 500;
const MAX_BACKOFF_MS = 8_000;

/** Whether another attempt could succeed where this one failed. */
export function shouldRetry(error: unknown): boolean {
  if (!(error instanceof ApiError)) return false;
  // Servers can veto or force a retry explicitly (OpenAI's convention).
  const verdict = error.headers?.get("x-should-retry");
  if (verdict === "true") return true;
  if (verdict === "false") return false;
  // An empty caption is asked again once, with a penalty, by the sender (send/variants.ts).
  if (error instanceof EmptyCaptionError) return false;
  return (
    error instanceof RateLimitError ||
    error instanceof ServerError ||
    error instanceof RetryableStatusError ||
    error instanceof ConnectionError ||
    error instanceof TimeoutError ||
    error instanceof InvalidResponseError
  );
}

/**
 * The wait the server asked for, in ms: `retry-after-ms`, then `retry-after` as seconds or an
 * HTTP date. Null when it asked for nothing usable.
 */
export function serverRequestedDelay(
  headers: Headers | null,
  now: number = Date.now(),
): number | null {
  if (!headers) return null;
  const ms = headers.get("retry-after-ms");
  if (ms !== null && ms.trim() !== "") {
    const value = Number(ms);
    if (Number.isFinite(value) && value >= 0) return value;
  }
  const after = headers.get("retry-after");
  if (after !== null && after.trim() !== "") {
    const seconds = Number(after);
    if (Number.isFinite(seconds)) return seconds >= 0 ? seconds * 1000 : null;
    const date = Date.parse(after);
    if (Number.isFinite(date)) return Math.max(0, date - now);
  }
  return null;
}

/**
 * How long to wait before attempt `attempt + 1`, given that attempt `attempt` (1-based) failed
 * with `error`. Jitter spreads out workers that failed together so they do not retry in lockstep.
 */
export function retryDelay(
  attempt: number,
  error: unknown,
  random: () => number = Math.random,
): number {
  // A malformed answer says nothing about the server's load: ask again at once.
  if (error instanceof InvalidJsonError) return 0;
  const requested = error instanceof ApiError ? serverRequestedDelay(error.headers) : null;
  if (requested !== null) return Math.min(requested, MAX_RETRY_AFTER_MS);
  const backoff = Math.min(BASE_DELAY_MS * 2 ** (attempt - 1), MAX_BACKOFF_MS);
  return Math.round(backoff * (1 - random() * 0.25));
}
