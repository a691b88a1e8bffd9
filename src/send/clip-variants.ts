import { ApiError, ImageError } from "../errors.js";
import type { ClipForm } from "../prepare/clip/prepare-clip.js";
import type { PrepareStage } from "../prepare/stage.js";
import type { ClipSent, ImageTask, PreparedImage, VideoOptions } from "../types.js";
import { messageOf } from "../util/message.js";
import { ContextExceededError } from "./context-overflow.js";
import type { VideoRoutes } from "./video-routes.js";

/** What the clip's variants tell the attempt loop: why it is sent again, and what. */
export interface ClipRetry {
  reason: string;
  image: PreparedImage;
}

/**
 * The variants of one clip's sending: as frames to an endpoint that refuses video, cut again to
 * fit a short context, smaller after a 413. Every cut again keeps what an earlier one changed (a
 * clip shrunk for one endpoint stays shrunk for the next), and a refusal of video is taken as one
 * only once the same clip, with the same request otherwise, is answered: as frames by the same
 * endpoint, or as video by another. A 400 that the frames get too (a server refusing
 * response_format) leaves the endpoint getting video.
 */
export class ClipVariants {
  readonly #task: ImageTask;
  readonly #prepare: PrepareStage;
  readonly #routes: VideoRoutes;
  readonly #abort: AbortSignal;
  /** Told once an endpoint is known to refuse video. */
  readonly #onRefused: (endpoint: string, error: unknown) => void;
  #change: Partial<VideoOptions> = {};
  #shrunk = false;
  /** A native clip's 400, waiting for the frames sent instead to be answered. */
  #pending: { endpoint: string; error: unknown; plain: boolean } | null = null;
  /** The clip as video, kept once it went as frames: for another endpoint that takes video. */
  #native: PreparedImage | null = null;
  /** Why the clip could not be cut again: its failure says that rather than the server's words. */
  failure: ImageError | null = null;
  /** A cut again was stopped by the run's abort: the clip is left for the next run. */
  aborted = false;

  constructor(
    task: ImageTask,
    prepare: PrepareStage,
    routes: VideoRoutes,
    abort: AbortSignal,
    onRefused: (endpoint: string, error: unknown) => void,
  ) {
    this.#task = task;
    this.#prepare = prepare;
    this.#routes = routes;
    this.#abort = abort;
    this.#onRefused = onRefused;
  }

  /**
   * The clip as this endpoint takes it: as frames where it is known to refuse video, as video
   * again where the frames were meant for another endpoint. Throws ImageError.
   */
  async forEndpoint(image: PreparedImage, endpoint: string): Promise<PreparedImage> {
    const native = this.#native;
    if (image.clip?.mode === "frames" && native && this.#pending?.endpoint !== endpoint) {
      if (this.#routes.formFor(endpoint) === "native") return native;
    }
    if (image.clip?.mode !== "native" || this.#routes.formFor(endpoint) !== "frames") return image;
    const frames = await this.#cut("frames");
    if (!frames)
      throw this.failure ?? new ImageError("video_unreadable", "the clip could not be cut");
    return frames;
  }

  /** After a failure: the clip to send instead, and why, or null when none mends it. */
  async afterFailure(
    image: PreparedImage,
    error: unknown,
    endpoint: string,
    plain: boolean,
  ): Promise<ClipRetry | null> {
    const clip = image.clip;
    if (!clip) return null;
    // A clip too long for the context first: that 400 is no refusal of video.
    const fewer = this.#shrunk ? null : fewerFrames(clip, error);
    if (fewer) {
      this.#shrunk = true;
      const smaller = await this.#cut(clip.mode, fewer.change);
      return (
        smaller && { reason: `sending the clip again as ${fewer.frames} frames`, image: smaller }
      );
    }
    if (clip.mode === "native" && this.#routes.refusal(endpoint, error)) {
      this.#pending = { endpoint, error, plain };
      this.#native = image;
      const frames = await this.#cut("frames");
      return frames && { reason: "sending the clip again as frames", image: frames };
    }
    if (!this.#shrunk && error instanceof ApiError && error.status === 413) {
      this.#shrunk = true;
      const side = Math.max(32, Math.floor(Math.min(image.width, image.height) / 2));
      const smaller = await this.#cut(clip.mode, { side });
      return (
        smaller && { reason: `sending it again at ${side} px on its short side`, image: smaller }
      );
    }
    return null;
  }

  /** An answer came: an endpoint that answered a clip natively takes video; one that took its frames after a 400 does not. */
  afterAnswer(image: PreparedImage, endpoint: string, plain: boolean): void {
    if (image.clip?.mode === "native") this.#routes.took(endpoint);
    const pending = this.#pending;
    this.#pending = null;
    if (pending === null || pending.plain !== plain) return;
    // The same request answered: as frames by the endpoint that refused it, or as video by another
    // (the clip is good video, so the 400 was that endpoint's refusal of video).
    const asFrames = image.clip?.mode === "frames" && pending.endpoint === endpoint;
    const elsewhere = image.clip?.mode === "native" && pending.endpoint !== endpoint;
    if (!asFrames && !elsewhere) return;
    if (this.#routes.refused(pending.endpoint)) this.#onRefused(pending.endpoint, pending.error);
  }

  async #cut(form: ClipForm, change: Partial<VideoOptions> = {}): Promise<PreparedImage | null> {
    this.#change = { ...this.#change, ...change };
    const other = await this.#prepare.clip(this.#task, form, this.#change);
    if ("dataUrl" in other) return other;
    if (this.#abort.aborted) this.aborted = true;
    else this.failure = new ImageError(other.code, other.message);
    return null;
  }
}

/**
 * A clip too long for the server's context, cut again to fit with room for the reply: fewer
 * frames sent as images, or a lower frame rate sent natively. Null when the server did not say
 * by how much, or one frame is all there is.
 */
export function fewerFrames(
  clip: ClipSent,
  error: unknown,
): { frames: number; change: Partial<VideoOptions> } | null {
  if (!(error instanceof ContextExceededError)) return null;
  const { requestTokens, contextTokens } = error;
  if (requestTokens === null || contextTokens === null || clip.frames <= 1) return null;
  const share = (contextTokens * 0.8) / requestTokens;
  const frames = Math.max(1, Math.min(clip.frames - 1, Math.floor(clip.frames * share)));
  if (clip.mode === "frames") return { frames, change: { frames } };
  const fps = ((clip.fps ?? 1) * frames) / clip.frames;
  return { frames, change: { fps: Math.max(0.05, Math.floor(fps * 1000) / 1000) } };
}

/** The warning for an endpoint found to refuse video, naming the setting that skips the try. */
export function refusedWarning(endpoint: string, error: unknown, modeSetting: string): string {
  return `${endpoint} refused a clip sent as video (${messageOf(error)}); it gets clips as frames from now on (${modeSetting} frames sends them so from the start)`;
}
