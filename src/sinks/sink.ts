import type { StoredCaption } from "../resume.js";
import type { CaptionRecord, FailureRecord } from "../types.js";

/** What a sink already holds from earlier runs: what a rerun need not caption again. */
export interface FinishedWork {
  /** Paths already captioned. */
  done: Set<string>;
  /** Content hashes of those images, for spotting copies under other names. */
  hashes: Set<string>;
  /** Bytes cut from the end of a file because its last record was torn by a crash. */
  repairedBytes: number;
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
   * sent yet, so nothing is lost.
   */
  open(): Promise<FinishedWork>;
  /** The caption stored for these bytes by an earlier run, to give a copy the same one. */
  stored(sha256: string): Promise<StoredCaption | undefined>;
  /** Keeps one caption; resolves once it is safe from a crash. Throws RunAbortedError. */
  write(record: CaptionRecord): Promise<void>;
  /** Keeps one failure. Throws RunAbortedError. */
  fail(failure: FailureRecord): Promise<void>;
  /** Flushes and releases everything; safe after a failed open, and safe twice. */
  close(): Promise<void>;
}
