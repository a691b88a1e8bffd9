import { lstat, open, rm, stat, unlink } from "node:fs/promises";
import path from "node:path";
import { CaptionError, type NameSetting, RunAbortedError, UsageError } from "../errors.js";
import type { CaptionRecord, FailureRecord, ImageTask, OutputFormat } from "../types.js";
import { describeErrno, ensureFolder, errnoOf, outputFileProblem } from "../util/folders.js";
import { lockOutput, type OutputLock } from "./lock.js";
import { addCsvColumns, keepLastRows } from "./out-file/compact.js";
import { storedCaptions } from "./out-file/lookup.js";
import { recordFromParquet } from "./out-file/parquet-read.js";
import { parquetRecordPath } from "./out-file/parquet-record.js";
import { writeParquetFromRecord } from "./out-file/parquet-write.js";
import { readFinishedWork } from "./out-file/scan.js";
import type { StoredCaption } from "./out-file/stored-caption.js";
import {
  answerColumns,
  openCaptionWriter,
  openJsonlWriter,
  outColumns,
  type PromptColumns,
  type RecordWriter,
  readCsvHeader,
} from "./out-file/writers.js";
import { PromptTally } from "./prompt-tally.js";
import { type RecordKeys, recordKeys } from "./record-keys.js";
import { type RecordedRows, recordedRows } from "./recorded-rows.js";
import { Remakes } from "./redo.js";
import type { FinishedWork, RecordSink } from "./sink.js";
import { removeStaleTemporariesOf } from "./write-whole.js";

export interface FileSinkOptions {
  /**
   * OUT: one row per captioned image, CSV or JSONL, or Parquet (its rows appended to the record
   * beside it, parquet-record.ts, and OUT written from that at the end).
   */
  output: string;
  format: OutputFormat;
  /** One line per image that failed in this run; removed at the start of each run. */
  errorsPath: string;
  /** Start OUT afresh instead of resuming from it. */
  overwrite: boolean;
  csvFormulaGuard: boolean;
  /**
   * OUT is only the record the other outputs are checked against (no -o was given): it asks for
   * no image itself, so a hand-kept sidecar under `skip` is not sent just to fill it.
   */
  recordOnly?: boolean | undefined;
  /**
   * Key rows by the image's path relative to this folder instead of the displayed path, which
   * depends on the working directory: a record kept with the data then serves runs from anywhere.
   */
  recordRoot?: string | undefined;
  /** A structured answer's properties: CSV columns of their own. */
  properties?: readonly string[] | undefined;
  /** Which prompt this run uses: OUT's rows made with another are worth a warning. */
  promptHash?: string | undefined;
  /** Which rows to make again (`--redo`, checked): each new row replaces the old. */
  redo?: string | undefined;
  /**
   * Several prompts' columns (`--prompts`): a row that lacks an answer is finished by this run (a
   * new row replacing it), and a CSV without their columns gains them before anything is written.
   */
  prompts?: PromptColumns | undefined;
  /** The run may caption clips: a CSV has their columns, and an OUT without them gains them. */
  clips?: boolean | undefined;
  /** Other outputs will ask for OUT's rows by path (`recorded`): keep them from the first read. */
  keepRows?: boolean | undefined;
  nameSetting: NameSetting;
  /** Told of trouble that does not stop the run (a lock lost to another process). */
  onWarning: (message: string) => void;
}

/**
 * OUT, the errors file beside it and the lock that keeps a second run off them: one sink, since
 * all three live and die together. OUT is resumed from (a torn last row repaired), appended to a
 * row at a time, and only created once there is a row to write. A Parquet OUT's rows go to its
 * record, which is all of the above, and OUT is written from the record when the sink closes.
 */
export class FileSink implements RecordSink {
  readonly #options: FileSinkOptions;
  #lock: OutputLock | null = null;
  #held: ReadonlySet<string> = new Set();
  /** Keys of the rows this run makes again (`--redo`), or finishes (a prompt added since). */
  #remade: ReadonlySet<string> = new Set();
  /** Whether it replaced a row: OUT is then rewritten with one row per image at the end. */
  #replaced = false;
  #out: Promise<RecordWriter<CaptionRecord>> | null = null;
  #errors: Promise<RecordWriter<FailureRecord>> | null = null;
  readonly #stored;
  readonly #keys: RecordKeys;
  readonly #rows: RecordedRows;
  readonly #columns: readonly string[];
  /** The file rows are appended to: OUT, or a Parquet OUT's record, which is JSONL. */
  readonly #file: string;
  readonly #fileFormat: OutputFormat;
  /** The record changed in this run (a row, a repair, a rewrite): a Parquet OUT is written anew. */
  #recordChanged = false;
  /** Open went through: a run refused at open writes no Parquet file on close. */
  #opened = false;

  constructor(options: FileSinkOptions) {
    this.#options = options;
    const parquet = options.format === "parquet";
    this.#file = parquet ? parquetRecordPath(options.output) : options.output;
    this.#fileFormat = parquet ? "jsonl" : options.format;
    this.#keys = recordKeys(options.recordRoot);
    this.#columns = outColumns(options.properties, options.prompts, options.clips);
    this.#rows = recordedRows(options.output, options.format, this.#keys, this.#columns);
    this.recorded = this.#rows.get;
    this.#stored = storedCaptions(options.output, options.format, this.#columns);
  }

  async open(tasks: readonly ImageTask[] = []): Promise<FinishedWork> {
    const { output, errorsPath, format, overwrite } = this.#options;
    await refuseSpecialFiles(output, errorsPath);
    if (this.#file !== output) await refuseSpecialFiles(this.#file, errorsPath);
    try {
      await ensureFolder(path.dirname(output));
      this.#lock = await lockOutput(output, this.#options.onWarning);
    } catch (error) {
      if (error instanceof CaptionError) throw error;
      throw new RunAbortedError(
        "output_not_writable",
        `cannot create ${output} or its lock beside it (${describeErrno(errnoOf(error))}); choose a file in a folder you can write`,
        { cause: error },
      );
    }
    this.#keys.learn(tasks);
    if (overwrite) {
      await rm(output, { force: true });
      await rm(this.#file, { force: true });
    }
    if (format === "parquet") await this.#recordOfParquet();
    const keep = this.#options.keepRows ? this.#rows.keep() : undefined;
    const prompts = new PromptTally(this.#options.promptHash);
    const remakes = remakesOf(this.#options);
    const finished = await readFinishedWork(output, format, this.#columns, {
      repair: true,
      onRow: (row) => {
        keep?.(row);
        prompts.count(row.prompt_hash);
        remakes.see(row);
      },
      afresh: `set ${this.#options.nameSetting("overwrite")} to start a fresh one`,
    });
    // Rows a crash left twice for an image (before OUT was rewritten): rewritten at the end.
    if (finished.rows > finished.done.size) this.#replaced = true;
    if (finished.repairedBytes > 0) this.#recordChanged = true;
    remakes.apply(finished);
    this.#remade = remakes.keys();
    this.#held = finished.done;
    if (this.#options.recordRoot !== undefined) {
      // Held paths are keys; a task counts as held by its own key.
      const keys = finished.done;
      finished.done = new Set(
        tasks.filter((task) => keys.has(this.#keys.key(task.path))).map((task) => task.path),
      );
    }
    if (format === "csv") await this.#checkColumns();
    await probeErrorsFile(errorsPath);
    const changed = remakes.redoing ? null : prompts.warning(output, this.#options.nameSetting);
    if (changed) this.#options.onWarning(changed);
    this.#opened = true;
    return remakes.finished(finished, tasks, this.#keys.key, this.#options.recordOnly === true);
  }

  /**
   * A Parquet OUT without its record (copied alone, or the record deleted) is read back into one,
   * so the run resumes from it as from any record; what a killed run left half-written is swept.
   */
  async #recordOfParquet(): Promise<void> {
    const { output } = this.#options;
    // Written whole at the end, and a whole file is never written through a link: said now,
    // before anything is sent, rather than after the run.
    if ((await lstat(output).catch(() => null))?.isSymbolicLink()) {
      throw new UsageError([
        `${output} is a symlink, and a Parquet OUT is written whole, never through a link: name the file itself with -o`,
      ]);
    }
    await removeStaleTemporariesOf(output);
    await removeStaleTemporariesOf(this.#file);
    const parquet = await stat(output).catch(() => null);
    // Nothing to read back: the record is there, or no Parquet file with rows is.
    if ((await stat(this.#file).catch(() => null)) || !parquet?.size) return;
    try {
      await recordFromParquet(output, this.#file);
    } catch (error) {
      if (error instanceof UsageError) {
        throw new UsageError(
          error.problems.map(
            (problem) =>
              `${problem}, or set ${this.#options.nameSetting("overwrite")} to start a fresh one`,
          ),
        );
      }
      throw new RunAbortedError(
        "output_unreadable",
        `cannot read ${output} back into its record ${this.#file} to resume from it (${describeErrno(errnoOf(error))}); -o must name a file in a folder you can read and write`,
        { cause: error },
      );
    }
    this.#recordChanged = true;
  }

  /**
   * A CSV holds the columns it was begun with: answers to a schema whose properties it has no
   * column for would lose them, so such a run is refused before anything is sent.
   */
  async #checkColumns(): Promise<void> {
    const header = await readCsvHeader(this.#options.output);
    if (header === null) return;
    if (this.#options.prompts || this.#options.clips) {
      // A prompt added to the file, or clips to a run of images: OUT gains their columns now,
      // before a row needs them.
      const added = this.#columns.filter((column) => !header.includes(column));
      try {
        await addCsvColumns(this.#options.output, added);
      } catch (error) {
        const why =
          errnoOf(error) === "ESYMLINK"
            ? "it is a symlink, and a file is never rewritten through one: name the file itself with -o"
            : `${describeErrno(errnoOf(error))}: choose an output you can write`;
        throw new UsageError([
          `${this.#options.output}: cannot give it the columns ${this.#options.prompts ? "of the prompts added" : "of clips"} (${added.join(", ")}); ${why}`,
        ]);
      }
      if (this.#options.prompts) return;
    }
    const missing = answerColumns(this.#options.properties ?? [])
      .map((entry) => entry.column)
      .filter((column) => !header.includes(column));
    if (missing.length === 0) return;
    throw new UsageError([
      `${this.#options.output}: has no column for ${missing.join(", ")}, so it was begun with another schema or none; write this run to another output, or set ${this.#options.nameSetting("overwrite")} to start it afresh`,
    ]);
  }

  /**
   * An earlier caption for these bytes, if the same prompt made it: a copy must not carry an
   * answer to another prompt or schema into this run. Rows from before prompts were told apart
   * serve plain runs.
   */
  async stored(sha256: string) {
    const found = await this.#stored.get(sha256);
    // A caption being made again, or a row still being finished, is no copy's to take.
    if (found && this.#remade.has(found.path)) return undefined;
    if (!found || this.#options.promptHash === undefined) return found;
    if (found.prompt_hash === this.#options.promptHash) return found;
    const structured = (this.#options.properties ?? []).length > 0;
    return found.prompt_hash === null && !structured ? found : undefined;
  }

  /** The row OUT holds for a path, as it stood when the run began. */
  readonly recorded: (imagePath: string) => Promise<StoredCaption | undefined>;

  async write(record: CaptionRecord): Promise<void> {
    const key = this.#keys.key(record.path);
    // Sent again for another sink's sake (a sidecar deleted since): OUT keeps its one row.
    if (this.#held.has(key)) return;
    if (this.#remade.has(key)) this.#replaced = true;
    const { output, csvFormulaGuard } = this.#options;
    this.#recordChanged = true;
    try {
      this.#out ??= openCaptionWriter(this.#file, this.#fileFormat, {
        csvFormulaGuard,
        properties: this.#options.properties,
        prompts: this.#options.prompts,
        clips: this.#options.clips,
      });
      await (await this.#out).write(key === record.path ? record : { ...record, path: key });
    } catch (error) {
      throw new RunAbortedError(
        "output_write_failed",
        `cannot write to ${output} (${describeErrno(errnoOf(error))}); the rows written so far are kept, rerun to resume once fixed`,
        { cause: error },
      );
    }
    // A cached read of OUT predates this row.
    this.#stored.forget();
  }

  /**
   * OUT with one row per image again, the replacing rows kept, before the lock is let go. Every
   * reader takes an image's later row already; this leaves a finished OUT as a reader expects it.
   */
  async #keepLastRows(): Promise<void> {
    this.#replaced = false;
    try {
      await keepLastRows(this.#file, this.#fileFormat, "path", true);
    } catch (error) {
      const linked = errnoOf(error) === "ESYMLINK";
      this.#options.onWarning(
        linked
          ? `${this.#file} is a symlink, so it is not rewritten with one row per image (a run never writes a whole file through a link): it holds an image's old row and its new one, and the new one counts; name the file itself with -o to have it rewritten`
          : `${this.#file} holds an image's old row and its new one (the new one counts; ${describeErrno(errnoOf(error))} kept it from being rewritten with the new alone): the next run rewrites it`,
      );
    }
  }

  async fail(failure: FailureRecord): Promise<void> {
    const { errorsPath } = this.#options;
    try {
      // Opened once, on the first failure, however many arrive together.
      this.#errors ??= ensureFolder(path.dirname(errorsPath)).then(() =>
        openJsonlWriter<FailureRecord>(errorsPath),
      );
      await (await this.#errors).write(failure);
    } catch (error) {
      throw new RunAbortedError(
        "errors_not_writable",
        `cannot write the errors file ${errorsPath} (${describeErrno(errnoOf(error))}); choose an errors file you can write`,
        { cause: error },
      );
    }
  }

  async close(): Promise<void> {
    const writers = await Promise.all(
      [this.#out, this.#errors].map((opening) =>
        (opening as Promise<RecordWriter<unknown>> | null)?.catch(() => null),
      ),
    );
    await Promise.allSettled(writers.map((writer) => writer?.close()));
    if (this.#replaced) {
      await this.#keepLastRows();
      this.#recordChanged = true;
    }
    // Written while the lock is held, so no other run appends to the record meanwhile.
    const written =
      this.#lock && this.#opened && this.#options.format === "parquet"
        ? this.#writeParquet()
        : null;
    const failed = await written?.then(
      () => null,
      (error: unknown) => error,
    );
    await this.#lock?.release().catch(() => {});
    this.#lock = null;
    if (failed) throw failed;
  }

  /**
   * A Parquet OUT written from its record, when the record changed in this run or since OUT was
   * last written (a run killed before it got here): at the end of every run, a stopped one too.
   * It cannot be written a row at a time (its footer is at the end), so it is written whole.
   */
  async #writeParquet(): Promise<void> {
    const { output } = this.#options;
    const record = await stat(this.#file).catch(() => null);
    if (!record) return;
    const parquet = await stat(output).catch(() => null);
    if (!this.#recordChanged && parquet && parquet.mtimeMs >= record.mtimeMs) return;
    try {
      await writeParquetFromRecord(this.#file, output, {
        properties: this.#options.properties,
        prompts: this.#options.prompts,
        clips: this.#options.clips,
      });
    } catch (error) {
      const why =
        errnoOf(error) === "ESYMLINK"
          ? "it is a symlink, and a whole file is never written through one: name the file itself with -o"
          : describeErrno(errnoOf(error));
      throw new RunAbortedError(
        "output_write_failed",
        `cannot write ${output} (${why}); every row is kept in its record ${this.#file}, and the next run writes ${path.basename(output)} from it`,
        { cause: error },
      );
    }
  }
}

/** What the run makes again of OUT: the rows `--redo` names, and rows that lack a prompt's answer. */
export function remakesOf(options: FileSinkOptions): Remakes {
  return new Remakes({ ...options, promptNames: options.prompts?.names });
}

/** OUT and the errors file are read and appended to: a pipe or a device there would hang the run. */
export async function refuseSpecialFiles(output: string, errorsPath: string): Promise<void> {
  const problems: string[] = [];
  const outProblem = await outputFileProblem(output);
  if (outProblem) problems.push(`output: ${output} ${outProblem}`);
  const errorsProblem = await outputFileProblem(errorsPath);
  if (errorsProblem) problems.push(`errorsPath: ${errorsPath} ${errorsProblem}`);
  if (problems.length > 0) throw new UsageError(problems);
}

/**
 * Clears the last run's errors file and makes sure a new one can be written, before any image is
 * sent: finding out at the first failure would leave that failure nowhere but on stderr.
 */
async function probeErrorsFile(errorsPath: string): Promise<void> {
  try {
    await rm(errorsPath, { force: true });
    await ensureFolder(path.dirname(errorsPath));
    await (await open(errorsPath, "wx")).close();
    await unlink(errorsPath);
  } catch (error) {
    throw new RunAbortedError(
      "errors_not_writable",
      `cannot create the errors file ${errorsPath} (${describeErrno(errnoOf(error))}); choose an errors file you can write`,
      { cause: error },
    );
  }
}
