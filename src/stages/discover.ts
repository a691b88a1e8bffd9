import { stat } from "node:fs/promises";
import path from "node:path";
import fg from "fast-glob";
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
  const found = new Map<string, ImageTask>();
  const missing: string[] = [];
  const emptyPatterns: string[] = [];
  const add = (absPath: string, input: string) => {
    if (!found.has(absPath))
      found.set(absPath, { path: displayPath(absPath, input, cwd), absPath });
  };

  for (const input of inputs) {
    const absInput = path.resolve(cwd, input);
    const kind = await statKind(absInput);
    if (kind === "directory") {
      const entries = await fg("**/*", {
        cwd: absInput,
        onlyFiles: true,
        dot: false,
        followSymbolicLinks: true,
        suppressErrors: true,
      });
      for (const entry of entries) {
        if (isImagePath(entry)) add(path.join(absInput, entry), input);
      }
    } else if (kind === "file") {
      // A file named explicitly is taken whatever its extension: the user asked for it.
      add(absInput, input);
    } else if (fg.isDynamicPattern(input)) {
      const entries = await fg(toPosix(input), {
        cwd,
        onlyFiles: true,
        dot: false,
        absolute: true,
        followSymbolicLinks: true,
        suppressErrors: true,
        caseSensitiveMatch: false,
      });
      const images = entries.filter(isImagePath);
      if (images.length === 0) emptyPatterns.push(input);
      for (const entry of images) add(path.normalize(entry), input);
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

async function statKind(absPath: string): Promise<"file" | "directory" | "other" | null> {
  try {
    const info = await stat(absPath);
    return info.isDirectory() ? "directory" : info.isFile() ? "file" : "other";
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
