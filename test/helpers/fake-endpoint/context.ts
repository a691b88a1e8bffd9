/**
 * The fake endpoint's model of a server's context (its KV cache), so the client's handling of a
 * server that runs out of it is tested without a model. The words are the servers' own: llama.cpp
 * as built in ../shared/peers/llama (tools/server), vLLM's from its OpenAI front end.
 */

export interface ContextModel {
  /**
   * Tokens of context. For llama.cpp they are shared by every request in service (`-c`, one KV
   * cache over its `-np` slots, unified as the peer starts it); for vLLM, the most one request may
   * hold (`--max-model-len`), since it queues what does not fit rather than failing it.
   */
  tokens: number;
  /** @default "llama" */
  server?: "llama" | "vllm";
}

/** What a request costs in context: its prompt (image and text) and the answer it may grow to. */
export interface ContextNeed {
  promptTokens: number;
  maxTokens: number;
}

export type ContextVerdict =
  | { fits: true; release: () => void }
  | { fits: false; status: number; body: object };

/**
 * MiniCPM-V's image tokens: 64 for an image within one 448² slice, else 64 for each of up to 9
 * slices and 64 for the overview (the resampler projector of the peer's minicpmv pair does the
 * same), plus the prompt's words.
 */
export function minicpmPromptTokens(
  width: number | null,
  height: number | null,
  prompt: string | null,
): number {
  const words = prompt === null ? 0 : prompt.split(/\s+/).filter(Boolean).length;
  const text = 16 + Math.ceil(words * 1.3);
  if (width === null || height === null) return 640 + text;
  const slices = Math.min(9, Math.ceil((width * height) / (448 * 448)));
  return 64 * (slices <= 1 ? 1 : slices + 1) + text;
}

/**
 * The budget itself: each request holds its prompt and max_tokens while it is in service. Past
 * the budget, llama.cpp answers 500 "Context size has been exceeded." (its shared cache ran out
 * mid-batch); a request larger than the whole context gets its 400 exceed_context_size_error.
 * vLLM refuses only a request that alone exceeds --max-model-len.
 */
export function contextBudget(model: ContextModel): {
  admit: (need: ContextNeed) => ContextVerdict;
  readonly held: number;
} {
  const server = model.server ?? "llama";
  let held = 0;
  return {
    get held() {
      return held;
    },
    admit(need) {
      if (server === "vllm") {
        const total = need.promptTokens + need.maxTokens;
        if (total > model.tokens) {
          return {
            fits: false,
            status: 400,
            body: {
              object: "error",
              message: `This model's maximum context length is ${model.tokens} tokens. However, you requested ${total} tokens (${need.promptTokens} in the messages, ${need.maxTokens} in the completion). Please reduce the length of the messages or completion.`,
              type: "BadRequestError",
              param: null,
              code: 400,
            },
          };
        }
        return { fits: true, release: () => {} };
      }
      if (need.promptTokens >= model.tokens) {
        return {
          fits: false,
          status: 400,
          body: {
            error: {
              code: 400,
              message: `request (${need.promptTokens} tokens) exceeds the available context size (${model.tokens} tokens), try increasing it`,
              type: "exceed_context_size_error",
              n_prompt_tokens: need.promptTokens,
              n_ctx: model.tokens,
            },
          },
        };
      }
      const cost = need.promptTokens + need.maxTokens;
      if (held + cost > model.tokens) {
        return {
          fits: false,
          status: 500,
          body: {
            error: { code: 500, message: "Context size has been exceeded.", type: "server_error" },
          },
        };
      }
      held += cost;
      let released = false;
      return {
        fits: true,
        release: () => {
          if (released) return;
          released = true;
          held -= cost;
        },
      };
    },
  };
}
