import type { CaptionError } from "../errors.js";
import type { StoredCaption } from "../resume.js";
import type { CaptionRecord, ImageTask } from "../types.js";
import type { FinishedWork, Sink } from "./sink.js";

/** The row the run's record (OUT) holds for a path, if any. */
export type RecordedCaption = (imagePath: string) => Promise<StoredCaption | undefined>;

/** What is kept in a file beside the image. */
export type BesideRecord = Pick<CaptionRecord, "path" | "caption" | "tags">;

/**
 * What an output kept in one file beside each image says of that file at the start of a run:
 * `free` to be written when the image is captioned, `kept` as it is (nothing to send for it), or
 * unusable, which fails the image without a request.
 */
export type FileState = "free" | "kept" | CaptionError;

/**
 * The part every output kept beside the images shares (caption sidecars, XMP): each image names
 * its own file, two images never share one, and since each file is written after OUT's row, one
 * lost to a crash between the two (or deleted since) is completed from the record at the next
 * start, without a request.
 */
export abstract class BesideImageSink implements Sink {
  readonly #recorded: RecordedCaption;
  /** Writes nothing, for a dry run that must still skip what a real run would skip. */
  readonly #readOnly: boolean;
  readonly #files = new Map<string, string>();

  constructor(recorded: RecordedCaption, readOnly: boolean) {
    this.#recorded = recorded;
    this.#readOnly = readOnly;
  }

  /** The file beside this image. */
  protected abstract fileFor(absPath: string): string;
  /** The failure of an image whose file another image of the run already claimed. */
  protected abstract collision(imagePath: string, owner: string, file: string): CaptionError;
  protected abstract inspect(file: string, imagePath: string): Promise<FileState>;
  /** Whether the file already carries this caption, as this output would have put it there. */
  protected abstract holds(file: string, caption: string): Promise<boolean>;
  /** Writes the file whole; throws RunAbortedError when it cannot. */
  protected abstract put(file: string, record: BesideRecord): Promise<void>;

  async open(tasks: readonly ImageTask[]): Promise<FinishedWork> {
    const done = new Set<string>();
    const rejected = new Map<string, CaptionError>();
    const owners = new Map<string, string>();
    for (const task of tasks) {
      const file = this.fileFor(task.absPath);
      const owner = owners.get(file);
      if (owner !== undefined) {
        rejected.set(task.path, this.collision(task.path, owner, file));
        continue;
      }
      owners.set(file, task.path);
      this.#files.set(task.path, file);
      const state = await this.inspect(file, task.path);
      if (state === "kept") {
        done.add(task.path);
        continue;
      }
      if (state !== "free") {
        rejected.set(task.path, state);
        continue;
      }
      const row = await this.#recorded(task.path);
      if (row === undefined) continue;
      if (!(await this.holds(file, row.caption))) {
        await this.write({
          path: task.path,
          caption: row.caption,
          ...(row.tags ? { tags: row.tags } : {}),
        });
      }
      done.add(task.path);
    }
    return { done, hashes: new Set(), repairedBytes: 0, rejected };
  }

  async stored() {
    return undefined;
  }

  async write(record: BesideRecord): Promise<void> {
    const file = this.#files.get(record.path);
    // An empty caption is never written: sd-scripts aborts on an empty sidecar.
    if (this.#readOnly || file === undefined || record.caption.trim() === "") return;
    await this.put(file, record);
  }

  async fail(): Promise<void> {}

  async close(): Promise<void> {}
}
