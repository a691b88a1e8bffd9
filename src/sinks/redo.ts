import { madeByCurrent } from "../prompts/prompt-set.js";
import type { ImageTask } from "../types.js";
import type { StoredCaption } from "./out-file/stored-caption.js";
import type { FinishedWork } from "./sink.js";

/** The flags a caption can carry (answer/degenerate.ts), as `--redo` names them. */
const FLAGS = ["repetition", "refusal", "truncated"] as const;
const WORDS = ["flagged", "prompt-changed", ...FLAGS] as const;

/** Which rows of OUT a run sends again (`--redo`), replacing each. */
export interface RedoRule {
  /** Rows carrying any of these flags; every flag for "flagged". */
  flags: ReadonlySet<string> | "any";
  /** Rows made by another prompt (or schema) than this run's. */
  promptChanged: boolean;
}

/** What is wrong with a `--redo` value, or null: a comma list of the words it takes. */
export function redoProblem(value: string): string | null {
  const unknown = words(value).filter((word) => !(WORDS as readonly string[]).includes(word));
  if (words(value).length === 0)
    return `expected one of ${WORDS.join(", ")} (or several, comma-separated)`;
  return unknown.length === 0
    ? null
    : `${unknown.map((word) => `"${word}"`).join(", ")} is not one of ${WORDS.join(", ")}; several go comma-separated, e.g. truncated,refusal`;
}

/** The rule a checked `--redo` value gives. */
export function parseRedo(value: string): RedoRule {
  const given = words(value);
  return {
    flags: given.includes("flagged")
      ? "any"
      : new Set(given.filter((word) => word !== "prompt-changed")),
    promptChanged: given.includes("prompt-changed"),
  };
}

/**
 * Whether a row is to be made again. A row from before prompts were told apart (no prompt_hash)
 * cannot show it was made by this prompt, so `prompt-changed` takes it too.
 */
export function wantsRedo(rule: RedoRule, row: StoredCaption, promptHash: string): boolean {
  if (
    rule.promptChanged &&
    (row.prompt_hash === null || !madeByCurrent(row.prompt_hash, promptHash))
  ) {
    return true;
  }
  const flags =
    row.truncated && !row.flags.includes("truncated") ? [...row.flags, "truncated"] : row.flags;
  if (rule.flags === "any") return flags.length > 0;
  const wanted = rule.flags;
  return flags.some((flag) => wanted.has(flag));
}

function words(value: string): string[] {
  return value
    .split(",")
    .map((word) => word.trim().toLowerCase())
    .filter((word) => word !== "");
}

/**
 * The rows of OUT a run makes again (`--redo`) or finishes (a prompt added to `--prompts`), seen
 * as the resume scan reads them: the last row of a path decides, since a row appended by an earlier
 * run replaces the one before it.
 */
export class RowsToRemake {
  readonly #wants: (row: StoredCaption) => boolean;
  /** Keys (OUT's `path` column) of the rows to make again, and their images' hashes. */
  readonly rows = new Map<string, string | null>();

  constructor(wants: (row: StoredCaption) => boolean) {
    this.#wants = wants;
  }

  see(row: StoredCaption): void {
    if (this.#wants(row)) this.rows.set(row.path, row.sha256);
    else this.rows.delete(row.path);
  }

  /** The images of the run whose rows are to be made again, by path. */
  tasksOf(tasks: readonly ImageTask[], keyOf: (imagePath: string) => string): Set<string> {
    return new Set(
      tasks.filter((task) => this.rows.has(keyOf(task.path))).map((task) => task.path),
    );
  }

  /**
   * What OUT holds, less the rows to make again: not done, and their bytes no copy's source (a
   * copy would take the very caption being replaced).
   */
  apply(finished: { done: Set<string>; hashes: Set<string> }): void {
    for (const [key, sha256] of this.rows) {
      finished.done.delete(key);
      if (sha256) finished.hashes.delete(sha256);
    }
  }
}

/** The rows `--redo` names. */
export function rowsToRedo(rule: RedoRule, promptHash: string): RowsToRemake {
  return new RowsToRemake((row) => wantsRedo(rule, row, promptHash));
}

/** The rows that lack an answer to one of several prompts: a prompt added since they were made. */
export function rowsUnanswered(names: readonly string[]): RowsToRemake {
  return new RowsToRemake((row) => names.some((name) => row.captions?.[name] === undefined));
}

/**
 * What a run makes again of OUT, as the resume scan reads it: the rows `--redo` names (sent
 * alone), and with several prompts those that lack an answer (finished). Both are sent though
 * held, and each new row replaces the old one in every output.
 */
export class Remakes {
  readonly #redo: RowsToRemake | null;
  readonly #unanswered: RowsToRemake | null;

  constructor(options: {
    redo?: string | undefined;
    overwrite: boolean;
    promptHash?: string | undefined;
    promptNames?: readonly string[] | undefined;
  }) {
    // Started afresh, everything is sent anyway.
    this.#redo =
      options.redo === undefined || options.overwrite
        ? null
        : rowsToRedo(parseRedo(options.redo), options.promptHash ?? "");
    this.#unanswered = options.promptNames ? rowsUnanswered(options.promptNames) : null;
  }

  /** A redo is about the prompt changing: a run with one says nothing of rows of another. */
  get redoing(): boolean {
    return this.#redo !== null;
  }

  see(row: StoredCaption): void {
    this.#redo?.see(row);
    this.#unanswered?.see(row);
  }

  apply(finished: { done: Set<string>; hashes: Set<string> }): void {
    this.#redo?.apply(finished);
    this.#unanswered?.apply(finished);
  }

  /** Keys of the rows made again or finished. */
  keys(): Set<string> {
    return new Set([...(this.#redo?.rows.keys() ?? []), ...(this.#unanswered?.rows.keys() ?? [])]);
  }

  /**
   * What the record holds, as the run takes it: less what is made again, which its other outputs
   * replace. A record that asks for nothing itself (no -o) holds every image but those.
   */
  finished(
    held: FinishedWork,
    tasks: readonly ImageTask[],
    keyOf: (imagePath: string) => string,
    recordOnly: boolean,
  ): FinishedWork {
    const redone = this.work(tasks, keyOf);
    if (!recordOnly) return { ...held, ...redone };
    const going = redone.replace ?? new Set();
    return {
      ...held,
      ...redone,
      done: new Set(tasks.filter((task) => !going.has(task.path)).map((task) => task.path)),
    };
  }

  /** What the run's images are to the other outputs: those redone, and those replaced. */
  work(
    tasks: readonly ImageTask[],
    keyOf: (imagePath: string) => string,
  ): Pick<FinishedWork, "redo" | "replace"> {
    const keys = this.keys();
    const replace = new Set(
      tasks.filter((task) => keys.has(keyOf(task.path))).map((task) => task.path),
    );
    return {
      ...(this.#redo ? { redo: this.#redo.tasksOf(tasks, keyOf) } : {}),
      ...(replace.size > 0 ? { replace } : {}),
    };
  }
}
