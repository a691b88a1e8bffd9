import { describe, expect, it } from "vitest";
import type { StoredCaption } from "../../src/sinks/out-file/stored-caption.js";
import { parseRedo, redoProblem, rowsToRedo, wantsRedo } from "../../src/sinks/redo.js";

const row = (path: string, flags: string[], prompt_hash: string | null = "p1"): StoredCaption => ({
  path,
  sha256: `sha-${path}`,
  caption: "x",
  model: "m",
  width: 1,
  height: 1,
  truncated: flags.includes("truncated"),
  flags,
  prompt_hash,
});

describe("--redo", () => {
  it("takes the flags by name, any flag, or another prompt", () => {
    const flagged = parseRedo("flagged");
    expect(wantsRedo(flagged, row("a", ["refusal"]), "p1")).toBe(true);
    expect(wantsRedo(flagged, row("a", []), "p1")).toBe(false);
    const some = parseRedo("truncated, Refusal");
    expect(wantsRedo(some, row("a", ["refusal"]), "p1")).toBe(true);
    expect(wantsRedo(some, row("a", ["repetition"]), "p1")).toBe(false);
    const prompt = parseRedo("prompt-changed");
    expect(wantsRedo(prompt, row("a", ["refusal"]), "p1")).toBe(false);
    expect(wantsRedo(prompt, row("a", []), "p2")).toBe(true);
    // A row from before prompts were told apart cannot show it was made by this one.
    expect(wantsRedo(prompt, row("a", [], null), "p1")).toBe(true);
  });

  it("counts an older row's truncated column as the flag", () => {
    const old = { ...row("a", []), truncated: true };
    expect(wantsRedo(parseRedo("truncated"), old, "p1")).toBe(true);
  });

  it("names what it does not know", () => {
    expect(redoProblem("flagged,prompt-changed")).toBeNull();
    expect(redoProblem("flaged")).toContain('"flaged" is not one of flagged, prompt-changed');
    expect(redoProblem(" , ")).toContain("expected one of");
  });

  it("goes by an image's last row, and takes the rows made again out of what is done", () => {
    const tally = rowsToRedo(parseRedo("flagged"), "p1");
    tally.see(row("a", ["truncated"]));
    tally.see(row("b", ["truncated"]));
    // b was made again by an earlier redo that did not get to rewrite OUT: its last row stands.
    tally.see(row("b", []));
    const finished = { done: new Set(["a", "b"]), hashes: new Set(["sha-a", "sha-b"]) };
    tally.apply(finished);
    expect(finished).toEqual({ done: new Set(["b"]), hashes: new Set(["sha-b"]) });
  });
});
