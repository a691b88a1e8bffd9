import { type CaptionFlag, captionFlags, RETRY_FLAGS } from "../answer/degenerate.js";
import {
  ApiError,
  CaptionError,
  EmptyCaptionError,
  type NameSetting,
  type RunAbortedError,
} from "../errors.js";
import type { ImageOutcome } from "../prepare/dedupe.js";
import type { PreparedWork, PrepareStage } from "../prepare/stage.js";
import type { RunState } from "../run/state.js";
import type { CaptionRecord, PreparedImage } from "../types.js";
import { messageOf } from "../util/message.js";
import { snippet } from "../util/snippet.js";
import { type AttemptPlan, sendImage } from "./attempts.js";
import { ClipVariants, refusedWarning } from "./clip-variants.js";
import type { Dispatcher } from "./dispatch.js";
import type { Endpoint } from "./endpoint.js";
import type { CaptionProtocol, RequestVariant } from "./request.js";
import type { SendContext, SendOutcome } from "./send-context.js";
import type { Slot } from "./slot.js";
import type { VideoRoutes } from "./video-routes.js";

/** A 413 means the body was too big: the image is sent once more at this fraction of its pixels. */
const SHRINK_ON_413 = 1 / 4;

export interface SendStageOptions {
  /** The run's endpoints, each with its client, limiter, model and protocol. */
  endpoints: Dispatcher<Slot, Endpoint>;
  /** Turns the model's caption into the one kept (a trigger word before it, say). */
  decorate: (caption: string) => string;
  retries: number;
  nameSetting: NameSetting;
  /** Recorded in each row: which prompt made it. */
  promptHash: string;
  /** Flagged captions become failures instead of rows. */
  rejectFlagged: boolean;
  /** The run's end when an answer says the model does not exist (models.ts). */
  modelMissing: (error: ApiError, endpoint: Endpoint) => RunAbortedError;
  /** Told of each image that does not fit an endpoint's context even alone. */
  onContextExceeded?: SendContext["onContextExceeded"];
  /** Told of each request sent again after an endpoint ran out of context. */
  onOverflowRetry?: SendContext["onOverflowRetry"];
  /** Told of what each answer cost, kept or not. */
  onUsage?: SendContext["onUsage"];
  /** Several prompts asked of each image (`--prompts`), in place of one. */
  prompts?: SeveralPrompts | undefined;
  /** Which form each endpoint gets clips in. */
  video: VideoRoutes;
  /** Told once for each endpoint that refuses clips sent as video. */
  onWarning: (message: string) => void;
}

/** A caption that came back, with what the checks found in it. */
export interface Answer {
  outcome: SendOutcome & { kind: "captioned" };
  flags: CaptionFlag[];
}

/** How one prompt's sending for an image ended. */
export type Asked =
  | { kind: "unfinished"; abort: RunAbortedError | undefined }
  | { kind: "failed"; error: unknown; attempts: number }
  | { kind: "answered"; answer: Answer; image: PreparedImage; attempts: number };

/**
 * Asks one prompt of a prepared image (`image`: the one sent last, smaller after a 413), the
 * prompt's protocol taken from the endpoint that sends it, with the answers it uses.
 */
export type Ask = (
  work: PreparedWork,
  image: PreparedImage,
  protocolOf: (endpoint: Endpoint) => CaptionProtocol,
  answers?: Readonly<Record<string, string>>,
  /**
   * The image is in flight already (an earlier prompt of it was answered): a stop (a budget, a
   * first Ctrl-C) lets it finish, as it lets a request in flight finish; only an abort ends it.
   */
  finishing?: boolean,
) => Promise<Asked>;

/** The sending of an image under several prompts: each asked in turn, one row from them all. */
export type SeveralPrompts = (work: PreparedWork, ask: Ask) => Promise<ImageOutcome>;

/** What the flow needs of a run's senders: room to send one more image, then its sending. */
export interface Sender<T> {
  /** Waits for a seat before an image is taken off the queue; null once the run is stopping. */
  admit(): Promise<T | null>;
  send(work: PreparedWork): Promise<ImageOutcome>;
  /** The seat's image is done, or none came for it (the queue ran dry). */
  release(seat: T): void;
}

/**
 * The senders' half of a run: the endpoints' limiters shared by every request, and for each
 * prepared image the request, its retries, one smaller try after a 413, and the row it earned.
 */
export function createSender(
  options: SendStageOptions,
  state: RunState,
  prepare: PrepareStage,
): Sender<() => void> {
  const context: SendContext = {
    endpoints: options.endpoints,
    retries: options.retries,
    stopSignal: state.control.stopSignal,
    abortSignal: state.control.abortSignal,
    onRetry: (path, attempt, delayMs, error) => state.retrying(path, attempt, delayMs, error),
    nameSetting: options.nameSetting,
    modelMissing: options.modelMissing,
    onContextExceeded: options.onContextExceeded,
    onOverflowRetry: options.onOverflowRetry,
    onUsage: options.onUsage,
  };

  const ask: Ask = async (work, preparedImage, protocolOf, answers, finishing = false) => {
    const { task } = work;
    let image = preparedImage;
    let variant: RequestVariant = { penalize: false, plain: false };
    let shrunk = false;
    /** A 400 to a request with response_format, waiting to see if the same without it works. */
    let refusal: { error: unknown; protocol: CaptionProtocol } | null = null;
    /** A degenerate answer kept while a penalised retry is tried: the one kept if that fails. */
    let first: Answer | null = null;
    /** The bytes of the last request built, for what it carried when its answer comes back. */
    let lastRequest: Uint8Array | null = null;
    /** The answer the plan settled on. */
    let kept: Answer | null = null;
    const retry = (attempts: number, reason: string) =>
      state.emit({ type: "retrying", path: task.path, attempt: attempts, delayMs: 0, reason });
    const clip = new ClipVariants(
      task,
      prepare,
      options.video,
      state.control.abortSignal,
      (endpoint, error) =>
        options.onWarning(refusedWarning(endpoint, error, options.nameSetting("videoMode"))),
    );
    /** Which variant the one attempt loop (attempts.ts) sends next, if any. */
    const plan: AttemptPlan = {
      requestFor: async (endpoint) => {
        // The attempt loop fails an image whose request cannot be built (an ImageError).
        image = await clip.forEndpoint(image, endpoint.label);
        const sent = variant;
        const protocol = protocolOf(endpoint);
        const request = await protocol.request(image, task, sent, answers);
        lastRequest = request;
        return { request, read: (body) => protocol.read(body, sent) };
      },
      afterFailure: async (error, endpoint, attempts) => {
        // The penalised retry failed (a server that refuses frequency_penalty, say): keep the first.
        if (first) return false;
        if (image.clip) {
          const again = await clip.afterFailure(image, error, endpoint.label, variant.plain);
          if (again) {
            retry(attempts, `${messageOf(error)}; ${again.reason}`);
            image = again.image;
            return true;
          }
        }
        if (!image.clip && !shrunk && error instanceof ApiError && error.status === 413) {
          const maxPixels = Math.max(1024, Math.floor(image.width * image.height * SHRINK_ON_413));
          retry(attempts, `${messageOf(error)}; sending it again at ${maxPixels} pixels`);
          const smaller = await prepare.prepare(task, maxPixels);
          shrunk = true;
          if ("dataUrl" in smaller) {
            image = smaller;
            return true;
          }
        }
        if (protocolOf(endpoint).mayRefuseFormat(error, lastRequest)) {
          refusal = { error, protocol: protocolOf(endpoint) };
          retry(attempts, `${messageOf(error)}; sending it again without response_format`);
          variant = { ...variant, plain: true };
          return true;
        }
        if (error instanceof EmptyCaptionError && !error.outOfTokens && !variant.penalize) {
          retry(attempts, `${messageOf(error)}; asking again with a penalty on repetition`);
          variant = { ...variant, penalize: true };
          return true;
        }
        return false;
      },
      afterAnswer: (outcome, attempts) => {
        clip.afterAnswer(image, outcome.endpoint.label, variant.plain);
        if (refusal !== null) {
          refusal.protocol.formatRefused(refusal.error);
          refusal = null;
        }
        const flags = captionFlags(outcome.extracted.caption, outcome.extracted.truncated);
        if (variant.penalize || !flags.some((flag) => RETRY_FLAGS.has(flag))) {
          kept = { outcome, flags };
          return false;
        }
        first = { outcome, flags };
        retry(
          attempts,
          `the caption looks like ${flags.join(" and ")}; asking again with a penalty on repetition`,
        );
        variant = { ...variant, penalize: true };
        return true;
      },
    };
    const outcome = await sendImage(
      plan,
      task.path,
      finishing ? { ...context, stopSignal: context.abortSignal } : context,
    );
    // Stopped before the penalised retry went (a budget, a signal): the first answer was paid
    // for, and is kept with its flags.
    // Set by the plan's callbacks, which the compiler does not follow.
    const paid = first as Answer | null;
    if (outcome.kind === "unfinished") {
      if (paid && !outcome.abort) {
        return { kind: "answered", answer: paid, image, attempts: paid.outcome.attempts };
      }
      return { kind: "unfinished", abort: outcome.abort };
    }
    if (outcome.kind === "failed") {
      if (first) return { kind: "answered", answer: first, image, attempts: outcome.attempts };
      // A clip whose cut again the run's abort stopped is not at fault: left for the next run.
      if (clip.aborted) return { kind: "unfinished", abort: undefined };
      return { kind: "failed", error: clip.failure ?? outcome.error, attempts: outcome.attempts };
    }
    const flags = () => captionFlags(outcome.extracted.caption, outcome.extracted.truncated);
    const answer = kept ?? { outcome, flags: flags() };
    return { kind: "answered", answer, image, attempts: outcome.attempts };
  };

  const send = async (work: PreparedWork): Promise<ImageOutcome> => {
    if (options.prompts) return options.prompts(work, ask);
    const asked = await ask(work, work.image, (endpoint) => endpoint.protocol);
    if (asked.kind === "unfinished") {
      if (asked.abort) state.abort(asked.abort);
      return state.unfinished(work.task);
    }
    if (asked.kind === "failed") {
      const failure = state.failureOf(work.task, asked.error, asked.attempts);
      await state.failed(failure);
      return { kind: "failed", failure };
    }
    return keep(work, asked.answer, asked.image, asked.attempts);
  };

  return {
    admit: () => options.endpoints.seat(state.control.stopSignal),
    send,
    release: (seat) => seat(),
  };

  /** The row an answer earns, or its failure when flagged captions are refused. */
  async function keep(
    work: PreparedWork,
    answer: Answer,
    image: PreparedImage,
    attempts: number,
  ): Promise<ImageOutcome> {
    const { task, sha256 } = work;
    const { reply, extracted, endpoint } = answer.outcome;
    if (options.rejectFlagged && answer.flags.length > 0) {
      const failure = state.failureOf(task, flaggedError(answer), attempts);
      await state.failed(failure);
      return { kind: "failed", failure };
    }
    const record: CaptionRecord = {
      path: task.path,
      caption: options.decorate(extracted.caption),
      model: endpoint.model,
      endpoint: endpoint.label,
      width: image.width,
      height: image.height,
      prompt_tokens: extracted.usage.promptTokens,
      completion_tokens: extracted.usage.completionTokens,
      reasoning_tokens: extracted.usage.reasoningTokens,
      attempts,
      latency_ms: reply.latencyMs,
      truncated: extracted.truncated,
      flags: answer.flags,
      created_at: new Date().toISOString(),
      sha256,
      prompt_hash: options.promptHash,
      ...(extracted.data ? { data: extracted.data } : {}),
      ...(extracted.tags ? { tags: extracted.tags } : {}),
      ...clipRecordOf(image),
    };
    if (!(await state.captioned(record, null))) return state.unfinished(task);
    return { kind: "captioned", stored: record };
  }
}

/** A clip's row fields: its length and what was sent of it. */
export function clipRecordOf(image: PreparedImage): Pick<CaptionRecord, "video"> {
  return image.clip ? { video: { ...image.clip, bytes: image.bytes } } : {};
}

/** A dry run's sender: counts each prepared image as one that would be sent. */
export function previewSender(state: RunState): Sender<true> {
  return {
    admit: async () => (state.control.stopSignal.aborted ? null : true),
    send: async (work) => {
      state.previewed(work.image);
      return { kind: "dry" };
    },
    release: () => {},
  };
}

/** Why a flagged caption is a failure where flagged captions are refused (`rejectFlagged`). */
export function flaggedError(answer: Answer): CaptionError {
  return new CaptionError(
    "flagged",
    `the caption was flagged (${answer.flags.join(", ")}) and flagged captions are refused; it is retried on the next run: ${snippet(answer.outcome.extracted.caption)}`,
  );
}
