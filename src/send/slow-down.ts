import { ApiError, RateLimitError, ServerError } from "../errors.js";
import { serverRequestedDelay } from "./retry.js";

/** A server that names a wait of a second or more is metering a rate, not shedding a spike. */
export function isMetered(error: unknown): boolean {
  const asked = error instanceof ApiError ? serverRequestedDelay(error.headers) : null;
  return asked !== null && asked >= 1000;
}

/** The server asks every client to back off, not just this request to be retried. */
export function isSlowDown(error: unknown): boolean {
  if (error instanceof RateLimitError) return true;
  return (
    error instanceof ServerError &&
    error.status === 503 &&
    error.headers?.has("retry-after") === true
  );
}
