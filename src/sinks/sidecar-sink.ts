import { lstat } from "node:fs/promises";
import path from "node:path";
import { CaptionError, RunAbortedError } from "../errors.js";
import { besideFile, readOwnedText, SIDECAR_READ_LIMIT } from "../trust/links.js";
import { formatCap } from "../trust/text.js";
import { describeErrno, errnoOf } from "../util/folders.js";
import { sidecarPath } from "../util/sidecar-path.js";
import {
  BesideImageSink,
  type BesideRecord,
  type FileState,
  type RecordedCaption,
} from "./beside-image-sink.js";
import { writeWhole } from "./write-whole.js";

/** What happens to a sidecar that already exists. */
export type SidecarPolicy = "skip" | "overwrite" | "append" | "prepend";
export const SIDECAR_POLICIES: readonly SidecarPolicy[] = [
  "skip",
  "overwrite",
  "append",
  "prepend",
];

export interface SidecarOptions {
  /** `.txt`, `.caption` or any other `.word`. @default ".txt" */
  ext: string;
  /** @default "skip" */
  policy: SidecarPolicy;
  /** Between the existing text and the new caption, for append and prepend. @default ", " */
  join?: string | undefined;
}

/**
 * A caption beside each image as `<folder>/<stem><ext>`, the layout LoRA trainers read. One line
 * and a newline: sd-scripts reads only the first line and OneTrainer takes each line as a caption
 * of its own. Completed from the run's record after a crash, so append never adds a caption twice.
 */
export class SidecarSink extends BesideImageSink {
  readonly #options: SidecarOptions;
  protected readonly what = "sidecar";

  constructor(
    options: SidecarOptions,
    recorded: RecordedCaption,
    readOnly = false,
    onWarning?: (message: string) => void,
  ) {
    super(recorded, readOnly, onWarning);
    this.#options = options;
  }

  protected fileFor(absPath: string): string {
    return sidecarPath(absPath, this.#options.ext);
  }

  protected collision(imagePath: string, owner: string, file: string): CaptionError {
    return new CaptionError(
      "sidecar_collision",
      `${imagePath} and ${owner} would share the sidecar ${path.basename(file)}; rename one of them`,
    );
  }

  protected async inspect(file: string, imagePath: string, present: boolean): Promise<FileState> {
    const { policy } = this.#options;
    // skip: an existing sidecar is kept as it is, whoever wrote it; nothing is sent for it.
    if (policy === "skip" && present) return "kept";
    if (present && (policy === "append" || policy === "prepend")) {
      const bytes = (await lstat(file).catch(() => null))?.size ?? 0;
      if (bytes > SIDECAR_READ_LIMIT) {
        return new CaptionError(
          "sidecar_too_large",
          `${path.basename(file)} beside ${imagePath} holds ${formatCap(bytes)}, more than the ${formatCap(SIDECAR_READ_LIMIT)} a caption sidecar is read up to to ${policy} to it; it was left as it was, fix or move it`,
        );
      }
    }
    return "free";
  }

  protected async holds(file: string, caption: string): Promise<boolean> {
    if (!(await exists(file))) return false;
    const { policy } = this.#options;
    // Overwritten once already: what the user made of it since is theirs.
    if (policy === "overwrite" || policy === "skip") return true;
    const text = await readOrEmpty(file);
    const line = oneLine(caption);
    if (text === line) return true;
    return policy === "append"
      ? text.endsWith(`${this.#join}${line}`)
      : text.startsWith(`${line}${this.#join}`);
  }

  protected async wrote(file: string, caption: string): Promise<boolean> {
    return (await readOrEmpty(file)) === oneLine(caption);
  }

  protected async put(file: string, record: BesideRecord, replace: boolean): Promise<void> {
    const caption = oneLine(record.caption);
    const { policy } = this.#options;
    try {
      // Whatever is there now, a link put there since included, is not replaced under skip; a
      // file replaced for a redo must still be a plain file.
      const there = await besideFile(file);
      if (
        replace ? there !== "missing" && there !== "file" : policy === "skip" && there !== "missing"
      ) {
        return;
      }
      const added = !replace && (policy === "append" || policy === "prepend");
      const existing = added ? await readOrEmpty(file) : "";
      const text =
        existing === ""
          ? caption
          : policy === "append"
            ? `${existing}${this.#join}${caption}`
            : `${caption}${this.#join}${existing}`;
      await writeWhole(file, `${text}\n`);
    } catch (error) {
      throw new RunAbortedError(
        "sidecar_not_writable",
        `cannot write the sidecar ${file} (${describeErrno(errnoOf(error))}); the sidecars written so far are kept, rerun to resume once fixed`,
        { cause: error },
      );
    }
  }

  get #join(): string {
    return this.#options.join ?? ", ";
  }
}

/** Line breaks inside a caption become spaces: trainers read one line. */
function oneLine(text: string): string {
  return text.replace(/\s*[\r\n]+\s*/g, " ").trim();
}

/** The sidecar's text on one line; a link put there since the run looked is refused, not read. */
async function readOrEmpty(file: string): Promise<string> {
  return oneLine((await readOwnedText(file, SIDECAR_READ_LIMIT)) ?? "");
}

async function exists(file: string): Promise<boolean> {
  return (await besideFile(file)) === "file";
}
