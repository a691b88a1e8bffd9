import { describeBody } from "../trust/text.js";
import { snippet } from "../util/snippet.js";

/**
 * The human part of an error body, whichever envelope the server uses; a binary or compressed
 * body is described ("a binary reply of 1234 bytes (gzip)"), never quoted.
 */
export function serverMessage(text: string, bytes?: Uint8Array): string {
  const binary = bytes === undefined ? null : describeBody(bytes);
  if (binary !== null) return binary;
  try {
    const parsed: unknown = JSON.parse(text);
    const found = findMessage(parsed);
    if (found) return oneLine(found);
  } catch {
    // Not JSON: a proxy's HTML page or plain text.
  }
  const title = /<title>([^<]*)<\/title>/i.exec(text)?.[1];
  if (title) return `non-JSON reply: ${oneLine(title)}`;
  return bodySnippet(text);
}

/** `error.code` (or a flat `code`) of an error body, when it is a string. */
export function serverCode(text: string): string | null {
  try {
    const parsed = JSON.parse(text) as { code?: unknown; error?: { code?: unknown } } | null;
    const code = parsed?.error?.code ?? parsed?.code;
    return typeof code === "string" ? code : null;
  } catch {
    return null;
  }
}

function findMessage(value: unknown): string | null {
  if (typeof value === "string") return value;
  if (typeof value !== "object" || value === null) return null;
  const record = value as Record<string, unknown>;
  // OpenAI/vLLM/llama.cpp/Ollama nest under `error`; SGLang and FastAPI use flat fields.
  return (
    findMessage(record.error) ??
    (typeof record.message === "string" ? record.message : null) ??
    (typeof record.detail === "string" ? record.detail : null)
  );
}

/** A body's text without its HTML tags (proxies answer with pages), as one short line. */
export function bodySnippet(text: string): string {
  return snippet(text.replace(/<[^>]*>/g, " "), 200, "(empty body)");
}

function oneLine(text: string): string {
  return text.replace(/\s+/g, " ").trim();
}
