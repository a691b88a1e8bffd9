import type { NameSetting } from "../errors.js";
import { madeByCurrent } from "../prompts/prompt-set.js";

/**
 * Counts OUT's rows by the prompt that made them, so a rerun with another prompt (or schema) says
 * so once: mixing two prompts in one dataset is usually a mistake. Rows from before prompts were
 * told apart say nothing either way.
 */
export class PromptTally {
  readonly #current: string | undefined;
  #other = 0;
  #same = 0;

  constructor(current: string | undefined) {
    this.#current = current;
  }

  count(hash: string | null): void {
    if (this.#current === undefined || hash === null || hash === "") return;
    if (madeByCurrent(hash, this.#current)) this.#same += 1;
    else this.#other += 1;
  }

  warning(output: string, name: NameSetting): string | null {
    if (this.#other === 0) return null;
    const rows = `${this.#other} ${this.#other === 1 ? "row" : "rows"}`;
    return `${rows} of ${output} were made with another prompt or schema than this run's${this.#same > 0 ? ` (${this.#same} with this one)` : ""}; new captions will differ in kind. Write them to another output to keep the two apart, set ${name("redo")} to prompt-changed to make those again, or ${name("overwrite")} to redo them all`;
  }
}
