import path from "node:path";
import { CaptionError, RunAbortedError } from "../errors.js";
import { describeErrno, errnoOf, readFileOrNull, statOrNull } from "../folders.js";
import type { StoredCaption } from "../resume.js";
import { IMAGE_EXTENSIONS } from "../stages/discover.js";
import type { CaptionRecord, ImageTask } from "../types.js";
import type { FinishedWork, Sink } from "./sink.js";
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

/** The row the run's record (OUT) holds for a path, if any. */
export type RecordedCaption = (imagePath: string) => Promise<StoredCaption | undefined>;

/**
 * A caption beside each image as `<folder>/<stem><ext>`, the layout LoRA trainers read. One line
 * and a newline: sd-scripts reads only the first line and OneTrainer takes each line as a caption
 * of its own. The run's record (OUT) says which images this tool captioned: a sidecar is written
 * after its row, so after a crash between the two the sidecar is completed from the row at the
 * next start, without a request, and append never adds a caption twice.
 */
export class SidecarSink implements Sink {
  readonly #options: SidecarOptions;
  readonly #recorded: RecordedCaption;
  /** Writes nothing, for a dry run that must still skip what a real run would skip. */
  readonly #readOnly: boolean;
  readonly #files = new Map<string, string>();

  constructor(options: SidecarOptions, recorded: RecordedCaption, readOnly = false) {
    this.#options = options;
    this.#recorded = recorded;
    this.#readOnly = readOnly;
  }

  async open(tasks: readonly ImageTask[]): Promise<FinishedWork> {
    const done = new Set<string>();
    const rejected = new Map<string, CaptionError>();
    const owners = new Map<string, string>();
    for (const task of tasks) {
      const file = sidecarPath(task.absPath, this.#options.ext);
      const owner = owners.get(file);
      if (owner !== undefined) {
        rejected.set(
          task.path,
          new CaptionError(
            "sidecar_collision",
            `${task.path} and ${owner} would share the sidecar ${path.basename(file)}; rename one of them`,
          ),
        );
        continue;
      }
      owners.set(file, task.path);
      this.#files.set(task.path, file);
      // skip: an existing sidecar is kept as it is, whoever wrote it; nothing is sent for it.
      if (this.#options.policy === "skip" && (await exists(file))) {
        done.add(task.path);
        continue;
      }
      const row = await this.#recorded(task.path);
      if (row === undefined) continue;
      // Captioned by an earlier run: make sure its sidecar holds that caption, without a request.
      if (!(await this.#holds(file, row.caption))) {
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
    const caption = oneLine(record.caption);
    if (this.#readOnly || file === undefined || caption === "") return;
    const { policy } = this.#options;
    const join = this.#options.join ?? ", ";
    try {
      if (policy === "skip" && (await exists(file))) return;
      const existing = policy === "append" || policy === "prepend" ? await readOrEmpty(file) : "";
      const text =
        existing === ""
          ? caption
          : policy === "append"
            ? `${existing}${join}${caption}`
            : `${caption}${join}${existing}`;
      await writeWhole(file, `${text}\n`);
    } catch (error) {
      throw new RunAbortedError(
        "sidecar_not_writable",
        `cannot write the sidecar ${file} (${describeErrno(errnoOf(error))}); the sidecars written so far are kept, rerun to resume once fixed`,
        { cause: error },
      );
    }
  }

  /** Whether the sidecar already carries `caption` as the policy would have put it there. */
  async #holds(file: string, caption: string): Promise<boolean> {
    if (!(await exists(file))) return false;
    const { policy } = this.#options;
    const join = this.#options.join ?? ", ";
    // Overwritten once already: what the user made of it since is theirs.
    if (policy === "overwrite" || policy === "skip") return true;
    const text = await readOrEmpty(file);
    const line = oneLine(caption);
    if (text === line) return true;
    return policy === "append"
      ? text.endsWith(`${join}${line}`)
      : text.startsWith(`${line}${join}`);
  }

  async fail(): Promise<void> {}

  async close(): Promise<void> {}
}

/**
 * Why `ext` cannot name a caption sidecar, or null: it must be a plain `.word`, and never the
 * extension of an image or of an XMP sidecar, which writing a caption there would destroy.
 */
export function sidecarExtProblem(ext: string): string | null {
  if (!/^\.[A-Za-z0-9_-]{1,16}$/.test(ext)) {
    return `"${ext}" is not an extension like .txt or .caption`;
  }
  const word = ext.slice(1).toLowerCase();
  if ((IMAGE_EXTENSIONS as readonly string[]).includes(word) || word === "xmp") {
    return `"${ext}" is the extension of images or XMP sidecars; captions would overwrite them`;
  }
  return null;
}

export function sidecarPath(imagePath: string, ext: string): string {
  const dir = path.dirname(imagePath);
  return path.join(dir, `${path.basename(imagePath, path.extname(imagePath))}${ext}`);
}

/** Line breaks inside a caption become spaces: trainers read one line. */
function oneLine(text: string): string {
  return text.replace(/\s*[\r\n]+\s*/g, " ").trim();
}

async function readOrEmpty(file: string): Promise<string> {
  return oneLine((await readFileOrNull(file)) ?? "");
}

async function exists(file: string): Promise<boolean> {
  return (await statOrNull(file))?.isFile() === true;
}
