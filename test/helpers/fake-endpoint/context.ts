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
  return minicpmImageTokens(width, height) + minicpmTextTokens(prompt);
}

/**
 * A whole request's prompt: each image as minicpmPromptTokens counts one, a video's frames (see
 * videoTokens) and the words. Without either it counts as minicpmPromptTokens always has, an
 * unread image's 640 included, so that text-only and one-image requests cost what they did.
 */
export function minicpmRequestTokens(
  images: readonly { width: number | null; height: number | null }[],
  video: { frames: number | null; fps: number | null; duration: number | null } | null,
  prompt: string | null,
): number {
  if (images.length === 0 && video === null) return minicpmPromptTokens(null, null, prompt);
  const pictures = images.reduce(
    (sum, image) => sum + minicpmImageTokens(image.width, image.height),
    0,
  );
  return pictures + (video === null ? 0 : videoTokens(video)) + minicpmTextTokens(prompt);
}

/**
 * A frame costs what a one-slice image does. A simplification: MiniCPM-V 4.5 packs several frames
 * into those 64, so this errs on the costly side, as a budget should.
 */
export const VIDEO_TOKENS_PER_FRAME = 64;

/**
 * A video's tokens, a frame at a time. Frames ffprobe did not count are estimated from fps ×
 * duration; a video that was not probed at all counts as one frame.
 */
export function videoTokens(video: {
  frames: number | null;
  fps: number | null;
  duration: number | null;
}): number {
  const frames =
    video.frames ??
    (video.fps !== null && video.duration !== null ? Math.round(video.fps * video.duration) : 1);
  return VIDEO_TOKENS_PER_FRAME * Math.max(1, frames);
}

function minicpmImageTokens(width: number | null, height: number | null): number {
  if (width === null || height === null) return 640;
  const slices = Math.min(9, Math.ceil((width * height) / (448 * 448)));
  return 64 * (slices <= 1 ? 1 : slices + 1);
}

function minicpmTextTokens(prompt: string | null): number {
  const words = prompt === null ? 0 : prompt.split(/\s+/).filter(Boolean).length;
  return 16 + Math.ceil(words * 1.3);
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
