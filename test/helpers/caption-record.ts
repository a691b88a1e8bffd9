import type { CaptionRecord, ClipRecord } from "../../src/types.js";

/** A row of OUT as a run writes it, for tests that start from an OUT rather than a run. */
export function captionRecord(file: string, video?: ClipRecord): CaptionRecord {
  return {
    path: file,
    caption: `A caption of ${file}.`,
    model: "test-model",
    endpoint: "127.0.0.1:8000",
    width: 320,
    height: 240,
    prompt_tokens: 100,
    completion_tokens: 10,
    reasoning_tokens: null,
    attempts: 1,
    latency_ms: 500,
    truncated: false,
    flags: [],
    created_at: "2025-01-01T00:00:00.000Z",
    sha256: "",
    prompt_hash: "h",
    ...(video ? { video } : {}),
  };
}
