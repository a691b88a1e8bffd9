import { mkdir, symlink, writeFile } from "node:fs/promises";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { UsageError } from "../../src/errors.js";
import { discoverImages, isImagePath } from "../../src/stages/discover.js";
import { makeWorkspace } from "../helpers/workspace.js";

let dir: string;
let cleanup: () => Promise<void>;
beforeEach(async () => {
  ({ dir, cleanup } = await makeWorkspace());
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
    await mkdir(path.dirname(path.join(dir, file)), { recursive: true });
    await writeFile(path.join(dir, file), "");
  }
});
afterEach(() => cleanup());

const paths = async (inputs: string[]) =>
  (await discoverImages(inputs, dir)).tasks.map((t) => t.path);

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
    expect(await paths(["a", "./a/1.jpg", "a/**/*.jpg", path.join(dir, "a", "1.jpg")])).toEqual([
      "a/1.jpg",
      "a/2.JPEG",
      "a/deep/4.HeIc",
      "a/deep/er/3.webp",
    ]);
  });

  it("writes absolute paths for absolute inputs", async () => {
    expect(await paths([path.join(dir, "b")])).toEqual([path.join(dir, "b", "5.tif")]);
  });

  it("follows a symlinked folder", async () => {
    await symlink(path.join(dir, "b"), path.join(dir, "a", "linked"));
    expect(await paths(["a"])).toContain("a/linked/5.tif");
  });

  it("reports every missing input at once, and notes patterns that matched nothing", async () => {
    await expect(discoverImages(["nope", "a", "gone.jpg"], dir)).rejects.toThrow(UsageError);
    const error = await discoverImages(["nope", "gone.jpg"], dir).catch((e: UsageError) => e);
    expect((error as UsageError).problems).toHaveLength(2);
    const found = await discoverImages(["a", "c/*.png"], dir);
    expect(found.emptyInputs).toEqual(["c/*.png"]);
  });

  it("knows image extensions", () => {
    expect(["x.JPG", "y.tiff", "z.avif", "w.heif"].every(isImagePath)).toBe(true);
    expect(["x.svg", "y.txt", "jpg"].some(isImagePath)).toBe(false);
  });
});
