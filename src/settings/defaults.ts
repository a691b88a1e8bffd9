import { DEFAULT_FAMILY } from "../send/model-families.js";

export const DEFAULT_BASE_URL = "https://api.modelbest.cn/v1";
/** A family, not an id: each server is asked for the id it serves of it. */
export const DEFAULT_MODEL = DEFAULT_FAMILY;
export const DEFAULT_PROMPT =
  "Describe this image in one detailed paragraph: the main subject, the setting, notable objects, " +
  "colours, and any legible text. Reply with the description only.";
/** MiniCPM's tiling budget, 9 slices of 448²: servers shrink anything larger to this themselves. */
export const DEFAULT_MAX_PIXELS = 9 * 448 * 448;
export const DEFAULT_MAX_TOKENS = 512;
/** Thinking models spend tokens reasoning before the caption; a smaller budget ends mid-thought. */
export const DEFAULT_MAX_TOKENS_THINKING = 2048;

/** The defaults of the settings that have one, shared by the config layer and the library. */
export const SETTING_DEFAULTS = {
  baseUrl: DEFAULT_BASE_URL,
  model: DEFAULT_MODEL,
  prompt: DEFAULT_PROMPT,
  concurrency: 8,
  retries: 5,
  // In the setting's own unit, seconds; the library's timeoutMs is this × 1000.
  timeout: 120,
  maxPixels: DEFAULT_MAX_PIXELS,
  imageFormat: "jpeg",
} as const;

/** The reply budget for a model when none is set: Thinking models reason before the caption. */
export function defaultMaxTokens(model: string): number {
  return /think/i.test(model) ? DEFAULT_MAX_TOKENS_THINKING : DEFAULT_MAX_TOKENS;
}

/**
 * `-c` when none is given: measured (`auto`) for the servers a user names, which batch (vLLM,
 * SGLang), queue (llama.cpp, Ollama) or rate-limit with 429s, all of which `auto` reads; a fixed 8
 * for the hosted API, whose limits are not published and whose trial key is shared, and which
 * from one client looks unbounded, so `auto` would climb to `--max-concurrency` there (bench P13).
 */
export function defaultConcurrency(baseUrl: string): number | "auto" {
  return isHostedApi(baseUrl) ? SETTING_DEFAULTS.concurrency : "auto";
}

/** Whether a base URL is the hosted MiniCPM API, however it is written (scheme, port, case). */
export function isHostedApi(baseUrl: string): boolean {
  try {
    return new URL(baseUrl).hostname.toLowerCase() === new URL(DEFAULT_BASE_URL).hostname;
  } catch {
    return false;
  }
}

/** Accepts a base URL pasted with the route on the end, and drops trailing slashes. */
export function normaliseBaseUrl(url: string): string {
  return url.replace(/\/+$/, "").replace(/\/chat\/completions$/, "");
}
