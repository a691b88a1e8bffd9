import type { CaptionError } from "../errors.js";
import type { CaptionRecord, FailureRecord, ImageTask } from "../types.js";
import type { StoredCaption } from "./out-file/stored-caption.js";

/** What a sink already holds from earlier runs: what a rerun need not caption again. */
export interface FinishedWork {
  /** Paths already captioned. */
  done: Set<string>;
  /** Content hashes of those images, for spotting copies under other names. */
  hashes: Set<string>;
  /** Bytes cut from the end of a file because its last record was torn by a crash. */
  repairedBytes: number;
  /** Paths a sink cannot take, with the reason: each becomes a failure without a request. */
  rejected?: Map<string, CaptionError>;
  /** Paths whose kept caption is to be made again (`--redo`): the run sends these alone. */
  redo?: ReadonlySet<string>;
  /**
   * Paths sent though held (`redo`, or a row of several prompts that lacks an answer), each new
   * result replacing what every output holds for the image.
   */
  replace?: ReadonlySet<string>;
}

/**
 * Everywhere a finished image goes. The pipeline opens every sink before the first image is sent,
 * asks what each already holds, hands each result to all of them, and closes them at the end,
 * whatever happened in between.
 */
export interface Sink {
  /**
   * Claims what the sink writes (folders, locks, a test that files can be created) and reads what
   * it already holds. Throws UsageError or RunAbortedError when it cannot be used: nothing has been
   * sent yet, so nothing is lost. `replace`: the images the run's record makes again (told by
   * the first sink to the others), whose outputs are to be replaced, not kept.
   */
  open(tasks: readonly ImageTask[], replace?: ReadonlySet<string>): Promise<FinishedWork>;
  /** The caption stored for these bytes by an earlier run, to give a copy the same one. */
  stored(sha256: string): Promise<StoredCaption | undefined>;
  /**
   * Keeps one caption; resolves once it is safe from a crash. Throws RunAbortedError. `replace`:
   * it is made again (`FinishedWork.replace`), and replaces what the sink holds for the image.
   */
  write(record: CaptionRecord, replace?: boolean): Promise<void>;
  /** Keeps one failure. Throws RunAbortedError. */
  fail(failure: FailureRecord): Promise<void>;
  /**
   * Flushes and releases everything; safe after a failed open, and safe twice. Throws
   * RunAbortedError only for an output it could not finish (a Parquet OUT not written), after
   * releasing everything.
   */
  close(): Promise<void>;
}

/** A sink that is the run's record: it can say what caption an earlier run kept for a path. */
export interface RecordSink extends Sink {
  recorded(imagePath: string): Promise<StoredCaption | undefined>;
}

/**
 * Several sinks as one: an image is done when every sink holds it, left alone when any sink says
 * so, and each result goes to all of them.
 */
export function combineSinks(sinks: readonly Sink[]): Sink {
  if (sinks.length === 1 && sinks[0]) return sinks[0];
  let replacing: ReadonlySet<string> = new Set();
  return {
    async open(tasks) {
      const opened: FinishedWork[] = [];
      // One after another, so the first that cannot be used stops the rest from being claimed.
      for (const sink of sinks) opened.push(await sink.open(tasks, opened[0]?.replace));
      const [first, ...rest] = opened;
      replacing = first?.replace ?? replacing;
      const done = new Set(
        [...(first?.done ?? [])].filter((path) => rest.every((other) => other.done.has(path))),
      );
      return {
        done,
        hashes: new Set(opened.flatMap((work) => [...work.hashes])),
        repairedBytes: opened.reduce((sum, work) => sum + work.repairedBytes, 0),
        rejected: new Map(opened.flatMap((work) => [...(work.rejected ?? [])])),
        ...(first?.redo ? { redo: first.redo } : {}),
        ...(first?.replace ? { replace: first.replace } : {}),
      };
    },
    async stored(sha256) {
      for (const sink of sinks) {
        const found = await sink.stored(sha256);
        if (found) return found;
      }
      return undefined;
    },
    async write(record) {
      const replace = replacing.has(record.path);
      for (const sink of sinks) await sink.write(record, replace);
    },
    async fail(failure) {
      for (const sink of sinks) await sink.fail(failure);
    },
    async close() {
      const closed = await Promise.allSettled(sinks.map((sink) => sink.close()));
      // Every sink is closed first; then what one could not finish (a Parquet OUT not written) is said.
      const failed = closed.find((result) => result.status === "rejected");
      if (failed) throw failed.reason;
    },
  };
}
