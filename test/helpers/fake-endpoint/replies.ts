/**
 * The body of a successful chat completion: the caption (or the JSON, the loop or the refusal the
 * options ask for), a revision's reasoning, finish reason and usage.
 */
import { revisionReply } from "../guide-revisions.js";
import {
  brokenJson,
  instanceOf,
  LOOP_REPLY,
  REFUSAL_REPLY,
  schemaInPrompt,
  wrappedInProse,
} from "./answers.js";
import { videoTokens } from "./context.js";
import { isRecord } from "./http.js";
import { FAKE_MODEL_ID } from "./models.js";
import type { FakeEndpointOptions } from "./options.js";
import type { Behavior, FakeUsage, RecordedRequest } from "./types.js";

export interface Replies {
  /** A chat.completion object with these choices, numbered in the order they are made. */
  completion(model: string | null, choices: unknown[], usage: object | null): object;
  /** The completion an `ok` behaviour answers for this request. */
  okCompletion(record: RecordedRequest, given: Behavior & { kind: "ok" }): object;
}

/**
 * Prompt tokens as a vision server counts them: the prompt's words, and each image's pixels in
 * 28×28 patches (Qwen2-VL's way; MiniCPM-V's slices grow with the pixels too), so that a larger
 * image costs more, as it does on a real server. An image the fake could not read counts 64, and
 * a video 64 a frame (context.ts).
 */
function promptTokensOf(record: RecordedRequest): number {
  const text = countWords(record.prompt);
  const patches = record.images.reduce(
    (sum, { width, height }) =>
      sum + (width !== null && height !== null ? Math.ceil((width * height) / 784) : 64),
    0,
  );
  return text + patches + (record.video === null ? 0 : videoTokens(record.video));
}

function countWords(text: string | null): number {
  if (text === null) return 0;
  return text.split(/\s+/).filter((word) => word.length > 0).length;
}

/** `random` is the fake's one seeded source, shared with the faults. */
export function createReplies(options: FakeEndpointOptions, random: () => number): Replies {
  const revision = options.revision;
  let nextCompletionId = 1;

  function completion(model: string | null, choices: unknown[], usage: object | null): object {
    return {
      id: `chatcmpl-${nextCompletionId++}`,
      object: "chat.completion",
      created: Math.floor(Date.now() / 1000),
      model: model ?? FAKE_MODEL_ID,
      choices,
      ...(usage === null ? {} : { usage }),
    };
  }

  function okCompletion(record: RecordedRequest, given: Behavior & { kind: "ok" }): object {
    // A revision's Thinking model reasons the way that revision does, unless the test set a reply.
    const maxTokens = isRecord(record.body) ? record.body.max_tokens : undefined;
    const behavior =
      revision !== undefined && given.content === undefined && given.reasoning === undefined
        ? {
            ...given,
            ...revisionReply(
              revision,
              record.model,
              answerFor(record),
              typeof maxTokens === "number" ? maxTokens : null,
            ),
          }
        : given;
    const content = behavior.content === undefined ? answerFor(record) : behavior.content;
    const message: Record<string, unknown> = { role: "assistant", content };
    if (behavior.reasoning !== undefined) {
      message[behavior.reasoningField ?? "reasoning"] = behavior.reasoning;
    }
    const finishReason = behavior.finishReason === undefined ? "stop" : behavior.finishReason;
    const reasoningTokens =
      behavior.reasoning === undefined ? null : countWords(behavior.reasoning);
    const counts =
      behavior.usage === undefined
        ? {
            prompt_tokens: promptTokensOf(record),
            completion_tokens: countWords(content) + (reasoningTokens ?? 0),
          }
        : behavior.usage;
    const usage: FakeUsage | null =
      counts === null
        ? null
        : {
            ...counts,
            total_tokens: counts.prompt_tokens + counts.completion_tokens,
            ...(reasoningTokens === null || behavior.usage !== undefined
              ? {}
              : { completion_tokens_details: { reasoning_tokens: reasoningTokens } }),
          };
    record.usage = usage ?? undefined;
    return completion(record.model, [{ index: 0, message, finish_reason: finishReason }], usage);
  }

  /** A caption, or the JSON (or the trouble) the options ask for. */
  function answerFor(record: RecordedRequest): string {
    const penalized = (record.frequencyPenalty ?? 0) > 0;
    if (options.degenerate && !(penalized && options.degenerateUnlessPenalized)) {
      return options.degenerate === "loop" ? LOOP_REPLY : REFUSAL_REPLY;
    }
    const format = isRecord(record.responseFormat) ? record.responseFormat : null;
    const honoured =
      format?.type === "json_schema" && (options.responseFormat ?? "honour") === "honour";
    const schema = honoured
      ? (format?.json_schema as Record<string, unknown> | undefined)?.schema
      : schemaInPrompt(record.prompt);
    if (schema === undefined) return captionFor(record);
    let json = JSON.stringify(instanceOf(schema, captionFor(record)));
    if ((options.invalidJsonRate ?? 0) > 0 && random() < (options.invalidJsonRate ?? 0)) {
      json = brokenJson(json);
    }
    return honoured ? json : wrappedInProse(json);
  }

  function captionFor(record: RecordedRequest): string {
    if (options.caption) return options.caption(record);
    const media = record.image ?? record.video;
    if (media === null) return "ready";
    if (media.sha256 === "") return `A test caption for request ${record.index}.`;
    return `A test caption for ${media.sha256.slice(0, 12)}.`;
  }

  return { completion, okCompletion };
}
