import type { ValidateFunction } from "ajv";
import { EmptyCaptionError, InvalidJsonError } from "../errors.js";
import type { AnswerSchema } from "../prompts/structured.js";
import { snippet } from "../util/snippet.js";
import type { ExtractedCaption } from "./extract.js";

/**
 * A structured answer read from a reply: the JSON found in it, checked against the schema, and
 * the caption and fields a row takes from it.
 */
export function answerOf(
  answer: AnswerSchema,
  tags: boolean,
  extracted: ExtractedCaption,
  value: unknown,
): ExtractedCaption {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    const cut = extracted.truncated ? " (the reply was cut off at the token budget)" : "";
    throw new InvalidJsonError(
      `the reply is not a JSON object${cut}: ${snippet(extracted.caption)}`,
    );
  }
  const problem = schemaProblem(answer, value);
  if (problem !== null) {
    throw new InvalidJsonError(`the answer does not match the schema: ${problem}`);
  }
  const data = value as Record<string, unknown>;
  const list = tagList(data.tags);
  if (tags && list) data.tags = list;
  const caption = tags && list ? list.join(", ") : captionOfAnswer(answer, data);
  if (caption.trim() === "") {
    throw new EmptyCaptionError("the answer held no caption text (an empty list or string)", false);
  }
  return { ...extracted, caption, data, ...(list ? { tags: list } : {}) };
}

/** Tags as taggers write them: trimmed, lower case, each once, in the model's order. */
function tagList(value: unknown): string[] | null {
  if (!Array.isArray(value) || !value.every((item) => typeof item === "string")) return null;
  const seen = new Set<string>();
  for (const item of value as string[]) {
    // A comma inside a tag would split it in two for every trainer that reads the list.
    const tag = item.replace(/,/g, " ").trim().toLowerCase().replace(/\s+/g, " ");
    if (tag !== "") seen.add(tag);
  }
  return [...seen];
}

/** Whether a reply meant to be JSON at least starts as JSON (or a fenced block of it). */
export function looksLikeJson(text: string): boolean {
  return /^\s*(```|\{|\[)/.test(text);
}

/** The reply read as JSON: the whole of it, allowing a Markdown code fence around it. */
export function parseWhole(text: string): unknown {
  const fenced = /^\s*```(?:json)?\s*\n?([\s\S]*?)\n?\s*```\s*$/i.exec(text);
  try {
    return JSON.parse(fenced ? (fenced[1] ?? "") : text);
  } catch {
    return undefined;
  }
}

/**
 * The first JSON object in a reply that wraps it in prose ("Here is the JSON: {…}"): from each
 * `{`, the balanced span to its closing brace (braces inside strings do not count), if it parses.
 */
export function firstJsonObject(text: string): unknown {
  for (let start = text.indexOf("{"); start !== -1; start = text.indexOf("{", start + 1)) {
    const end = closingBrace(text, start);
    if (end === -1) continue;
    try {
      return JSON.parse(text.slice(start, end + 1));
    } catch {
      // Not JSON after all (a brace in prose): try the next one.
    }
  }
  return undefined;
}

function closingBrace(text: string, start: number): number {
  let depth = 0;
  let inString = false;
  for (let i = start; i < text.length; i += 1) {
    const char = text[i];
    if (inString) {
      if (char === "\\") i += 1;
      else if (char === '"') inString = false;
    } else if (char === '"') {
      inString = true;
    } else if (char === "{") {
      depth += 1;
    } else if (char === "}") {
      depth -= 1;
      if (depth === 0) return i;
    }
  }
  return -1;
}

/** Why `value` does not match the schema (ajv's words), or null when it does. */
export function schemaProblem(answer: AnswerSchema, value: unknown): string | null {
  if (answer.validate(value)) return null;
  return answer.validate.errors
    ? answerErrors(answer.validate.errors)
    : "does not match the schema";
}

function answerErrors(errors: NonNullable<ValidateFunction["errors"]>): string {
  return errors
    .slice(0, 5)
    .map((error) => `${error.instancePath || "the answer"} ${error.message ?? "is invalid"}`)
    .join("; ");
}

/** The caption of a structured answer: its caption-like property, else the JSON text. */
export function captionOfAnswer(answer: AnswerSchema, data: Record<string, unknown>): string {
  const value = answer.captionProperty === null ? undefined : data[answer.captionProperty];
  if (typeof value === "string") return value;
  return JSON.stringify(data);
}

/** One CSV cell for a property's value: lists joined with ", ", objects as JSON text. */
export function cellOf(value: unknown): string {
  if (value === undefined || value === null) return "";
  if (Array.isArray(value)) {
    return value.map((item) => (typeof item === "string" ? item : JSON.stringify(item))).join(", ");
  }
  if (typeof value === "object") return JSON.stringify(value);
  return String(value);
}
