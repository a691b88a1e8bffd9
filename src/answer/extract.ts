import {
  byOptionName,
  EmptyCaptionError,
  InvalidResponseError,
  type NameSetting,
} from "../errors.js";
import type { Usage } from "../types.js";

/** What a reply says: the caption, apart from any reasoning, and how the reply ended. */
export interface ExtractedCaption {
  caption: string;
  /** The model's reasoning, when it sent any; never part of the caption. */
  reasoning: string | null;
  finishReason: string | null;
  /** The model stopped because it hit max_tokens. */
  truncated: boolean;
  usage: Usage;
  /** The structured answer, when one was asked for. */
  data?: Record<string, unknown>;
  tags?: string[];
}

const CLOSE_THINK = "</think>";

/**
 * Pulls the caption out of a chat.completion body. Thinking models report their reasoning in
 * `reasoning`, `reasoning_content` or inline before `</think>` depending on the server; none of it
 * may reach the caption.
 */
export function extractCaption(body: unknown, name: NameSetting = byOptionName): ExtractedCaption {
  const choice = firstChoice(body);
  const message = asRecord(choice.message) ?? {};
  let reasoning = stringOrNull(message.reasoning) ?? stringOrNull(message.reasoning_content);
  let text = contentText(message.content);
  const finishReason = stringOrNull(choice.finish_reason);
  const truncated = finishReason === "length";

  // The Thinking template opens <think> in the prompt, so the reply may hold only the closing tag.
  const close = text.lastIndexOf(CLOSE_THINK);
  if (close !== -1) {
    const before = text.slice(0, close).replace(/^\s*<think>/, "");
    reasoning ??= before.trim();
    text = text.slice(close + CLOSE_THINK.length);
  }
  // An opening tag never closed: the reply was cut off mid-thought, so nothing after it is an
  // answer. Mid-text in a finished reply it is just text that happens to look like a tag.
  const open = text.indexOf("<think>");
  if (open !== -1 && (truncated || text.slice(0, open).trim() === "")) {
    reasoning ??= text.slice(open + "<think>".length).trim();
    text = text.slice(0, open);
  }
  const caption = text.trim();
  if (caption === "") {
    if (truncated && reasoning) {
      throw new EmptyCaptionError(
        `the model used the whole token budget thinking and gave no caption; raise ${name("maxTokens")} (2048 or more for Thinking models)`,
        true,
      );
    }
    const why = reasoning
      ? "the reply held only reasoning (a server-side reasoning parser may be misrouting the answer)"
      : "the reply held no caption text";
    throw new EmptyCaptionError(`${why}; finish_reason ${finishReason ?? "missing"}`, false);
  }
  return { caption, reasoning: reasoning || null, finishReason, truncated, usage: usageOf(body) };
}

function firstChoice(body: unknown): Record<string, unknown> {
  const choices = asRecord(body)?.choices;
  const first = Array.isArray(choices) ? asRecord(choices[0]) : null;
  if (!first) {
    throw new InvalidResponseError(
      "invalid_response",
      "the reply is not a chat completion with choices",
      { status: 200 },
    );
  }
  return first;
}

/** What a reply says it cost, whatever its text: null counts where the server sent none. */
export function usageOf(body: unknown): Usage {
  const usage = asRecord(asRecord(body)?.usage);
  return {
    promptTokens: countOrNull(usage?.prompt_tokens),
    completionTokens: countOrNull(usage?.completion_tokens),
    reasoningTokens: countOrNull(asRecord(usage?.completion_tokens_details)?.reasoning_tokens),
  };
}

/** `content` is a string, or (some servers) an array of parts whose text parts make the reply. */
function contentText(content: unknown): string {
  if (typeof content === "string") return content;
  if (!Array.isArray(content)) return "";
  return content
    .map((part) => {
      const record = asRecord(part);
      return record && typeof record.text === "string" ? record.text : "";
    })
    .join("");
}

function asRecord(value: unknown): Record<string, unknown> | null {
  return typeof value === "object" && value !== null && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : null;
}

function stringOrNull(value: unknown): string | null {
  return typeof value === "string" ? value : null;
}

function countOrNull(value: unknown): number | null {
  return typeof value === "number" && Number.isFinite(value) ? value : null;
}
