import path from "node:path";
import { describe, expect, it } from "vitest";
import { sidecarPath } from "../../src/util/sidecar-path.js";
import { snippet } from "../../src/util/snippet.js";

describe("sidecarPath", () => {
  it("swaps the image's extension for the sidecar's, in the same folder", () => {
    expect(sidecarPath(path.join("a", "b", "photo.jpg"), ".txt")).toBe(
      path.join("a", "b", "photo.txt"),
    );
    expect(sidecarPath("photo.JPEG", ".json")).toBe("photo.json");
    expect(sidecarPath("/abs/dir/x.png", ".txt")).toBe(path.join("/abs/dir", "x.txt"));
  });

  it("replaces only the last extension and appends to a name without one", () => {
    expect(sidecarPath("archive.tar.jpg", ".txt")).toBe("archive.tar.txt");
    expect(sidecarPath(path.join("d", "noext"), ".txt")).toBe(path.join("d", "noext.txt"));
  });
});

describe("snippet", () => {
  it("folds whitespace into single spaces and trims", () => {
    expect(snippet("  a\n\n b\t\tc  ")).toBe("a b c");
  });

  it("keeps a line of exactly max characters and cuts a longer one to max with an ellipsis", () => {
    expect(snippet("x".repeat(10), 10)).toBe("x".repeat(10));
    const cut = snippet("y".repeat(11), 10);
    expect(cut).toHaveLength(10);
    expect(cut).toBe(`${"y".repeat(9)}…`);
    expect(snippet("z".repeat(500))).toHaveLength(120);
  });

  it("names an empty or blank reply", () => {
    expect(snippet("")).toBe("(empty)");
    expect(snippet(" \n\t ")).toBe("(empty)");
    expect(snippet("   ", 10, "<none>")).toBe("<none>");
  });
});
