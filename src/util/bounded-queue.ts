/**
 * A first-in first-out hand-over between producers and consumers that holds at most `capacity`
 * items, counting those a producer has reserved room for and is still making. Producers reserve
 * before they prepare an image, so preparing runs ahead of sending by a bounded amount instead of
 * filling memory.
 */
export class BoundedQueue<T> {
  readonly #items: T[] = [];
  readonly #capacity: number;
  #reserved = 0;
  #closed = false;
  #takers: ((item: T | null) => void)[] = [];
  #givers: (() => void)[] = [];

  constructor(capacity: number) {
    this.#capacity = Math.max(1, capacity);
  }

  /** Waits for room for one item; false if the queue was closed instead. */
  async reserve(): Promise<boolean> {
    while (this.#items.length + this.#reserved >= this.#capacity && !this.#closed) {
      await new Promise<void>((resolve) => this.#givers.push(resolve));
    }
    if (this.#closed) return false;
    this.#reserved += 1;
    return true;
  }

  /** Hands over an item, using a reservation. */
  push(item: T): void {
    this.#reserved -= 1;
    const taker = this.#takers.shift();
    if (taker) {
      taker(item);
      this.#givers.shift()?.();
    } else {
      this.#items.push(item);
    }
  }

  /** Gives a reservation back unused. */
  cancel(): void {
    this.#reserved -= 1;
    this.#givers.shift()?.();
  }

  /** The next item, waiting while the queue is empty; null once it is closed and drained. */
  shift(): Promise<T | null> {
    const item = this.#items.shift();
    if (item !== undefined) {
      this.#givers.shift()?.();
      return Promise.resolve(item);
    }
    if (this.#closed) return Promise.resolve(null);
    return new Promise((resolve) => this.#takers.push(resolve));
  }

  /** No more items will come: waiting takers get null once the rest is drained. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const taker of this.#takers.splice(0)) taker(null);
    for (const giver of this.#givers.splice(0)) giver();
  }
}
