import { createHash } from "node:crypto";
import { readMember } from "../archive/read-member.js";
import { isClipPath } from "../discover/extensions.js";
import type { DuplicateTracker, ImageOutcome } from "../prepare/dedupe.js";
import { FileReader, hashStream } from "../prepare/hash.js";
import type { Settle } from "../prepare/stage.js";
import type { StoredCaption } from "../sinks/out-file/stored-caption.js";
import type { CaptionRecord, ImageTask } from "../types.js";
import type { RunState } from "./state.js";

export type Produce = (
  task: ImageTask,
  sha256: string,
  bytes: Buffer | undefined,
  settle: Settle,
) => Promise<void>;

/**
 * Reads each image once, hashes it, and hands only the first of identical files on to be
 * prepared; a copy gets the first one's result, without a request, once that is known.
 */
export class Intake {
  readonly #duplicates: DuplicateTracker;
  readonly #produce: Produce;
  readonly #state: RunState;
  readonly #waiting = new Set<Promise<void>>();
  /** One reader per producer at work, each file's bytes in its reader's buffer until prepared. */
  readonly #readers: FileReader[] = [];

  /** Identical bytes share one caption; not when the prompt differs per file (its path, say). */
  readonly #sharesCaptions: boolean;

  constructor(
    duplicates: DuplicateTracker,
    produce: Produce,
    state: RunState,
    sharesCaptions = true,
  ) {
    this.#duplicates = duplicates;
    this.#produce = produce;
    this.#state = state;
    this.#sharesCaptions = sharesCaptions;
  }

  async take(task: ImageTask): Promise<void> {
    const reader = this.#readers.pop() ?? new FileReader();
    try {
      await this.#take(task, reader);
    } finally {
      this.#readers.push(reader);
    }
  }

  /** Reads, hashes and hands on one image; its bytes are used up when this returns. */
  async #take(task: ImageTask, reader: FileReader): Promise<void> {
    const read = await this.#read(task, reader);
    // Unreadable: preparing it from its path produces the error that says why.
    if (read === null) return this.#produce(task, "", undefined, () => {});
    const { sha256, bytes } = read;
    if (!this.#sharesCaptions) return this.#produce(task, sha256, bytes, () => {});
    const claim = this.#duplicates.begin(sha256);
    if (claim.first) return this.#produce(task, sha256, bytes, claim.settle);
    // A copy holds no image while it waits for the first of its bytes to finish, and the
    // producer goes on to the next file meanwhile.
    const waiting = claim.outcome
      .then(async (earlier) => {
        if (earlier) await this.#settleCopy(task, sha256, earlier);
        else await this.#produce(task, sha256, undefined, () => {});
      })
      .finally(() => this.#waiting.delete(waiting));
    this.#waiting.add(waiting);
  }

  /** The image's bytes and hash; null where it cannot be read (preparing it says why). */
  async #read(
    task: ImageTask,
    reader: FileReader,
  ): Promise<{ sha256: string; bytes: Buffer | undefined } | null> {
    const member = task.member;
    // Inside a shard: from its offset, into the reader's buffer as a file would be.
    if (member?.kind === "tar") return reader.readMemberAndHash(task.absPath, member);
    if (member) {
      return readMember(task).then(
        (bytes) => ({ bytes, sha256: createHash("sha256").update(bytes).digest("hex") }),
        () => null,
      );
    }
    // A clip is hashed as a stream, and cut from its path: FFmpeg reads only what it sends.
    if (isClipPath(task.absPath)) {
      const sha256 = await hashStream(task.absPath, undefined, this.#state.control.abortSignal);
      return sha256 === null ? null : { sha256, bytes: undefined };
    }
    return reader.readAndHash(task.absPath);
  }

  /** Lets go of the shards the readers hold open; once no image is taken any more. */
  async close(): Promise<void> {
    await Promise.all(this.#readers.map((reader) => reader.close()));
  }

  /** Waits for every copy still waiting on its first. */
  async drain(): Promise<void> {
    while (this.#waiting.size > 0) await Promise.all([...this.#waiting]);
  }

  async #settleCopy(task: ImageTask, sha256: string, earlier: ImageOutcome): Promise<void> {
    const state = this.#state;
    if (earlier.kind === "dry") return;
    if (earlier.kind === "unfinished") {
      state.unfinished(task);
      return;
    }
    if (earlier.kind === "failed") {
      await state.failed({ ...earlier.failure, path: task.path, created_at: now() });
      return;
    }
    if (!(await state.captioned(copyRecord(task, sha256, earlier.stored), earlier.stored.path))) {
      state.unfinished(task);
    }
  }
}

function copyRecord(task: ImageTask, sha256: string, stored: StoredCaption): CaptionRecord {
  return {
    path: task.path,
    caption: stored.caption,
    model: stored.model,
    // No endpoint answered: the caption is the earlier row's.
    endpoint: "",
    width: stored.width,
    height: stored.height,
    prompt_tokens: null,
    completion_tokens: null,
    reasoning_tokens: null,
    attempts: 0,
    latency_ms: 0,
    truncated: stored.truncated,
    flags: stored.flags,
    created_at: now(),
    sha256,
    // The earlier row's prompt made this caption; a row from before prompts were told apart has none.
    prompt_hash: stored.prompt_hash ?? "",
    ...(stored.data ? { data: stored.data } : {}),
    ...(stored.tags ? { tags: stored.tags } : {}),
    ...(stored.captions ? { captions: stored.captions } : {}),
    ...(stored.answers ? { answers: stored.answers } : {}),
    ...(stored.video ? { video: stored.video } : {}),
  };
}

function now(): string {
  return new Date().toISOString();
}
