import { realpath } from "node:fs/promises";
import path from "node:path";
import fg from "fast-glob";
import { UsageError } from "../errors.js";
import { statOrNull, toPosix } from "../folders.js";
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
  /**
   * Inputs that hold no image at all: a glob that matched nothing, a folder without images. Most
   * likely a typo, so the run warns (and fails under --strict); a folder whose images are all
   * captioned already is not empty.
   */
  emptyInputs: string[];
}

/**
 * Expands the inputs (folders recursed, files taken as given, anything else a glob pattern) into
 * image tasks. Hidden files and folders are skipped: they hold things like macOS `._x.jpg`
 * resource forks, which are not images despite the name.
 */
export async function discoverImages(inputs: readonly string[], cwd: string): Promise<Discovery> {
  // Keyed by the file's real location, so a file reached through several inputs, a symlink or a
  // symlink loop is still one image.
  const found = new Map<string, ImageTask>();
  const missing: string[] = [];
  const emptyInputs: string[] = [];
  const walkedRoots: string[] = [];
  let added = 0;
  const add = (key: string, absPath: string, input: string) => {
    added += 1;
    if (!found.has(key)) found.set(key, { path: displayPath(absPath, input, cwd), absPath });
  };

  /**
   * Lists a folder from directory entries alone (no stat per file, which is what makes a 100k-file
   * folder fast). Symlinks are the exception, checked one by one: a link to a folder is walked
   * unless it leads back into one already walked (a loop, or the same photos twice); a broken
   * link is kept, so the errors file says what it points to instead of the image vanishing.
   */
  const walk = async (absDir: string, input: string): Promise<boolean> => {
    const real = await realpath(absDir);
    if (walkedRoots.some((root) => real === root || real.startsWith(`${root}${path.sep}`))) {
      return false;
    }
    walkedRoots.push(real);
    const entries = await fg("**/*", { ...FOLDER_WALK, cwd: absDir });
    for (const entry of entries) {
      const absPath = path.join(absDir, entry.path);
      if (entry.dirent.isSymbolicLink()) {
        const target = await statOrNull(absPath);
        if (target?.isDirectory()) await walk(absPath, input);
        else if (isImagePath(entry.path))
          add(await realpath(absPath).catch(() => absPath), absPath, input);
      } else if (!entry.dirent.isDirectory() && isImagePath(entry.path)) {
        // Folders named like images (x.jpg/) are walked by fast-glob, not captioned.
        add(absPath, absPath, input);
      }
    }
    return true;
  };

  for (const input of inputs) {
    const absInput = path.resolve(cwd, input);
    const stats = await statOrNull(absInput);
    if (stats?.isDirectory()) {
      const before = added;
      // A folder already walked through another input is not empty, just counted once.
      if ((await walk(absInput, input)) && added === before) emptyInputs.push(input);
    } else if (stats) {
      // A file named explicitly is taken whatever its extension: the user asked for it.
      add(await realpath(absInput), absInput, input);
    } else if (fg.isDynamicPattern(input)) {
      const pattern = await escapeRealFolders(toPosix(input), cwd);
      const entries = await fg(pattern, { ...PATTERN_WALK, cwd, caseSensitiveMatch: false });
      let matched = 0;
      for (const entry of entries) {
        if (!entry.stats || entry.stats.isDirectory() || !isImagePath(entry.path)) continue;
        const absPath = path.resolve(cwd, entry.path);
        add(await realpath(absPath).catch(() => absPath), absPath, input);
        matched += 1;
      }
      if (matched === 0) emptyInputs.push(input);
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
  return { tasks, emptyInputs };
}

const FOLDER_WALK = {
  onlyFiles: false,
  dot: false,
  objectMode: true,
  followSymbolicLinks: false,
  // Unreadable folders are skipped rather than ending the whole run.
  suppressErrors: true,
} as const;

// A pattern is matched by fast-glob through symlinked folders too (it stops at the OS's ELOOP).
const PATTERN_WALK = {
  onlyFiles: false,
  dot: false,
  stats: true,
  followSymbolicLinks: true,
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

/** Relative inputs give paths relative to the working directory, absolute inputs absolute paths. */
function displayPath(absPath: string, input: string, cwd: string): string {
  return toPosix(path.isAbsolute(input) ? absPath : path.relative(cwd, absPath));
}
