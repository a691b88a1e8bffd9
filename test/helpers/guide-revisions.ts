/**
 * The hosted API as each revision of the provider's guide (OpenBMB/MiniCPM-V `docs/api.md`)
 * describes it, for the fake endpoint's `revision` option: the ids `/models` lists (the service is
 * vLLM, which lists what it serves and answers 404 for anything else) and where the Thinking model
 * puts its reasoning. The ids are the guide's, as `../shared/docs/minicpm-api.md` tables them.
 */
export const GUIDE_REVISIONS = ["2026-05-17", "2026-05-18", "2026-07-23"] as const;
export type GuideRevision = (typeof GUIDE_REVISIONS)[number];

export interface RevisionModels {
  /** What `/models` lists, in the guide's order. */
  ids: readonly string[];
  instruct: string;
  thinking: string;
  /** Absent where that revision serves no such model (2026-05-17 had o4.5 as realtime only). */
  omni?: string;
  v45?: string;
  /**
   * Where the Thinking model's reasoning goes: `message.reasoning` from 2026-07-23 ("may return
   * intermediate reasoning in `message.reasoning`"), inline `<think>…</think>` before that.
   */
  reasoning: "field" | "inline";
}

export const REVISION_MODELS: Readonly<Record<GuideRevision, RevisionModels>> = {
  "2026-05-17": {
    ids: ["MiniCPM-V-4.6-1.3B-Instruct", "MiniCPM-V-4.6-1.3B-think-0506_tau2_rl"],
    instruct: "MiniCPM-V-4.6-1.3B-Instruct",
    thinking: "MiniCPM-V-4.6-1.3B-think-0506_tau2_rl",
    reasoning: "inline",
  },
  "2026-05-18": {
    ids: ["MiniCPM-V-4.6-Instruct", "MiniCPM-V-4.6-Thinking", "MiniCPM-o-4.5"],
    instruct: "MiniCPM-V-4.6-Instruct",
    thinking: "MiniCPM-V-4.6-Thinking",
    omni: "MiniCPM-o-4.5",
    reasoning: "inline",
  },
  "2026-07-23": {
    ids: ["MiniCPM-V-4.5-9B", "MiniCPM-V-4.6-1B", "MiniCPM-V-4.6-Thinking", "MiniCPM-O-4.5-9B"],
    instruct: "MiniCPM-V-4.6-1B",
    thinking: "MiniCPM-V-4.6-Thinking",
    omni: "MiniCPM-O-4.5-9B",
    v45: "MiniCPM-V-4.5-9B",
    reasoning: "field",
  },
};

/** What the fake's Thinking model reasons, so a test can tell it never reached a caption. */
export const THINKING_TRACE = "Let me look closely at the picture before I describe it";
/** Tokens the fake's Thinking model spends reasoning: a smaller `max_tokens` ends mid-thought. */
export const THINKING_TOKENS = 1024;

/**
 * The message a revision's model answers with: the caption as it is, except from the Thinking
 * model, which reasons first, where that revision puts reasoning, and is cut off while still
 * thinking (finish_reason "length") when `max_tokens` leaves it no room to answer.
 */
export function revisionReply(
  revision: GuideRevision,
  model: string | null,
  caption: string,
  maxTokens: number | null,
): { content: string | null; reasoning?: string; finishReason?: string } {
  const served = REVISION_MODELS[revision];
  if (model !== served.thinking) return { content: caption };
  const cutOff = maxTokens !== null && maxTokens <= THINKING_TOKENS;
  if (served.reasoning === "field") {
    return cutOff
      ? { content: null, reasoning: THINKING_TRACE, finishReason: "length" }
      : { content: caption, reasoning: THINKING_TRACE };
  }
  return cutOff
    ? { content: `<think>${THINKING_TRACE}`, finishReason: "length" }
    : { content: `<think>${THINKING_TRACE}</think>\n\n${caption}` };
}

/** The revision a standalone fake was asked for on its command line. */
export function parseRevision(text: string): GuideRevision {
  const found = GUIDE_REVISIONS.find((revision) => revision === text);
  if (found === undefined) {
    throw new RangeError(`--revision must be one of ${GUIDE_REVISIONS.join(", ")}`);
  }
  return found;
}
