import path from "node:path";
import { describe, expect, it } from "vitest";
import { planShards, type Shard, shardFiles, shardId } from "../../src/scale/shards.js";

const images = (n: number, prefix = "/data/img") =>
  Array.from({ length: n }, (_, i) => `${prefix}-${String(i).padStart(3, "0")}.jpg`);

describe("shardId", () => {
  it("is a prefixed 16-digit hex digest, never all digits and without ':'", () => {
    const id = shardId(["/a.jpg", "/b.jpg"]);
    expect(id).toMatch(/^shard-[0-9a-f]{16}$/);
    expect(id).not.toContain(":");
  });

  it("is the same for the same list and differs for another", () => {
    expect(shardId(["/a.jpg", "/b.jpg"])).toBe(shardId(["/a.jpg", "/b.jpg"]));
    expect(shardId(["/a.jpg", "/b.jpg"])).not.toBe(shardId(["/a.jpg", "/c.jpg"]));
    expect(shardId(["/a.jpg", "/b.jpg"])).not.toBe(shardId(["/b.jpg", "/a.jpg"]));
    expect(shardId(["ab"])).not.toBe(shardId(["a", "b"]));
  });
});

describe("planShards", () => {
  it("puts every image in exactly one shard, in sorted order, shardSize at most", () => {
    const files = images(10);
    const shards = planShards([...files].reverse(), [], 4);
    expect(shards.map((s) => s.files.length)).toEqual([4, 4, 2]);
    expect(shards.flatMap((s) => s.files)).toEqual([...files].sort());
    expect(shards.map((s) => s.seq)).toEqual([1, 2, 3]);
    for (const shard of shards) expect(shard.id).toBe(shardId(shard.files));
    expect(new Set(shards.map((s) => s.id)).size).toBe(3);
  });

  it("keeps a tar shard's samples in one job where they fit, and gives a large one jobs of its own", () => {
    const samples = (shard: string, count: number) =>
      Array.from({ length: count }, (_, i) => `/d/${shard}.tar#${String(i).padStart(3, "0")}`);
    const shards = planShards(
      [...samples("a", 3), ...samples("b", 3), ...samples("c", 9), "/d/z.jpg"],
      [],
      4,
    );
    expect(shards.map((s) => s.files.map((file) => file.slice(3, 4)).join(""))).toEqual([
      "aaa",
      "bbb",
      "cccc",
      "cccc",
      "cz",
    ]);
  });

  it("takes an image listed twice once", () => {
    const shards = planShards(["/b.jpg", "/a.jpg", "/b.jpg"], [], 10);
    expect(shards).toHaveLength(1);
    expect(shards[0]?.files).toEqual(["/a.jpg", "/b.jpg"]);
  });

  it("makes the same ids for the same images in any order, other ids for other images", () => {
    const ids = (list: string[]) => planShards(list, [], 3).map((s) => s.id);
    const files = images(7);
    expect(ids(files)).toEqual(ids([...files].reverse()));
    const other = ids(images(7, "/other/img"));
    expect(other.filter((id) => ids(files).includes(id))).toEqual([]);
    const changed = [...files.slice(1), "/data/img-999.jpg"];
    expect(ids(changed)[0]).not.toBe(ids(files)[0]);
  });

  it("skips images already in a shard and numbers new shards after the last", () => {
    const existing: Shard[] = [
      { id: "shard-0000000000000001", seq: 5, files: ["/data/img-000.jpg", "/data/img-001.jpg"] },
      { id: "shard-0000000000000002", seq: 2, files: ["/data/img-002.jpg"] },
    ];
    const shards = planShards(images(6), existing, 2);
    expect(shards.flatMap((s) => s.files)).toEqual(images(6).slice(3));
    expect(shards.map((s) => s.seq)).toEqual([6, 7]);
    expect(planShards(images(3), existing, 2)).toEqual([]);
  });
});

describe("shardFiles", () => {
  it("names five distinct files under DIR/shards, all starting with the id", () => {
    const files = shardFiles("/q", "shard-abc");
    const all = Object.values(files);
    expect(new Set(all).size).toBe(5);
    for (const file of all)
      expect(file.startsWith(path.join("/q", "shards", "shard-abc."))).toBe(true);
    expect(files.manifest).toBe(path.join("/q", "shards", "shard-abc.json"));
  });
});
