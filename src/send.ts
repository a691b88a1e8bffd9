import { type ChatClient, type ChatReply, RequestCancelledError } from "./client.js";
import {
  ApiError,
  AuthError,
  ConnectionError,
  EndpointNotFoundError,
  type NameSetting,
  RateLimitError,
  RunAbortedError,
  ServerError,
} from "./errors.js";
import type { AdaptiveLimiter } from "./limiter.js";
import { saysModelMissing } from "./models.js";
import { retryDelay, serverRequestedDelay, shouldRetry } from "./retry.js";
import type { ExtractedCaption } from "./stages/request.js";

export type SendOutcome =
  | { kind: "captioned"; reply: ChatReply; extracted: ExtractedCaption; attempts: number }
  | { kind: "failed"; error: unknown; attempts: number }
  /** Ended without a result: the run is stopping, or `abort` says why it must. */
  | { kind: "unfinished"; abort?: RunAbortedError };

export interface SendContext {
  client: ChatClient;
  retries: number;
  /** Once aborted, no new attempt starts and waits end early. */
  stopSignal: AbortSignal;
  /** Cancels requests in flight. */
  abortSignal: AbortSignal;
  breaker: ConnectionBreaker;
  /** Shared by every request of the run: concurrency, backing off, --rpm. */
  limiter: AdaptiveLimiter;
  /** Told before each wait for another attempt at the request for `label`. */
  onRetry: (label: string, attempt: number, delayMs: number, error: unknown) => void;
  /** How the message of an unreachable endpoint names the base URL. */
  nameSetting: NameSetting;
  /** The run's end when an answer says the model does not exist. */
  modelMissing: (error: ApiError) => RunAbortedError;
}

/** Turns a 2xx reply into a caption, or throws the ApiError that says why it is not one. */
export type ReplyReader = (body: unknown) => ExtractedCaption;

/**
 * Tells when the endpoint is down rather than flaky: that many connection failures in a row,
 * across all workers, with no reply of any kind in between.
 */
export class ConnectionBreaker {
  #failures = 0;
  #captioned = false;
  constructor(readonly threshold: number) {}
  /** A reply arrived (any status): the server is there. */
  reachable(): void {
    this.#failures = 0;
  }
  /** A caption came back: the base URL, key and model are right. */
  succeeded(): void {
    this.#captioned = true;
  }
  /** Whether any request of this run has been answered with a caption yet. */
  get everSucceeded(): boolean {
    return this.#captioned;
  }
  /** Returns true once the endpoint should be given up on. */
  unreachable(): boolean {
    this.#failures += 1;
    return this.#failures >= this.threshold;
  }
}

/** Sends one caption request, retrying what may be transient, until it succeeds or cannot. */
export async function sendWithRetries(
  request: object | Uint8Array,
  read: ReplyReader,
  label: string,
  context: SendContext,
): Promise<SendOutcome> {
  for (let attempt = 1; ; attempt += 1) {
    const slot = await context.limiter.acquire(context.stopSignal);
    if (!slot) return { kind: "unfinished" };
    try {
      const reply = await context.client.chat(request, context.abortSignal);
      context.limiter.observe(reply.headers);
      slot.done();
      context.breaker.reachable();
      const extracted = read(reply.body);
      context.breaker.succeeded();
      return { kind: "captioned", reply, extracted, attempts: attempt };
    } catch (error) {
      // Settling a slot twice is a no-op, so a reply that failed extraction stays `done`.
      if (error instanceof RequestCancelledError) {
        slot.release();
        return { kind: "unfinished" };
      }
      if (error instanceof ApiError) context.limiter.observe(error.headers);
      const delayMs = retryDelay(attempt, error);
      if (isSlowDown(error)) slot.congested(delayMs, isMetered(error));
      else if (error instanceof ConnectionError) slot.release();
      else slot.done();

      if (!(error instanceof ConnectionError && error.refused)) context.breaker.reachable();
      else if (context.breaker.unreachable()) {
        return {
          kind: "unfinished",
          abort: unreachable(error, attempt, label, true, context.nameSetting),
        };
      }
      // Some things about the endpoint will not change by retrying: stop before every image fails.
      if (error instanceof ConnectionError && error.unknownHost) {
        return { kind: "unfinished", abort: endpointWrong(error) };
      }
      // A wrong model id would fail every image one by one.
      if (saysModelMissing(error) && !context.breaker.everSucceeded) {
        return { kind: "unfinished", abort: context.modelMissing(error as ApiError) };
      }
      if (error instanceof EndpointNotFoundError && !context.breaker.everSucceeded) {
        return { kind: "unfinished", abort: endpointWrong(error) };
      }
      if (error instanceof AuthError) {
        return {
          kind: "unfinished",
          abort: new RunAbortedError(error.code, error.message, { cause: error }),
        };
      }
      if (!shouldRetry(error) || attempt > context.retries) {
        // Nothing about one image stops a connection being made: every other image would fail too.
        if (error instanceof ConnectionError && error.refused) {
          return {
            kind: "unfinished",
            abort: unreachable(error, attempt, label, false, context.nameSetting),
          };
        }
        return { kind: "failed", error, attempts: attempt };
      }
      // Once a stop is asked for, no new attempts: the image is left for the next run.
      if (context.stopSignal.aborted) return { kind: "unfinished" };
      context.onRetry(label, attempt, delayMs, error);
      await sleep(delayMs, context.stopSignal);
      if (context.stopSignal.aborted) return { kind: "unfinished" };
    }
  }
}

/** A server that names a wait of a second or more is metering a rate, not shedding a spike. */
function isMetered(error: unknown): boolean {
  const asked = error instanceof ApiError ? serverRequestedDelay(error.headers) : null;
  return asked !== null && asked >= 1000;
}

/** The server asks every client to back off, not just this request to be retried. */
function isSlowDown(error: unknown): boolean {
  if (error instanceof RateLimitError) return true;
  return (
    error instanceof ServerError &&
    error.status === 503 &&
    error.headers?.has("retry-after") === true
  );
}

function unreachable(
  error: ConnectionError,
  attempt: number,
  label: string,
  breaker: boolean,
  name: NameSetting,
): RunAbortedError {
  const where = breaker
    ? "many requests in a row failed to connect"
    : `after ${attempt} ${attempt === 1 ? "attempt" : "attempts"} on ${label}`;
  return new RunAbortedError(
    "endpoint_unreachable",
    `${error.message} (${where}); check ${name("baseUrl")} and that the server is up, then rerun to resume`,
    { cause: error },
  );
}

function endpointWrong(error: ApiError): RunAbortedError {
  return new RunAbortedError("endpoint_wrong", `${error.message}; nothing was captioned`, {
    cause: error,
  });
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done, { once: true });
  });
}
