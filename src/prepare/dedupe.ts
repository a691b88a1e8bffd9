import type { StoredCaption } from "../sinks/out-file/stored-caption.js";
import type { FailureRecord } from "../types.js";

/** How the work on one distinct image ended. */
export type ImageOutcome =
  | { kind: "captioned"; stored: StoredCaption }
  | { kind: "failed"; failure: FailureRecord }
  | { kind: "unfinished" }
  /** Dry run: prepared and counted, not sent. */
  | { kind: "dry" };

/**
 * Remembers, by content hash, which images are captioned (in OUT, from this run or an earlier
 * one), failed, or in flight, so a copy of an image under another name is never sent again. Only
 * hashes are held in memory; captions are read back from OUT on the rare occasion a copy turns up.
 */
export class DuplicateTracker {
  readonly #captioned: Set<string>;
  readonly #failed = new Map<string, FailureRecord>();
  readonly #dry = new Set<string>();
  readonly #inFlight = new Map<string, Promise<ImageOutcome>>();
  readonly #lookup: (sha256: string) => Promise<StoredCaption | undefined>;

  /** `lookup` reads the caption of an image finished earlier back from where it was kept. */
  constructor(
    captionedHashes: Iterable<string>,
    lookup: (sha256: string) => Promise<StoredCaption | undefined>,
  ) {
    this.#captioned = new Set(captionedHashes);
    this.#lookup = lookup;
  }

  /**
   * Called once per image, synchronously after hashing so no two workers can both think they are
   * first. The first image with these bytes gets `settle`, to be called with how its work ended;
   * a copy gets that outcome instead (waiting for it if the first is still in flight). An outcome
   * of null means the earlier row could not be read back, and the copy must be captioned itself.
   */
  begin(
    hash: string,
  ):
    | { first: true; settle: (outcome: ImageOutcome) => void }
    | { first: false; outcome: Promise<ImageOutcome | null> } {
    const pending = this.#inFlight.get(hash);
    if (pending) return { first: false, outcome: pending };
    const failure = this.#failed.get(hash);
    if (failure) return { first: false, outcome: Promise.resolve({ kind: "failed", failure }) };
    if (this.#dry.has(hash)) return { first: false, outcome: Promise.resolve({ kind: "dry" }) };
    if (this.#captioned.has(hash)) {
      const outcome = this.#lookup(hash).then((stored): ImageOutcome | null =>
        stored ? { kind: "captioned", stored } : null,
      );
      return { first: false, outcome };
    }
    let resolve: (outcome: ImageOutcome) => void = () => {};
    this.#inFlight.set(hash, new Promise((r) => (resolve = r)));
    const settle = (outcome: ImageOutcome) => {
      this.#inFlight.delete(hash);
      if (outcome.kind === "captioned") {
        this.#captioned.add(hash);
      } else if (outcome.kind === "failed") {
        this.#failed.set(hash, outcome.failure);
      } else if (outcome.kind === "dry") {
        this.#dry.add(hash);
      }
      resolve(outcome);
    };
    return { first: true, settle };
  }
}
