import { DEFAULT_FAMILY } from "../send/model-families.js";

export const DEFAULT_BASE_URL = "https://api.modelbest.cn/v1";
/** A family, not an id: each server is asked for the id it serves of it. */
export const DEFAULT_MODEL = DEFAULT_FAMILY;
export const DEFAULT_PROMPT =
  "Describe this image in one detailed paragraph: the main subject, the setting, notable objects, " +
  "colours, and any legible text. Reply with the description only.";
/** The default prompt's words for a clip, which the model sees moving (or as frames in order). */
export const DEFAULT_CLIP_PROMPT =
  "Describe this video clip in one detailed paragraph: the main subject, the setting, what " +
  "happens and how things move, notable objects, colours, and any legible text. Reply with the " +
  "description only.";
/** MiniCPM's tiling budget, 9 slices of 448²: servers shrink anything larger to this themselves. */
export const DEFAULT_MAX_PIXELS = 9 * 448 * 448;
export const DEFAULT_MAX_TOKENS = 512;
/** How many images `caption estimate` captions to forecast the rest. */
export const DEFAULT_SAMPLE = 20;
/** Thinking models spend tokens reasoning before the caption; a smaller budget ends mid-thought. */
export const DEFAULT_MAX_TOKENS_THINKING = 2048;

/** JPEG quality of the images sent: near-lossless to the model, a third the bytes of 100. */
export const DEFAULT_JPEG_QUALITY = 90;
/**
 * `-c` for the hosted API, whose limits are not published and whose trial key is shared; the
 * other defaults live in the settings table (settings/table-*.ts).
 */
export const HOSTED_CONCURRENCY = 8;

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
  return isHostedApi(baseUrl) ? HOSTED_CONCURRENCY : "auto";
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
