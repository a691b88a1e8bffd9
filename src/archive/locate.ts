import type { ImageTask } from "../types.js";
import { containerKind, splitMemberInput } from "./containers.js";
import { type Expansion, expandContainer } from "./expand.js";

/** Containers listed lately: rows of one shard come together, so a few serve a whole OUT. */
const RECENT = 4;

/**
 * Finds the image an absolute `<container>#<name>` names, for a reader of OUT (the review page):
 * each container listed once while its rows come, never more than a few at a time.
 */
export class MemberLocator {
  readonly #recent = new Map<string, Promise<Map<string, Expansion["images"][number]> | null>>();

  /** The image's task, or null when the path names none (not a container, gone, or unreadable). */
  async locate(absInput: string, shown: string): Promise<ImageTask | null> {
    const split = splitMemberInput(absInput);
    const kind = split && containerKind(split.container);
    if (!split || !kind) return null;
    let listed = this.#recent.get(split.container);
    if (!listed) {
      listed = expandContainer(split.container, kind).then(
        (expansion) => new Map(expansion.images.map((image) => [image.name, image])),
        () => null,
      );
      this.#recent.set(split.container, listed);
      for (const old of this.#recent.keys()) {
        if (this.#recent.size <= RECENT) break;
        this.#recent.delete(old);
      }
    }
    const image = (await listed)?.get(split.member);
    return image ? { path: shown, absPath: split.container, member: image.member } : null;
  }
}
