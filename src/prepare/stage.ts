import pLimit, { type LimitFunction } from "p-limit";
import { readMember } from "../archive/read-member.js";
import { isClipPath } from "../discover/extensions.js";
import type { RunState } from "../run/state.js";
import type {
  FailureRecord,
  ImageTask,
  PreparedImage,
  PrepareOptions,
  VideoOptions,
} from "../types.js";
import { BoundedQueue } from "../util/bounded-queue.js";
import { type ClipForm, prepareClip } from "./clip/prepare-clip.js";
import type { ImageOutcome } from "./dedupe.js";
import { prepareImage } from "./prepare.js";

export type Settle = (outcome: ImageOutcome) => void;

/** How the run's clips are cut: the options, and the form a clip is first prepared in. */
export interface ClipCutting {
  options: VideoOptions;
  /** Native while any endpoint may take video; frames once all refused it, or when asked. */
  form: () => ClipForm;
}

/** An image prepared and waiting for a sender, with the hook that tells its copies how it ended. */
export interface PreparedWork {
  task: ImageTask;
  sha256: string;
  image: PreparedImage;
  settle: Settle;
}

/**
 * The decoder pool and the bounded queue after it. Room in the queue is reserved before an image
 * is decoded, so at most `decoders` images are prepared ahead of the ones being sent: memory is
 * bounded by concurrency plus decoders, whatever the folder size.
 */
export class PrepareStage {
  readonly queue: BoundedQueue<PreparedWork>;
  readonly #slots: LimitFunction;
  readonly #options: PrepareOptions;
  readonly #state: RunState;
  readonly #clips: ClipCutting;

  constructor(options: PrepareOptions, decoders: number, state: RunState, clips: ClipCutting) {
    this.#options = options;
    this.#state = state;
    this.#clips = clips;
    this.#slots = pLimit(decoders);
    this.queue = new BoundedQueue<PreparedWork>(decoders);
  }

  /** Decodes and encodes one image within the pool; a failure comes back as its errors row. */
  async prepare(
    task: ImageTask,
    maxPixels: number,
    bytes?: Buffer,
  ): Promise<PreparedImage | FailureRecord> {
    if (isClipPath(task.absPath) && !task.member) return this.clip(task);
    try {
      // An image inside a shard is read from it again where its bytes are gone (made smaller).
      const read = bytes ?? (task.member ? await readMember(task) : undefined);
      const image = await this.#slots(() =>
        prepareImage(task.absPath, { ...this.#options, maxPixels }, read),
      );
      this.#state.prepared(task, image);
      return image;
    } catch (error) {
      return this.#state.failureOf(task, error, 0);
    }
  }

  /**
   * Cuts one clip within the pool: in the run's form unless `form` says (frames for an endpoint
   * that refused video), smaller where `change` says (a shorter side after a 413, fewer frames
   * where a server's context is too short).
   */
  async clip(
    task: ImageTask,
    form?: ClipForm,
    change: Partial<VideoOptions> = {},
  ): Promise<PreparedImage | FailureRecord> {
    const clips = this.#clips;
    const options = { ...clips.options, ...change };
    try {
      const image = await this.#slots(() =>
        prepareClip(task.absPath, options, form ?? clips.form(), this.#state.control.abortSignal),
      );
      this.#state.prepared(task, image);
      return image;
    } catch (error) {
      return this.#state.failureOf(task, error, 0);
    }
  }

  /** Prepares one image and queues it for a sender; `settle` hears how it ended otherwise. */
  produce = async (
    task: ImageTask,
    sha256: string,
    bytes: Buffer | undefined,
    settle: Settle,
  ): Promise<void> => {
    const state = this.#state;
    if (!(await this.queue.reserve())) {
      settle(state.unfinished(task));
      return;
    }
    // Room came free because a stop is draining the queue: decoding now would be thrown away.
    if (state.control.stopSignal.aborted) {
      this.queue.cancel();
      settle(state.unfinished(task));
      return;
    }
    const image = await this.prepare(task, this.#options.maxPixels, bytes);
    if (!("dataUrl" in image)) {
      this.queue.cancel();
      // FFmpeg killed by the run's abort: the clip is not at fault, and is left for the next run.
      if (state.control.abortSignal.aborted) {
        settle(state.unfinished(task));
        return;
      }
      await state.failed(image);
      settle({ kind: "failed", failure: image });
      return;
    }
    this.queue.push({ task, sha256, image, settle });
  };
}
