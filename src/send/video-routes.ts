import { ApiError } from "../errors.js";
import type { ClipForm } from "../prepare/clip/prepare-clip.js";
import type { VideoMode } from "../types.js";
import { ContextExceededError } from "./context-overflow.js";

/** What an endpoint has shown of video: nothing yet, an answer to a clip, or a refusal. */
type Shown = "unknown" | "takes" | "refuses";

/**
 * Which form each endpoint gets clips in. Under `auto` a clip goes as one MP4 until an endpoint
 * refuses one (a 400 before it ever answered a clip: llama.cpp's server says "unsupported
 * content[].type"); from then on that endpoint gets frames, as a server that refuses
 * response_format gets the schema in the prompt. Once every endpoint refused, clips are cut as
 * frames from the start.
 */
export class VideoRoutes {
  readonly mode: VideoMode;
  readonly #shown = new Map<string, Shown>();

  constructor(mode: VideoMode, endpoints: readonly string[]) {
    this.mode = mode;
    for (const label of endpoints) this.#shown.set(label, "unknown");
  }

  /** The form a clip is first cut in, before an endpoint is chosen for it. */
  form(): ClipForm {
    if (this.mode !== "auto") return this.mode;
    return [...this.#shown.values()].every((shown) => shown === "refuses") ? "frames" : "native";
  }

  /** The form a clip goes to this endpoint in. */
  formFor(endpoint: string): ClipForm {
    if (this.mode !== "auto") return this.mode;
    return this.#shown.get(endpoint) === "refuses" ? "frames" : "native";
  }

  /**
   * Whether a failure of a clip sent natively is the endpoint refusing video: under `auto`, a 400
   * from one that never answered a clip, other than a clip too long for its context.
   */
  refusal(endpoint: string, error: unknown): boolean {
    return (
      this.mode === "auto" &&
      this.#shown.get(endpoint) !== "takes" &&
      error instanceof ApiError &&
      error.status === 400 &&
      !(error instanceof ContextExceededError)
    );
  }

  /** The endpoint refused a clip: true the first time, to say so once. */
  refused(endpoint: string): boolean {
    const first = this.#shown.get(endpoint) !== "refuses";
    this.#shown.set(endpoint, "refuses");
    return first;
  }

  /** The endpoint answered a clip sent natively: a later 400 is about that clip, not video. */
  took(endpoint: string): void {
    if (this.#shown.get(endpoint) === "unknown") this.#shown.set(endpoint, "takes");
  }
}
