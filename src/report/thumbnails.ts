import { createHash } from "node:crypto";
import { rename, rm } from "node:fs/promises";
import { availableParallelism } from "node:os";
import path from "node:path";
import sharp from "sharp";
import { isClipPath } from "../discover/extensions.js";
import { posterFrame } from "../prepare/clip/poster.js";
import { temporaryPath } from "../sinks/write-whole.js";
import { statOrNull } from "../util/folders.js";

/** The longest side of a thumbnail, in pixels: twice a grid cell, for sharp screens. */
export const THUMB_SIDE = 240;

/**
 * FFmpeg's time to give one clip's poster frame. The report has no --video-timeout of its own; a
 * seek and one frame take well under a second, so this only stops a file that hangs the decoder.
 */
const POSTER_TIMEOUT_MS = 60_000;

/**
 * Makes the page's thumbnails with sharp, a few at once, each image once however many rows name
 * it (copies share their twin's); a clip's is made from its poster frame (FFmpeg). `add` waits
 * while the queue is full, so a caller streaming 100,000 rows holds no more than a few dozen
 * images' work at a time.
 */
export class ThumbnailMaker {
  readonly #folder: string;
  readonly #parallel: number;
  readonly #queued = new Set<string>();
  readonly #running = new Set<Promise<void>>();
  /** FFmpeg processes running, and the jobs waiting for one to end. */
  #posters = 0;
  readonly #posterWaiting: (() => void)[] = [];
  made = 0;
  failed = 0;
  reused = 0;

  constructor(folder: string, parallel = Math.max(2, availableParallelism())) {
    this.#folder = folder;
    this.#parallel = parallel;
  }

  /**
   * The thumbnail's file name for an image (its content hash when known), made if missing. `read`:
   * its bytes, where the image lies inside a shard or a Parquet file (`absPath` names it).
   */
  async add(absPath: string, sha256: string | null, read?: () => Promise<Buffer>): Promise<string> {
    const key = sha256 && /^[0-9a-f]{64}$/.test(sha256) ? sha256 : hashOf(absPath);
    const name = `${key.slice(0, 32)}.webp`;
    if (this.#queued.has(name)) return name;
    this.#queued.add(name);
    while (this.#running.size >= this.#parallel * 4) await Promise.race(this.#running);
    const job = this.#make(absPath, path.join(this.#folder, name), read).finally(() => {
      this.#running.delete(job);
    });
    this.#running.add(job);
    return name;
  }

  /** Waits for every thumbnail asked for. */
  async finish(): Promise<void> {
    await Promise.all(this.#running);
  }

  async #make(source: string, target: string, read?: () => Promise<Buffer>): Promise<void> {
    // Kept from an earlier report of the same run: the same bytes make the same thumbnail.
    if (await statOrNull(target)) {
      this.reused += 1;
      return;
    }
    const temporary = temporaryPath(target);
    try {
      const input = read ? await read() : isClipPath(source) ? await this.#poster(source) : source;
      await sharp(input, { failOn: "none" })
        .rotate()
        .resize(THUMB_SIDE, THUMB_SIDE, { fit: "inside", withoutEnlargement: true })
        .webp({ quality: 70 })
        .toFile(temporary);
      await rename(temporary, target);
      this.made += 1;
    } catch {
      // Gone, not an image sharp reads, or a clip FFmpeg cannot read (or is missing): the page
      // shows a placeholder for it.
      await rm(temporary, { force: true });
      this.failed += 1;
    }
  }

  /**
   * A clip's poster frame, with no more FFmpeg processes at once than `parallel`: sharp queues
   * its own work on a few threads, but each FFmpeg is a process with threads of its own, and the
   * queue above lets four times `parallel` jobs run.
   */
  async #poster(source: string): Promise<Buffer> {
    while (this.#posters >= this.#parallel) {
      await new Promise<void>((resolve) => this.#posterWaiting.push(resolve));
    }
    this.#posters += 1;
    try {
      return await posterFrame(source, { timeoutMs: POSTER_TIMEOUT_MS });
    } finally {
      this.#posters -= 1;
      this.#posterWaiting.shift()?.();
    }
  }
}

function hashOf(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}
