import { describe, expect, it } from "vitest";
import { latestRows } from "../../../src/sinks/out-file/latest-rows.js";

async function* each<T>(items: readonly T[]) {
  for (const item of items) yield item;
}

describe("latestRows", () => {
  it("keeps every row of a file with one row per key", async () => {
    const latest = await latestRows(
      () => each(["a", "b", "c"]),
      (key) => key,
    );
    expect(["a", "b", "c"].map((key, index) => latest(key, index))).toEqual([true, true, true]);
  });

  it("keeps only the last row of a key written twice, and rows without a key", async () => {
    const latest = await latestRows(
      () => each(["a", "b", null, "a", "c", "b"]),
      (key) => key,
    );
    const shown = ["a", "b", null, "a", "c", "b"].map((key, index) => latest(key, index));
    expect(shown).toEqual([false, false, true, true, true, true]);
  });

  it("is exact for many keys, whatever its bits mistake", async () => {
    const keys = Array.from({ length: 50_000 }, (_, i) => `photos/img-${i}.jpg`);
    const withRepeat = [...keys, "photos/img-7.jpg"];
    const latest = await latestRows(
      () => each(withRepeat),
      (key) => key,
    );
    const shown = withRepeat.filter((key, index) => latest(key, index));
    expect(shown).toHaveLength(50_000);
    expect(shown.at(-1)).toBe("photos/img-7.jpg");
    expect(shown).not.toContain(undefined);
  });
});
