import path from "node:path";
import type { CaptionError } from "../errors.js";
import { besideFiles } from "../trust/links.js";
import { nameTooLong } from "../trust/names.js";
import type { CaptionRecord, ImageTask } from "../types.js";
import type { StoredCaption } from "./out-file/stored-caption.js";
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
 * start, without a request. The file goes beside the image as discovery found it, and only a
 * file the run owns is read or written: one that is a symlink (or not a regular file) is skipped
 * for this output, said once in a warning, and left as it is; one whose name would pass the file
 * system's limit fails its image alone (`name_too_long`).
 */
export abstract class BesideImageSink implements Sink {
  readonly #recorded: RecordedCaption;
  /** Writes nothing, for a dry run that must still skip what a real run would skip. */
  readonly #readOnly: boolean;
  readonly #onWarning: (message: string) => void;
  readonly #files = new Map<string, string>();
  /** Images made again whose file is replaced whole, whatever the policy for existing files. */
  readonly #replacing = new Set<string>();

  constructor(
    recorded: RecordedCaption,
    readOnly: boolean,
    onWarning: (message: string) => void = () => {},
  ) {
    this.#recorded = recorded;
    this.#readOnly = readOnly;
    this.#onWarning = onWarning;
  }

  /** What the file is called in messages: "sidecar", "XMP sidecar". */
  protected abstract readonly what: string;
  /** The file beside this image. */
  protected abstract fileFor(absPath: string): string;
  /** The failure of an image whose file another image of the run already claimed. */
  protected abstract collision(imagePath: string, owner: string, file: string): CaptionError;
  /** What the file (a regular file when `present`, else missing) says at the start of a run. */
  protected abstract inspect(file: string, imagePath: string, present: boolean): Promise<FileState>;
  /** Whether the file already carries this caption, as this output would have put it there. */
  protected abstract holds(file: string, caption: string): Promise<boolean>;
  /**
   * Whether the file holds what this output alone put there for this caption, nothing of the
   * user's: only such a file is replaced when its image is made again (`--redo`, a prompt added).
   */
  protected abstract wrote(file: string, caption: string): Promise<boolean>;
  /**
   * Writes the file whole; throws RunAbortedError when it cannot. `replace`: what is there is
   * this output's own old caption, replaced rather than kept or added to.
   */
  protected abstract put(file: string, record: BesideRecord, replace: boolean): Promise<void>;

  async open(tasks: readonly ImageTask[], replace?: ReadonlySet<string>): Promise<FinishedWork> {
    const done = new Set<string>();
    const rejected = new Map<string, CaptionError>();
    const owners = new Map<string, string>();
    const notOwned = { symlink: [] as string[], special: [] as string[] };
    const userKept: string[] = [];
    const found = await besideFiles(tasks.map((task) => this.fileFor(task.absPath)));
    for (const task of tasks) {
      const file = this.fileFor(task.absPath);
      const tooLong = nameTooLong(file, this.what);
      if (tooLong) {
        rejected.set(task.path, tooLong);
        continue;
      }
      const owner = owners.get(file);
      if (owner !== undefined) {
        rejected.set(task.path, this.collision(task.path, owner, file));
        continue;
      }
      owners.set(file, task.path);
      const kind = found.get(file) ?? "missing";
      if (kind === "symlink" || kind === "special") {
        // Not the run's file: this output leaves it, and its image, alone.
        notOwned[kind].push(path.posix.join(path.posix.dirname(task.path), path.basename(file)));
        done.add(task.path);
        continue;
      }
      this.#files.set(task.path, file);
      const state = await this.inspect(file, task.path, kind === "file");
      if (replace?.has(task.path)) {
        // Made again: the file is replaced if the run wrote what it holds, else the user's stays.
        if (state !== "free" && state !== "kept") rejected.set(task.path, state);
        else if (kind !== "file") this.#replacing.add(task.path);
        else {
          const row = await this.#recorded(task.path);
          if (row && (await this.wrote(file, row.caption))) this.#replacing.add(task.path);
          else {
            this.#files.delete(task.path);
            userKept.push(task.path);
          }
        }
        continue;
      }
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
    const skipped = notOwnedWarning(this.what, notOwned);
    if (skipped) this.#onWarning(skipped);
    if (userKept.length > 0) {
      this.#onWarning(
        `${userKept.length === 1 ? `the ${this.what} of ${userKept[0]} holds` : `${userKept.length} ${this.what}s (${userKept.slice(0, 3).join(", ")}${userKept.length > 3 ? ", …" : ""}) hold`} more than the caption being made again, so ${userKept.length === 1 ? "it is" : "they are"} left as ${userKept.length === 1 ? "it is" : "they are"}; OUT gets the new caption`,
      );
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
    await this.put(file, record, this.#replacing.has(record.path));
  }

  async fail(): Promise<void> {}

  async close(): Promise<void> {}
}

/** The files beside images skipped because the run does not own them, said once, or null. */
function notOwnedWarning(
  what: string,
  files: { symlink: string[]; special: string[] },
): string | null {
  const total = files.symlink.length + files.special.length;
  if (total === 0) return null;
  const list = (names: string[]) =>
    `${names.slice(0, 3).join(", ")}${names.length > 3 ? ` and ${names.length - 3} more` : ""}`;
  const parts: string[] = [];
  if (files.symlink.length > 0) {
    const one = files.symlink.length === 1;
    parts.push(
      `${list(files.symlink)} ${one ? "is a symlink" : "are symlinks"}, and the run never reads or writes through one`,
    );
  }
  if (files.special.length > 0) {
    const one = files.special.length === 1;
    parts.push(`${list(files.special)} ${one ? "is not a regular file" : "are not regular files"}`);
  }
  return `${total === 1 ? `${what} skipped, left as it is` : `${total} ${what}s skipped, left as they are`}: ${parts.join("; ")}`;
}
