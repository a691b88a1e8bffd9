import type { Stats } from "node:fs";
import { stat } from "node:fs/promises";
import path from "node:path";
import fg, { type Entry } from "fast-glob";
import { UsageError } from "../errors.js";
import type { ImageTask } from "../types.js";

/** File extensions treated as images when a folder or pattern is expanded (case-insensitive). */
export const IMAGE_EXTENSIONS = [
  "jpg",
  "jpeg",
  "png",
  "webp",
  "gif",
  "tif",
  "tiff",
  "avif",
  "heic",
  "heif",
] as const;

const EXTENSION_SET = new Set<string>(IMAGE_EXTENSIONS);

export function isImagePath(file: string): boolean {
  return EXTENSION_SET.has(path.extname(file).slice(1).toLowerCase());
}

export interface Discovery {
  /** Every image found, once each, sorted by path. */
  tasks: ImageTask[];
  /** Glob patterns that matched no image: worth a warning, not a failure (a nightly folder can be empty). */
  emptyPatterns: string[];
}

/**
 * Expands the inputs (folders recursed, files taken as given, anything else a glob pattern) into
 * image tasks. Hidden files and folders are skipped: they hold things like macOS `._x.jpg`
 * resource forks, which are not images despite the name.
 */
export async function discoverImages(inputs: readonly string[], cwd: string): Promise<Discovery> {
  // Keyed by device and inode: a file reached through several inputs, a hard link or a symlink
  // loop (which the walk follows until the OS says ELOOP) is still one image.
  const found = new Map<string, ImageTask>();
  const missing: string[] = [];
  const emptyPatterns: string[] = [];
  const add = (absPath: string, stats: Stats, input: string) => {
    const key = `${stats.dev}:${stats.ino}`;
    if (!found.has(key)) found.set(key, { path: displayPath(absPath, input, cwd), absPath });
  };
  const addEntries = (entries: Entry[], base: string, input: string): number => {
    let added = 0;
    for (const entry of entries) {
      // Broken symlinks stay in, so the errors file can say what they point to instead of the
      // image silently vanishing; folders named like images (x.jpg/) are walked, not captioned.
      if (!entry.stats || entry.stats.isDirectory() || !isImagePath(entry.path)) continue;
      add(path.resolve(base, entry.path), entry.stats, input);
      added += 1;
    }
    return added;
  };

  for (const input of inputs) {
    const absInput = path.resolve(cwd, input);
    const stats = await statOrNull(absInput);
    if (stats?.isDirectory()) {
      addEntries(await fg("**/*", { ...WALK, cwd: absInput }), absInput, input);
    } else if (stats) {
      // A file named explicitly is taken whatever its extension: the user asked for it.
      add(absInput, stats, input);
    } else if (fg.isDynamicPattern(input)) {
      const pattern = await escapeRealFolders(toPosix(input), cwd);
      const entries = await fg(pattern, { ...WALK, cwd, caseSensitiveMatch: false });
      if (addEntries(entries, cwd, input) === 0) emptyPatterns.push(input);
    } else {
      missing.push(input);
    }
  }
  if (missing.length > 0) {
    throw new UsageError(
      missing.map((input) => `input not found: ${input} (not a file, a folder or a glob pattern)`),
    );
  }
  const tasks = [...found.values()].sort((a, b) =>
    a.path < b.path ? -1 : a.path > b.path ? 1 : 0,
  );
  return { tasks, emptyPatterns };
}

const WALK = {
  onlyFiles: false,
  dot: false,
  stats: true,
  followSymbolicLinks: true,
  // Unreadable folders are skipped rather than ending the whole run.
  suppressErrors: true,
} as const;

/**
 * Escapes the leading segments of a pattern that name folders that really exist, so that
 * `Photos (2023)/*.jpg` matches inside "Photos (2023)" instead of reading the brackets as a group.
 */
async function escapeRealFolders(pattern: string, cwd: string): Promise<string> {
  const segments = pattern.split("/");
  let folder = pattern.startsWith("/") ? "/" : cwd;
  for (let i = 0; i < segments.length - 1; i += 1) {
    const segment = segments[i] ?? "";
    folder = path.join(folder, segment);
    if (!fg.isDynamicPattern(segment)) continue;
    if (!(await statOrNull(folder))?.isDirectory()) break;
    segments[i] = fg.escapePath(segment);
  }
  return segments.join("/");
}

async function statOrNull(absPath: string): Promise<Stats | null> {
  try {
    return await stat(absPath);
  } catch {
    return null;
  }
}

/** Relative inputs give paths relative to the working directory, absolute inputs absolute paths. */
function displayPath(absPath: string, input: string, cwd: string): string {
  return toPosix(path.isAbsolute(input) ? absPath : path.relative(cwd, absPath));
}

function toPosix(file: string): string {
  return path.sep === "/" ? file : file.split(path.sep).join("/");
}
