// Whether dist/ holds the code now in src/: the command runs it compiled only then (caption.js),
// and the bench refuses to record figures measured on a build older than the sources.
import { existsSync, readdirSync, statSync } from "node:fs";

function newestSource(dir) {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const full = new URL(entry.name + (entry.isDirectory() ? "/" : ""), dir);
    newest = Math.max(newest, entry.isDirectory() ? newestSource(full) : statSync(full).mtimeMs);
  }
  return newest;
}

/** `root`: the package's folder, as a file URL ending in a slash. */
export function compiledIsFresh(root) {
  // An installed copy is never edited, and npm unpacks it with src/ a few ms newer than dist/.
  if (!existsSync(new URL(".git", root))) return existsSync(new URL("dist/cli/bin.js", root));
  try {
    return (
      statSync(new URL("dist/cli/bin.js", root)).mtimeMs >= newestSource(new URL("src/", root))
    );
  } catch {
    return false;
  }
}
