import { ApiError, CaptionError, type NameSetting } from "../errors.js";

/**
 * A server that ran out of context, in one of two ways:
 * - `shared`: the KV cache its parallel slots share ran out while several requests were in
 *   service (llama.cpp answers 500 "Context size has been exceeded."). It depends on how many are
 *   in flight, not on the image: fewer at once, and the same request fits.
 * - `alone`: this one request is larger than the context a request may have (llama.cpp's 400
 *   `exceed_context_size_error`, vLLM's and SGLang's 400 "maximum context length"). Sending it
 *   again, at any concurrency, gets the same answer.
 */
export type ContextOverflow =
  | { kind: "shared" }
  | {
      kind: "alone";
      requestTokens: number | null;
      contextTokens: number | null;
      /** The request's tokens are its prompt's alone (llama.cpp counts no answer in them). */
      promptOnly: boolean;
    };

/**
 * The servers' own words. Quoted from the messages they send:
 * - llama.cpp (tools/server, as built in ../shared/peers/llama): "Context size has been
 *   exceeded." (500, the shared cache ran out mid-batch), "failed to process mtmd chunk" (500: no
 *   room in that cache for an image's embeddings), and "request (682 tokens) exceeds the available
 *   context size (512 tokens), try increasing it" (400, type exceed_context_size_error);
 * - vLLM: "This model's maximum context length is 4096 tokens. However, you requested 4700 tokens
 *   (4188 in the messages, 512 in the completion). Please reduce the length of the messages or
 *   completion." (400); newer releases: "… maximum context length is 4096 tokens and your request
 *   has 3800 input tokens …";
 * - SGLang: "Requested token count exceeds the model's maximum context length of 4096 tokens. You
 *   requested a total of 4700 tokens: …" (400).
 */
const SHARED = [/context size has been exceeded/i, /failed to (process|decode) mtmd chunk/i];
const LLAMA_ALONE = /request \((\d+) tokens\) exceeds the available context size \((\d+) tokens\)/i;
const CONTEXT_LIMIT =
  /maximum (?:context length|model length) (?:is|of) (\d+)(?: tokens)?|context (?:length|size|window) (?:is|of) (\d+)/i;
const REQUESTED = /requested (?:a total of )?(\d+) tokens|has (\d+) input tokens|\(length (\d+)\)/i;
const ABOUT_CONTEXT = /context length|context size|context window|model length/i;
const TOO_MUCH = /exceed|longer than|too long|too large|reduce the length/i;

/** What an error says about the server's context, or null when it says nothing of it. */
export function contextOverflowOf(error: unknown): ContextOverflow | null {
  if (!(error instanceof ApiError) || error.status === null) return null;
  const message = error.message;
  if (error.status >= 500 && SHARED.some((pattern) => pattern.test(message))) {
    return { kind: "shared" };
  }
  if (error.status !== 400 && error.status !== 413) return null;
  const llama = LLAMA_ALONE.exec(message);
  if (llama) {
    return {
      kind: "alone",
      requestTokens: Number(llama[1]),
      contextTokens: Number(llama[2]),
      promptOnly: true,
    };
  }
  if (!ABOUT_CONTEXT.test(message) || !TOO_MUCH.test(message)) return null;
  const limit = CONTEXT_LIMIT.exec(message);
  const requested = REQUESTED.exec(message);
  return {
    kind: "alone",
    requestTokens: numberIn(requested),
    contextTokens: numberIn(limit),
    promptOnly: false,
  };
}

function numberIn(match: RegExpExecArray | null): number | null {
  const found = match?.slice(1).find((group) => group !== undefined);
  return found === undefined ? null : Number(found);
}

/** An image whose request does not fit the server's context even with nothing else in flight. */
export class ContextExceededError extends ApiError {
  override name = "ContextExceededError";
  readonly requestTokens: number | null;
  readonly contextTokens: number | null;
  readonly promptOnly: boolean;

  constructor(
    cause: ApiError,
    sizes: { requestTokens: number | null; contextTokens: number | null; promptOnly: boolean },
    alone: "said" | "measured",
  ) {
    const why =
      alone === "said"
        ? "this request alone is larger than the server's context; it is not retried"
        : "the server ran out of context each time this request was the only one of this process in flight, after waits; unless other clients of the server hold its context, the image does not fit";
    super("context_exceeded", `${cause.message} (${why})`, {
      status: cause.status,
      headers: cause.headers,
      cause,
    });
    this.requestTokens = sizes.requestTokens;
    this.contextTokens = sizes.contextTokens;
    this.promptOnly = sizes.promptOnly;
  }
}

/**
 * The one explanation a run gives when a request does not fit even alone: the numbers it knows,
 * and each way out, named as the user would change it.
 */
export function contextAdvice(
  error: ContextExceededError,
  known: {
    maxTokens: number;
    contextTokens: number | null;
    endpoint: string;
    /** The one that did not fit is a clip: it is cut again to fit once before it fails. */
    clip?: boolean;
  },
  name: NameSetting,
): string {
  const sizes: string[] = [];
  if (error.requestTokens !== null) {
    sizes.push(`a ${error.promptOnly ? "prompt" : "request"} of ${error.requestTokens} tokens`);
  }
  sizes.push(`max_tokens ${known.maxTokens}`);
  // A prompt that alone fills the context leaves nothing a smaller answer could free.
  const promptTooLarge =
    error.promptOnly &&
    error.requestTokens !== null &&
    error.contextTokens !== null &&
    error.requestTokens >= error.contextTokens;
  const has =
    error.contextTokens !== null
      ? ` (it has ${error.contextTokens} tokens for a request)`
      : known.contextTokens !== null
        ? ` (its model list gives ${known.contextTokens} tokens of context)`
        : "";
  if (known.clip) {
    return (
      `${known.endpoint} has too little context for one clip at a time${has}: ${sizes.join(", ")}. ` +
      `A clip that does not fit is cut again once, to fewer frames in the share of the context the server said it has; one that still does not fit fails (context_exceeded). ` +
      `Ways out: fewer ${name("videoFrames")} (clips sent as frames), a lower ${name("videoFps")} or ${name("videoSeconds")} (clips sent as video), ` +
      `${promptTooLarge ? "" : `a smaller ${name("maxTokens")}, `}or more context on the server: llama-server's -c (shared by its -np/--parallel slots), vLLM's --max-model-len`
    );
  }
  return (
    `${known.endpoint} has too little context for one image at a time${has}: ${sizes.join(", ")}. ` +
    `Images that do not fit fail (context_exceeded) rather than being retried. Ways out: a smaller ${name("maxSide")} (fewer image tokens), ` +
    `${promptTooLarge ? "" : `a smaller ${name("maxTokens")}, `}or more context on the server: llama-server's -c (shared by its -np/--parallel slots, so fewer slots leave each more), vLLM's --max-model-len`
  );
}

/** Marks a captioning failure as one the advice above already explains. */
export function isContextExceeded(error: unknown): error is ContextExceededError {
  return error instanceof CaptionError && error.code === "context_exceeded";
}
