import { mkdir, symlink, writeFile } from "node:fs/promises";
import path from "node:path";
import { beforeEach, describe, expect, it } from "vitest";
import { discoverImages, isImagePath } from "../../src/discover/discover.js";
import { UsageError } from "../../src/errors.js";
import { useWorkspace } from "../helpers/workspace.js";

const ws = useWorkspace();
beforeEach(async () => {
  for (const file of [
    "a/1.jpg",
    "a/2.JPEG",
    "a/notes.txt",
    "a/.hidden.jpg",
    "a/._resource-fork.jpg",
    "a/.cache/x.png",
    "a/deep/er/3.webp",
    "a/deep/4.HeIc",
    "b/5.tif",
  ]) {
    await mkdir(path.dirname(path.join(ws.dir, file)), { recursive: true });
    await writeFile(path.join(ws.dir, file), "");
  }
});

const paths = async (inputs: string[]) =>
  (await discoverImages(inputs, ws.dir)).tasks.map((t) => t.path);

describe("discoverImages", () => {
  it("recurses folders, matches extensions case-insensitively and skips hidden files", async () => {
    expect(await paths(["a"])).toEqual([
      "a/1.jpg",
      "a/2.JPEG",
      "a/deep/4.HeIc",
      "a/deep/er/3.webp",
    ]);
  });

  it("takes explicit files whatever their extension, and globs relative to the working directory", async () => {
    expect(await paths(["a/notes.txt", "b/*.TIF"])).toEqual(["a/notes.txt", "b/5.tif"]);
  });

  it("lists a file matched by several inputs once", async () => {
    expect(await paths(["a", "./a/1.jpg", "a/**/*.jpg", path.join(ws.dir, "a", "1.jpg")])).toEqual([
      "a/1.jpg",
      "a/2.JPEG",
      "a/deep/4.HeIc",
      "a/deep/er/3.webp",
    ]);
  });

  it("writes absolute paths for absolute inputs", async () => {
    expect(await paths([path.join(ws.dir, "b")])).toEqual([path.join(ws.dir, "b", "5.tif")]);
  });

  it("expands an absolute pattern (a cron job's), whose first segment is empty", async () => {
    expect(await paths([path.join(ws.dir, "b", "*.TIF")])).toEqual([
      path.join(ws.dir, "b", "5.tif"),
    ]);
  });

  it("does not follow a symlinked folder out of the input, and says which it left", async () => {
    await symlink(path.join(ws.dir, "b"), path.join(ws.dir, "a", "linked"));
    const found = await discoverImages(["a"], ws.dir);
    expect(found.tasks.map((t) => t.path)).not.toContain("a/linked/5.tif");
    expect(found.linksNotFollowed).toEqual({ outside: ["a/linked"], loops: [] });
  });

  it("follows it with followSymlinks, but never a loop back up", async () => {
    await symlink(path.join(ws.dir, "b"), path.join(ws.dir, "a", "linked"));
    await symlink("..", path.join(ws.dir, "a", "deep", "up"));
    await symlink(ws.dir, path.join(ws.dir, "b", "top"));
    const found = await discoverImages(["a"], ws.dir, { followSymlinks: true });
    expect(found.tasks.map((t) => t.path)).toEqual([
      "a/1.jpg",
      "a/2.JPEG",
      "a/deep/4.HeIc",
      "a/deep/er/3.webp",
      "a/linked/5.tif",
    ]);
    // deep/up leads back into the input: walked already, so not said; b/top leads above.
    expect(found.linksNotFollowed).toEqual({ outside: [], loops: ["a/linked/top"] });
  });

  it("walks a symlink to a folder inside the same input once, where the folder is", async () => {
    await symlink(path.join(ws.dir, "a", "deep"), path.join(ws.dir, "a", "alias"));
    const found = await discoverImages(["a"], ws.dir);
    expect(found.tasks.map((t) => t.path)).toEqual([
      "a/1.jpg",
      "a/2.JPEG",
      "a/deep/4.HeIc",
      "a/deep/er/3.webp",
    ]);
    expect(found.linksNotFollowed).toEqual({ outside: [], loops: [] });
  });

  it("gives each image the real path of the folder input it was found in, and none to files and globs", async () => {
    await symlink(path.join(ws.dir, "b"), path.join(ws.dir, "a", "linked"));
    const tasks = (await discoverImages(["a", "b/*.tif"], ws.dir, { followSymlinks: true })).tasks;
    const roots = Object.fromEntries(tasks.map((t) => [t.path, t.root]));
    expect(roots["a/1.jpg"]).toBe(path.join(ws.dir, "a"));
    // Found through the link: its root is the linked folder, where its sidecar lives.
    expect(roots["a/linked/5.tif"]).toBe(path.join(ws.dir, "b"));
    const named = (await discoverImages(["b/5.tif", "a/*.jpg"], ws.dir)).tasks;
    expect(named.map((t) => t.root)).toEqual([null, null]);
  });

  it("reports every missing input at once, and notes patterns that matched nothing", async () => {
    await expect(discoverImages(["nope", "a", "gone.jpg"], ws.dir)).rejects.toThrow(UsageError);
    const error = await discoverImages(["nope", "gone.jpg"], ws.dir).catch((e: UsageError) => e);
    expect((error as UsageError).problems).toHaveLength(2);
    const found = await discoverImages(["a", "c/*.png"], ws.dir);
    expect(found.emptyInputs).toEqual(["c/*.png"]);
  });

  it("knows image extensions", () => {
    expect(["x.JPG", "y.tiff", "z.avif", "w.heif"].every(isImagePath)).toBe(true);
    expect(["x.svg", "y.txt", "jpg"].some(isImagePath)).toBe(false);
  });
});
