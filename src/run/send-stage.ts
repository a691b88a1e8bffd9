import type { ChatClient } from "../client.js";
import type { ImageOutcome } from "../dedupe.js";
import { ApiError, type NameSetting } from "../errors.js";
import { AdaptiveLimiter } from "../limiter.js";
import { ConnectionBreaker, type SendContext, sendWithRetries } from "../send.js";
import type { CaptionProtocol } from "../stages/request.js";
import type { CaptionRecord } from "../types.js";
import type { PreparedWork, PrepareStage } from "./prepare-stage.js";
import { messageOf, type RunState } from "./state.js";

/** A 413 means the body was too big: the image is sent once more at this fraction of its pixels. */
const SHRINK_ON_413 = 1 / 4;

export interface SendStageOptions {
  client: ChatClient;
  protocol: CaptionProtocol;
  /** The model id recorded in each row. */
  model: string;
  /** Turns the model's caption into the one kept (a trigger word before it, say). */
  decorate: (caption: string) => string;
  concurrency: number;
  rpm: number | undefined;
  retries: number;
  nameSetting: NameSetting;
}

/**
 * The senders' half of a run: one limiter and one breaker shared by every request, and for each
 * prepared image the request, its retries, one smaller try after a 413, and the row it earned.
 */
export function createSender(
  options: SendStageOptions,
  state: RunState,
  prepare: PrepareStage,
): (work: PreparedWork) => Promise<ImageOutcome> {
  const context: SendContext = {
    client: options.client,
    retries: options.retries,
    stopSignal: state.control.stopSignal,
    abortSignal: state.control.abortSignal,
    // A dead endpoint shows up as every worker failing to connect; a flaky one does not.
    breaker: new ConnectionBreaker(Math.max(10, 2 * options.concurrency)),
    limiter: new AdaptiveLimiter({
      concurrency: options.concurrency,
      rpm: options.rpm,
      onChange: (allowed) => state.emit({ type: "concurrency", allowed }),
    }),
    onRetry: (path, attempt, delayMs, error) => state.retrying(path, attempt, delayMs, error),
    nameSetting: options.nameSetting,
  };

  return async (work) => {
    const { task, sha256 } = work;
    let image = work.image;
    for (let shrunk = false; ; shrunk = true) {
      const request = options.protocol.request(image, task);
      const outcome = await sendWithRetries(request, options.protocol.read, task.path, context);
      if (outcome.kind === "unfinished") {
        if (outcome.abort) state.abort(outcome.abort);
        return state.unfinished(task);
      }
      if (outcome.kind === "failed") {
        if (!shrunk && outcome.error instanceof ApiError && outcome.error.status === 413) {
          const maxPixels = Math.max(1024, Math.floor(image.width * image.height * SHRINK_ON_413));
          state.emit({
            type: "retrying",
            path: task.path,
            attempt: outcome.attempts,
            delayMs: 0,
            reason: `${messageOf(outcome.error)}; sending it again at ${maxPixels} pixels`,
          });
          const smaller = await prepare.prepare(task, maxPixels);
          if ("dataUrl" in smaller) {
            image = smaller;
            continue;
          }
        }
        const failure = state.failureOf(task, outcome.error, outcome.attempts);
        await state.failed(failure);
        return { kind: "failed", failure };
      }
      const { reply, extracted, attempts } = outcome;
      const record: CaptionRecord = {
        path: task.path,
        caption: options.decorate(extracted.caption),
        model: options.model,
        width: image.width,
        height: image.height,
        prompt_tokens: extracted.usage.promptTokens,
        completion_tokens: extracted.usage.completionTokens,
        attempts,
        latency_ms: reply.latencyMs,
        truncated: extracted.truncated,
        created_at: new Date().toISOString(),
        sha256,
      };
      if (!(await state.captioned(record, null))) return state.unfinished(task);
      return { kind: "captioned", stored: record };
    }
  };
}

/** A dry run's sender: counts each prepared image as one that would be sent. */
export function previewSender(state: RunState): (work: PreparedWork) => Promise<ImageOutcome> {
  return async (work) => {
    state.previewed(work.image);
    return { kind: "dry" };
  };
}
