import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { BoundedQueue } from "../../src/util/bounded-queue.js";

beforeEach(() => {
  vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout"] });
});
afterEach(() => {
  vi.useRealTimers();
});

describe("BoundedQueue", () => {
  it("holds at most `capacity` items, counting reservations, and drains in order after close", async () => {
    const queue = new BoundedQueue<number>(2);
    expect(await queue.reserve()).toBe(true);
    expect(await queue.reserve()).toBe(true);
    let third = false;
    const thirdReserved = queue.reserve().then((ok) => {
      third = ok;
    });
    await vi.advanceTimersByTimeAsync(0);
    expect(third).toBe(false);
    queue.push(1);
    queue.push(2);
    expect(await queue.shift()).toBe(1);
    await thirdReserved;
    expect(third).toBe(true);
    queue.push(3);
    queue.close();
    expect(await queue.shift()).toBe(2);
    expect(await queue.shift()).toBe(3);
    expect(await queue.shift()).toBeNull();
    expect(await queue.reserve()).toBe(false);
  });

  it("hands an item straight to a waiting taker", async () => {
    const queue = new BoundedQueue<string>(1);
    const taken = queue.shift();
    await queue.reserve();
    queue.push("a");
    expect(await taken).toBe("a");
    expect(await queue.reserve()).toBe(true);
  });
});
