import path from "node:path";
import { CaptionError, RunAbortedError } from "../errors.js";
import { describeErrno, errnoOf, readFileOrNull } from "../folders.js";
import type { CaptionRecord, ImageTask } from "../types.js";
import type { RecordedCaption } from "./sidecar-sink.js";
import type { FinishedWork, Sink } from "./sink.js";
import { writeWhole } from "./write-whole.js";
import { isPacket, mergeDescription, readDescription } from "./xmp.js";

/** `<file>.<ext>.xmp` (digiKam, darktable) or `<stem>.xmp` (Lightroom, Capture One). */
export type XmpNaming = "ext" | "stem";

export function xmpPath(imagePath: string, naming: XmpNaming): string {
  if (naming === "ext") return `${imagePath}.xmp`;
  return path.join(
    path.dirname(imagePath),
    `${path.basename(imagePath, path.extname(imagePath))}.xmp`,
  );
}

/**
 * The caption as `dc:description` in an XMP sidecar, where photo managers search it. An existing
 * sidecar is merged, never replaced (`xmp.ts`), and the image itself is never opened for writing.
 * Like the text sidecars, each is written after OUT's row and completed from it on resume.
 */
export class XmpSink implements Sink {
  readonly #naming: XmpNaming;
  readonly #recorded: RecordedCaption;
  readonly #readOnly: boolean;
  readonly #files = new Map<string, string>();

  constructor(naming: XmpNaming, recorded: RecordedCaption, readOnly = false) {
    this.#naming = naming;
    this.#recorded = recorded;
    this.#readOnly = readOnly;
  }

  async open(tasks: readonly ImageTask[]): Promise<FinishedWork> {
    const done = new Set<string>();
    const rejected = new Map<string, CaptionError>();
    const owners = new Map<string, string>();
    for (const task of tasks) {
      const file = xmpPath(task.absPath, this.#naming);
      const owner = owners.get(file);
      if (owner !== undefined) {
        rejected.set(
          task.path,
          new CaptionError(
            "xmp_collision",
            `${task.path} and ${owner} would share the XMP sidecar ${path.basename(file)}; rename one of them, or use --xmp-naming ext`,
          ),
        );
        continue;
      }
      owners.set(file, task.path);
      this.#files.set(task.path, file);
      const text = await readFileOrNull(file);
      if (text !== null && !isPacket(text)) {
        rejected.set(
          task.path,
          new CaptionError(
            "xmp_invalid",
            `${path.basename(file)} beside ${task.path} is not an XMP packet this tool can merge into; fix or move it`,
          ),
        );
        continue;
      }
      const row = await this.#recorded(task.path);
      if (row === undefined) continue;
      // Captioned by an earlier run: a sidecar without a description (lost in a crash, deleted)
      // gets it back from the record; one that has a description, edited since or not, keeps it.
      if (text === null || readDescription(text) === null) {
        await this.write({ path: task.path, caption: row.caption });
      }
      done.add(task.path);
    }
    return { done, hashes: new Set(), repairedBytes: 0, rejected };
  }

  async stored() {
    return undefined;
  }

  async write(record: Pick<CaptionRecord, "path" | "caption">): Promise<void> {
    const file = this.#files.get(record.path);
    if (this.#readOnly || file === undefined || record.caption === "") return;
    try {
      await writeWhole(file, mergeDescription(await readFileOrNull(file), record.caption));
    } catch (error) {
      throw new RunAbortedError(
        "xmp_not_writable",
        `cannot merge the caption into ${file} (${error instanceof Error && !("code" in error) ? error.message : describeErrno(errnoOf(error))}); it was left as it was, fix or move it and rerun`,
        { cause: error },
      );
    }
  }

  async fail(): Promise<void> {}

  async close(): Promise<void> {}
}
