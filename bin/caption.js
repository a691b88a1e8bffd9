#!/usr/bin/env node
// Runs the compiled CLI from dist/ when it is up to date with src/ (npm ci builds it through the
// `prepare` script), and the TypeScript sources through tsx's loader otherwise, so `npx caption`
// always runs the code in src/ with no build step to remember. The compiled path starts faster
// and uses about 50 MB less memory: no loader thread, no transpiling.
// bin/caption.cjs, the command's entry, sizes libuv's thread pool first and then loads this.
import { existsSync, readdirSync, statSync } from "node:fs";

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
