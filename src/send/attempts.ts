import { type ExtractedCaption, usageOf } from "../answer/extract.js";
import { ApiError, ConnectionError, ImageError, TimeoutError } from "../errors.js";
import { sleep } from "../util/sleep.js";
import { RequestCancelledError } from "./client.js";
import { ContextExceededError, contextOverflowOf } from "./context-overflow.js";
import type { Endpoint } from "./endpoint.js";
import { leaveOut, settingWrong, unreachable } from "./endpoint-aborts.js";
import { startRequest } from "./in-flight.js";
import { saysModelMissing } from "./models.js";
import { retryDelay, shouldRetry } from "./retry.js";
import type { SendContext, SendOutcome } from "./send-context.js";
import { isMetered, isSlowDown } from "./slow-down.js";

/**
 * Re-sends after the server ran out of shared context that cost no attempt. Each comes with a
 * cut in what is in flight, so a run reaches one at a time long before this; it only bounds a
 * server that says so whatever is in flight.
 */
const FREE_OVERFLOW_RETRIES = 16;
/**
 * Out of context with nothing else of this process in flight there: sent again this many times,
 * after a wait that doubles from ALONE_WAIT_MS, before the image is taken not to fit.
 */
const ALONE_TRIES = 2;
const ALONE_WAIT_MS = 1_000;

/** Turns a 2xx reply into a caption, or throws the ApiError that says why it is not one. */
export type ReplyReader = (body: unknown) => ExtractedCaption;

/** The request for one endpoint (its model, its protocol's state) and how to read its reply. */
export type RequestFor = (
  endpoint: Endpoint,
) => Promise<{ request: object | Uint8Array; read: ReplyReader }>;

/** A caption that came back from one attempt. */
export type Captioned = SendOutcome & { kind: "captioned" };

/**
 * What one image's sending decides between attempts (variants.ts): the request of the variant
 * it is on, and whether a result calls for another variant (smaller, without response_format,
 * with a penalty on repetition), which starts with the retries of a request of its own.
 */
export interface AttemptPlan {
  requestFor: RequestFor;
  /** A failure no retry of the same request mends: true once another variant is ready to send. */
  afterFailure(error: unknown, endpoint: Endpoint, attempts: number): Promise<boolean>;
  /** A caption came back: true once another variant is ready to send instead of keeping it. */
  afterAnswer(answer: Captioned, attempts: number): boolean;
}

/**
 * The one attempt loop of an image: sends its request, retrying what may be transient, and
 * moves to another variant where the plan says so, until a caption is kept or the image fails.
 * Each attempt goes to whichever endpoint can take it first; an attempt that finds its endpoint
 * gone (and so takes it out) is handed to the others without counting against the retries.
 */
export async function sendImage(
  plan: AttemptPlan,
  label: string,
  context: SendContext,
): Promise<SendOutcome> {
  const endpoints = context.endpoints.gates;
  let overflows = 0;
  /** Out of context with nothing else of this process in flight: see ALONE_TRIES. */
  let lonely = 0;
  /** Attempts of the variants before this one; `attempt` counts this one's, for its retries. */
  let spent = 0;
  /** Another variant is a request of its own: its retries, and its tries after an overflow. */
  const nextVariant = (attempts: number) => {
    spent += attempts;
    overflows = 0;
    lonely = 0;
  };
  /** The image's failure, or null when the plan has another variant ready (attempts restart). */
  const failed = async (
    error: unknown,
    attempts: number,
    endpoint: Endpoint,
  ): Promise<SendOutcome | null> => {
    if (await plan.afterFailure(error, endpoint, spent + attempts)) {
      nextVariant(attempts);
      return null;
    }
    return { kind: "failed", error, attempts: spent + attempts, endpoint };
  };
  for (let attempt = 1; ; attempt += 1) {
    const admission = await context.endpoints.acquire(context.stopSignal);
    if (!admission) return { kind: "unfinished" };
    const { gate: endpoint, slot } = admission;
    const sentModel = endpoint.model;
    let built: Awaited<ReturnType<RequestFor>>;
    try {
      built = await plan.requestFor(endpoint);
    } catch (error) {
      slot.release();
      // A request this image cannot have (an {existing} sidecar refused): it fails alone, unsent.
      if (error instanceof ImageError) {
        return { kind: "failed", error, attempts: spent + attempt - 1, endpoint };
      }
      throw error;
    }
    if (endpoint.budget && !(await endpoint.budget.take(context.stopSignal))) {
      slot.release();
      return { kind: "unfinished" };
    }
    const sent = startRequest(endpoint.baseUrl);
    /** Whether it was this process's only request to that server while it ran. */
    let soleRequest = false;
    const ended = () => {
      soleRequest = sent.alone;
      sent.end();
    };
    try {
      const reply = await endpoint.client.chat(built.request, context.abortSignal).finally(ended);
      endpoint.limiter.observe(reply.headers);
      endpoint.budget?.observe?.(reply.headers);
      endpoint.reachable();
      // Billed whether or not its text is a caption (cut off thinking, JSON that does not match).
      context.onUsage?.(usageOf(reply.body), endpoint);
      const extracted = built.read(reply.body);
      // Only a caption's latency says how long captions take (-c auto learns from it).
      slot.done(true);
      endpoint.succeeded();
      const answer: Captioned = {
        kind: "captioned",
        reply,
        extracted,
        attempts: spent + attempt,
        endpoint,
      };
      if (!plan.afterAnswer(answer, spent + attempt)) return answer;
      nextVariant(attempt);
      attempt = 0;
    } catch (error) {
      // Settling a slot twice is a no-op, so a reply that failed extraction stays `done`.
      if (error instanceof RequestCancelledError) {
        slot.release();
        return { kind: "unfinished" };
      }
      if (error instanceof ApiError) {
        endpoint.limiter.observe(error.headers);
        endpoint.budget?.observe?.(error.headers);
      }
      // Out of context is the server's capacity, not this image's fault: fewer in flight there,
      // and the image again at no cost to its attempts, unless nothing else was in flight.
      const overflow = contextOverflowOf(error);
      if (overflow !== null) {
        endpoint.reachable();
        if (overflow.kind === "alone") slot.done();
        else slot.overflowed();
        // Alone in this process, the rest of the server's context may still be another
        // client's (another run or worker on the same server): a few tries after a wait tell
        // that from an image that does not fit at all.
        const alone = overflow.kind === "alone" || soleRequest;
        if (alone && overflow.kind === "shared") lonely += 1;
        if (overflow.kind === "alone" || lonely > ALONE_TRIES) {
          const exceeded = new ContextExceededError(
            error as ApiError,
            overflow.kind === "alone"
              ? overflow
              : { requestTokens: null, contextTokens: null, promptOnly: false },
            overflow.kind === "alone" ? "said" : "measured",
          );
          context.onContextExceeded?.(exceeded, endpoint, label);
          const settled = await failed(exceeded, attempt, endpoint);
          if (settled) return settled;
          attempt = 0;
          continue;
        }
        if (overflows < FREE_OVERFLOW_RETRIES && !context.stopSignal.aborted) {
          overflows += 1;
          const waitMs = alone ? ALONE_WAIT_MS * 2 ** (lonely - 1) : 0;
          context.onOverflowRetry?.(endpoint);
          context.onRetry(label, spent + attempt, waitMs, error);
          if (waitMs > 0) await sleep(waitMs, context.stopSignal);
          if (context.stopSignal.aborted) return { kind: "unfinished" };
          attempt -= 1;
          continue;
        }
      }
      const delayMs = retryDelay(attempt, error);
      if (isSlowDown(error)) {
        slot.congested(delayMs, isMetered(error));
        if (isMetered(error)) endpoint.budget?.refused(delayMs);
      } else if (error instanceof ConnectionError) slot.release();
      else if (error instanceof TimeoutError) slot.timedOut();
      else slot.done();

      const silent = error instanceof ConnectionError || error instanceof TimeoutError;
      // A host name that does not resolve is a setting to fix, not a server that is down.
      const misnamed = error instanceof ConnectionError && error.unknownHost;
      if (!silent) endpoint.reachable();
      else if (!misnamed && endpoint.noReply(error)) {
        if (endpoints.every((gate) => gate.down)) {
          return {
            kind: "unfinished",
            abort: unreachable(error as ApiError, spent + attempt, label, true, context, endpoints),
          };
        }
        // Handed to the endpoints still answering, at once and as the same attempt.
        attempt -= 1;
        continue;
      }
      // A server with no model list at an older revision of the guide knows the family by an
      // older id: the image goes again, as the same attempt, asking for that one.
      if (saysModelMissing(error) && endpoint.tryOlderModel(sentModel)) {
        attempt -= 1;
        continue;
      }
      // Some things about an endpoint will not change by retrying: stop before every image fails,
      // or, with others to go to, leave that one out.
      const wrong = settingWrong(error, endpoint, context);
      if (wrong) {
        const ended = leaveOut(wrong, endpoint, endpoints, error);
        if (ended) return ended;
        attempt -= 1;
        continue;
      }
      if (!shouldRetry(error) || attempt > context.retries) {
        // Nothing about one image stops a connection being made: every other image would fail too.
        if (error instanceof ConnectionError && error.refused) {
          return {
            kind: "unfinished",
            abort: unreachable(error, spent + attempt, label, false, context, endpoints),
          };
        }
        const settled = await failed(error, attempt, endpoint);
        if (settled) return settled;
        attempt = 0;
        continue;
      }
      // Once a stop is asked for, no new attempts: the image is left for the next run.
      if (context.stopSignal.aborted) return { kind: "unfinished" };
      context.onRetry(label, spent + attempt, delayMs, error);
      await sleep(delayMs, context.stopSignal);
      if (context.stopSignal.aborted) return { kind: "unfinished" };
    }
  }
}
