import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { writeFile } from "node:fs/promises";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { FileReader, readAndHash } from "../../src/prepare/hash.js";
import { useWorkspace } from "../helpers/workspace.js";

const ws = useWorkspace();
const sha256 = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");
const bytesOf = (length: number, seed: number) =>
  Buffer.from(Array.from({ length }, (_, i) => (i * 31 + seed) % 251));

describe("FileReader", () => {
  it("reads and hashes file after file into one buffer, each whole and right", async () => {
    const reader = new FileReader();
    // Larger, smaller, then larger again than any before: the buffer grows and is reused.
    for (const [index, length] of [3_000_000, 10, 0, 1_500_000, 5_000_001].entries()) {
      const file = path.join(ws.dir, `f${index}.jpg`);
      const written = bytesOf(length, index);
      await writeFile(file, written);
      const read = await reader.readAndHash(file);
      expect(read?.bytes.equals(written)).toBe(true);
      expect(read?.sha256).toBe(sha256(written));
    }
  });

  it("leaves alone what it should not read whole: a missing file, a folder, a pipe", async () => {
    const reader = new FileReader();
    expect(await reader.readAndHash(path.join(ws.dir, "missing.jpg"))).toBeNull();
    expect(await reader.readAndHash(ws.dir)).toBeNull();
    const pipe = path.join(ws.dir, "pipe.jpg");
    execFileSync("mkfifo", [pipe]);
    // Opening a pipe would wait for a writer for ever.
    expect(await reader.readAndHash(pipe)).toBeNull();
  });

  it("keeps no buffer for a file over its limit: those bytes stay as read", async () => {
    const reader = new FileReader(100);
    const big = path.join(ws.dir, "big.jpg");
    const small = path.join(ws.dir, "small.jpg");
    await writeFile(big, bytesOf(1000, 3));
    await writeFile(small, bytesOf(50, 4));
    const first = await reader.readAndHash(big);
    const second = await reader.readAndHash(small);
    expect(first?.bytes.equals(bytesOf(1000, 3))).toBe(true);
    expect(second?.bytes.equals(bytesOf(50, 4))).toBe(true);
  });

  it("readAndHash hands out bytes of their own, which a later read does not change", async () => {
    const first = path.join(ws.dir, "a.jpg");
    const second = path.join(ws.dir, "b.jpg");
    await writeFile(first, bytesOf(1000, 1));
    await writeFile(second, bytesOf(1000, 2));
    const a = await readAndHash(first);
    await readAndHash(second);
    expect(a?.bytes.equals(bytesOf(1000, 1))).toBe(true);
  });
});
