import { execFile } from "node:child_process";
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { indexTar, type TarEntry } from "../../src/archive/tar-index.js";
import { groupSamples, imageMember, splitMemberName } from "../../src/archive/webdataset.js";
import { writeShard } from "../helpers/shards.js";

const run = promisify(execFile);
let dir = "";
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "tar-index-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** What each listed member holds, read from the archive at the offset the index gives. */
async function contents(file: string): Promise<Record<string, string>> {
  const bytes = await readFile(file);
  const entries = await indexTar(file);
  return Object.fromEntries(
    entries
      .filter((e) => e.type === "file")
      .map((e) => [e.name, bytes.subarray(e.offset, e.offset + e.size).toString()]),
  );
}

describe("indexTar", () => {
  const long = `${"deep/".repeat(30)}000001.jpg`;

  it.each(["gnu", "ustar", "pax"])(
    "lists GNU tar's %s archives with long names, links and folders as what they are",
    async (format) => {
      const src = path.join(dir, `src-${format}`);
      await mkdir(path.join(src, path.dirname(long)), { recursive: true });
      await writeFile(path.join(src, long), "long one");
      await writeFile(path.join(src, "a.txt"), "short");
      await symlink("/etc/passwd", path.join(src, "link.txt"));
      const file = path.join(dir, `${format}.tar`);
      // ustar keeps up to 255 bytes of name in prefix and name; this one is 160.
      await run("tar", [`--format=${format}`, "-cf", file, "-C", src, "a.txt", "link.txt", long]);
      expect(await contents(file)).toEqual({ "a.txt": "short", [long]: "long one" });
      const others = (await indexTar(file)).filter((e) => e.type !== "file");
      expect(others.map((e) => [e.name, e.type, e.linkname, e.size])).toEqual([
        ["link.txt", "symlink", "/etc/passwd", 0],
      ]);
    },
  );

  it("reads tar-stream's pax names and empty members", async () => {
    const file = path.join(dir, "pack.tar");
    await writeShard(file, [
      { name: `${"x".repeat(120)}.jpg`, data: "pax" },
      { name: "empty.txt", data: "" },
    ]);
    expect(await contents(file)).toEqual({ [`${"x".repeat(120)}.jpg`]: "pax", "empty.txt": "" });
  });

  it("refuses what is no tar, a broken header and a cut archive, saying where", async () => {
    const text = path.join(dir, "text.tar");
    await writeFile(text, "hello ".repeat(200));
    await expect(indexTar(text)).rejects.toThrow(/not a tar archive/);
    const good = path.join(dir, "good.tar");
    await writeShard(good, [
      { name: "a.jpg", data: "1".repeat(600) },
      { name: "b.jpg", data: "2" },
    ]);
    const bytes = await readFile(good);
    const broken = Buffer.from(bytes);
    broken[1536] = 0x41; // inside the second header, after 512 + 1024 bytes
    await writeFile(path.join(dir, "broken.tar"), broken);
    await expect(indexTar(path.join(dir, "broken.tar"))).rejects.toThrow(
      /broken tar header at byte 1536/,
    );
    await writeFile(path.join(dir, "cut.tar"), bytes.subarray(0, 1000));
    await expect(indexTar(path.join(dir, "cut.tar"))).rejects.toThrow(/cut short/);
    await expect(indexTar(path.join(dir, "missing.tar"))).rejects.toThrow(/cannot open/);
  });
});

describe("WebDataset samples", () => {
  it("splits a member's name at the first dot of its last part", () => {
    expect(splitMemberName("a/b/000001.seg.png")).toEqual({ key: "a/b/000001", ext: "seg.png" });
    expect(splitMemberName("x.y/000002.jpg")).toEqual({ key: "x.y/000002", ext: "jpg" });
    expect(splitMemberName("README")).toBeNull();
    expect(splitMemberName(".hidden")).toBeNull();
    expect(splitMemberName("trailing.")).toBeNull();
  });

  it("groups members by key in the shard's order, and finds each sample's image", () => {
    const entry = (name: string): TarEntry => ({
      name,
      type: name === "4.jpg" ? "symlink" : "file",
      offset: 0,
      size: 1,
      mode: 0o644,
      mtime: 0,
      linkname: name === "4.jpg" ? "/etc/passwd" : "",
      uid: 0,
      gid: 0,
      uname: "",
      gname: "",
      devmajor: 0,
      devminor: 0,
    });
    const { samples, loose } = groupSamples(
      ["1.txt", "1.JPG", "2.json", "README", "1.json", "3.webp", "4.jpg"].map(entry),
    );
    expect(samples.map((s) => [s.key, s.members.map((m) => m.ext)])).toEqual([
      ["1", ["txt", "JPG", "json"]],
      ["2", ["json"]],
      ["3", ["webp"]],
      ["4", ["jpg"]],
    ]);
    expect(loose.map((e) => e.name)).toEqual(["README"]);
    // A link named like an image is never read: it could point anywhere.
    expect(samples.map((s) => imageMember(s)?.name ?? null)).toEqual([
      "1.JPG",
      null,
      "3.webp",
      null,
    ]);
  });
});
