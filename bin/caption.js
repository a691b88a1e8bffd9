#!/usr/bin/env node
// Runs the compiled CLI from dist/ when it is up to date with src/ (npm ci builds it through the
// `prepare` script), and the TypeScript sources through tsx's loader otherwise, so `npx caption`
// always runs the code in src/ with no build step to remember. The compiled path starts faster
// and uses about 50 MB less memory: no loader thread, no transpiling.
import { existsSync, readdirSync, statSync } from "node:fs";
import { availableParallelism } from "node:os";

// libuv's pool runs sharp's decoding and the file reads; it is sized once, at first use, so it
// must be set before anything touches it. Cores for decoding plus a few for I/O.
process.env.UV_THREADPOOL_SIZE ??= String(Math.max(4, availableParallelism() + 2));

const root = new URL("../", import.meta.url);

function newestSource(dir) {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const full = new URL(entry.name + (entry.isDirectory() ? "/" : ""), dir);
    newest = Math.max(newest, entry.isDirectory() ? newestSource(full) : statSync(full).mtimeMs);
  }
  return newest;
}

function compiledIsFresh() {
  // An installed copy is never edited, and npm unpacks it with src/ a few ms newer than dist/.
  if (!existsSync(new URL(".git", root))) return existsSync(new URL("dist/bin.js", root));
  try {
    return statSync(new URL("dist/bin.js", root)).mtimeMs >= newestSource(new URL("src/", root));
  } catch {
    return false;
  }
}

if (compiledIsFresh()) {
  await import(new URL("dist/bin.js", root).href);
} else {
  const { register } = await import("tsx/esm/api");
  register();
  await import(new URL("src/bin.ts", root).href);
}
