import path from "node:path";
import sharp from "sharp";
import { isClipPath } from "../discover/extensions.js";
import { RunAbortedError, UsageError } from "../errors.js";
import { probeClip } from "../prepare/clip/probe.js";
import { readAndHash } from "../prepare/hash.js";
import { besideFile } from "../trust/links.js";
import type { CaptionRecord, ImageTask } from "../types.js";
import {
  describeErrno,
  errnoOf,
  folderInputs,
  outputFileProblem,
  toPosix,
} from "../util/folders.js";
import type { RecordedCaption } from "./beside-image-sink.js";
import { addCsvColumns, keepLastRows } from "./out-file/compact.js";
import { readFinishedWork } from "./out-file/scan.js";
import {
  CAPTION_PREFIX,
  openCsvWriter,
  openJsonlWriter,
  type RecordWriter,
  readCsvHeader,
} from "./out-file/writers.js";
import type { FinishedWork, Sink } from "./sink.js";

export type HfMetadataFormat = "jsonl" | "csv";

/** The columns `datasets`' imagefolder reads: `file_name` links each row to its image. */
export const HF_COLUMNS = ["file_name", "text", "width", "height", "sha256", "flags"] as const;

export interface HfRow {
  /** With several prompts: each one's answer as a column of its own, `caption_<name>`. */
  [promptColumn: `caption_${string}`]: string;
  file_name: string;
  text: string;
  /** Of the original file, upright. */
  width: number;
  height: number;
  sha256: string;
  /**
   * The caption's flags joined with ", ", empty when none: a string in both forms, because every
   * metadata file of a dataset must infer the same features, and a list that is always empty does not.
   */
  flags: string;
}

interface Root {
  folder: string;
  file: string;
  done: Set<string>;
  /** A row was appended for an image the file held already (`--redo`): rewritten at the end. */
  replaced: boolean;
  writer: Promise<RecordWriter<HfRow>> | null;
}

/**
 * `metadata.jsonl` (or `.csv`) at the root of each folder given as an input, one row per image
 * under it: what `load_dataset("imagefolder", data_dir=…)` reads. Appended a row at a time and
 * resumed like OUT (a torn last row cut off), so a rerun adds only new images, never a duplicate.
 * Images named as files or globs belong to no folder and get no row.
 */
export class HfMetadataSink implements Sink {
  #roots: Root[] = [];
  readonly #inputs: readonly string[];
  readonly #cwd: string;
  readonly #format: HfMetadataFormat;
  readonly #readOnly: boolean;
  readonly #recorded: RecordedCaption;
  readonly #where = new Map<string, { root: Root; fileName: string; absPath: string }>();
  /** With several prompts, their names: each gets a column, for a training tool to choose from. */
  readonly #prompts: readonly string[];
  readonly #columns: readonly string[];
  readonly #onWarning: (message: string) => void;

  /** `inputs` as the run was given them; those that are folders get a metadata file each. */
  constructor(
    inputs: readonly string[],
    cwd: string,
    format: HfMetadataFormat,
    recorded: RecordedCaption,
    readOnly = false,
    prompts: readonly string[] = [],
    onWarning: (message: string) => void = () => {},
  ) {
    this.#onWarning = onWarning;
    this.#prompts = prompts;
    this.#columns = [...HF_COLUMNS, ...prompts.map((name) => `${CAPTION_PREFIX}${name}`)];
    this.#recorded = recorded;
    this.#inputs = inputs;
    this.#cwd = cwd;
    this.#format = format;
    this.#readOnly = readOnly;
  }

  async open(tasks: readonly ImageTask[]): Promise<FinishedWork> {
    const folders = await folderInputs(this.#inputs, this.#cwd);
    this.#roots = folders.map((folder) => ({
      folder,
      file: path.join(folder, `metadata.${this.#format}`),
      done: new Set<string>(),
      replaced: false,
      writer: null,
    }));
    const problems: string[] = [];
    for (const root of this.#roots) {
      // The folder is the user's, the file in it the run's: never appended to through a link.
      const problem =
        (await besideFile(root.file)) === "symlink"
          ? "is a symlink, and the run never writes through one: remove the link (or put a copy of its file in its place) and rerun"
          : await outputFileProblem(root.file);
      if (problem) problems.push(`hfMetadata: ${root.file} ${problem}`);
    }
    if (problems.length > 0) throw new UsageError(problems);
    for (const root of this.#roots) {
      const held = await readFinishedWork(root.file, this.#format, this.#columns, {
        repair: !this.#readOnly,
      });
      root.done = held.done;
      // A prompt added since: the file gains its column before a row needs it.
      if (this.#format === "csv" && !this.#readOnly && this.#prompts.length > 0) {
        const header = await readCsvHeader(root.file);
        if (header) {
          await addCsvColumns(
            root.file,
            this.#columns.filter((column) => !header.includes(column)),
          );
        }
      }
    }
    const done = new Set<string>();
    for (const task of tasks) {
      // The innermost folder input holds the image, so nested inputs each describe their own.
      const root = this.#roots
        .filter((candidate) => isInside(task.absPath, candidate.folder))
        .sort((a, b) => b.folder.length - a.folder.length)[0];
      // Not under a folder input: this sink has nothing to add, so it must not hold the image up.
      if (!root) {
        done.add(task.path);
        continue;
      }
      const fileName = toPosix(path.relative(root.folder, task.absPath));
      this.#where.set(task.path, { root, fileName, absPath: task.absPath });
      if (root.done.has(fileName)) {
        done.add(task.path);
        continue;
      }
      // Captioned by an earlier run (a crash came before this row, or the output is new): the
      // row comes from the record, without a request.
      const row = await this.#recorded(task.path);
      if (row === undefined) continue;
      const sha256 = row.sha256 ?? (await readAndHash(task.absPath))?.sha256 ?? "";
      await this.write({
        path: task.path,
        caption: row.caption,
        sha256,
        flags: row.flags,
        ...(row.captions ? { captions: row.captions } : {}),
      });
      done.add(task.path);
    }
    return { done, hashes: new Set(), repairedBytes: 0 };
  }

  async stored() {
    return undefined;
  }

  async write(
    record: Pick<CaptionRecord, "path" | "caption" | "sha256" | "flags" | "captions">,
    replace = false,
  ): Promise<void> {
    const where = this.#where.get(record.path);
    if (this.#readOnly || !where) return;
    const { root, fileName, absPath } = where;
    if (root.done.has(fileName)) {
      if (!replace) return;
      root.replaced = true;
    }
    try {
      const size = await originalSize(absPath);
      if (!root.writer) {
        root.writer =
          this.#format === "jsonl"
            ? openJsonlWriter<HfRow>(root.file)
            : openCsvWriter<HfRow>(root.file, this.#columns);
      }
      await (await root.writer).write({
        file_name: fileName,
        text: record.caption,
        width: size.width,
        height: size.height,
        sha256: record.sha256,
        flags: record.flags.join(", "),
        ...Object.fromEntries(
          this.#prompts.map((name) => [`${CAPTION_PREFIX}${name}`, record.captions?.[name] ?? ""]),
        ),
      });
      root.done.add(fileName);
    } catch (error) {
      throw new RunAbortedError(
        "metadata_not_writable",
        `cannot write ${root.file} (${describeErrno(errnoOf(error))}); the rows written so far are kept, rerun to resume once fixed`,
        { cause: error },
      );
    }
  }

  async fail(): Promise<void> {}

  async close(): Promise<void> {
    const writers = await Promise.all(
      this.#roots.map((root) => root.writer?.catch(() => null) ?? null),
    );
    await Promise.allSettled(writers.map((writer) => writer?.close()));
    // `datasets` takes every row as an example: a replaced image's old row must go.
    for (const root of this.#roots) {
      if (!root.replaced) continue;
      await keepLastRows(root.file, this.#format, "file_name").catch((error: unknown) => {
        this.#onWarning(
          `${root.file} holds an image's old row and its new one, and could not be rewritten with the new alone (${describeErrno(errnoOf(error))}); \`datasets\` would take both: rerun to rewrite it`,
        );
      });
    }
  }
}

/** A clip's header read for its size: ffprobe answers in milliseconds, or something is wrong. */
const PROBE_TIMEOUT_MS = 30_000;

/** The original's size as a viewer shows it, read from its header alone (a clip's by ffprobe). */
async function originalSize(absPath: string): Promise<{ width: number; height: number }> {
  if (isClipPath(absPath)) return probeClip(absPath, { timeoutMs: PROBE_TIMEOUT_MS });
  const metadata = await sharp(absPath, { pages: 1 }).metadata();
  return { width: metadata.autoOrient.width, height: metadata.autoOrient.height };
}

function isInside(file: string, folder: string): boolean {
  const relative = path.relative(folder, file);
  return relative !== "" && !relative.startsWith("..") && !path.isAbsolute(relative);
}
