import { realpath } from "node:fs/promises";
import path from "node:path";
import fg from "fast-glob";
import { containerKind, containerPath, splitMemberInput } from "../archive/containers.js";
import { type Expansion, expandContainer } from "../archive/expand.js";
import { CaptionError, UsageError } from "../errors.js";
import { folderLinkVerdict, isWithin } from "../trust/links.js";
import type { ImageTask } from "../types.js";
import { statOrNull, toPosix } from "../util/folders.js";
import { IMAGE_EXTENSIONS, isClipPath } from "./extensions.js";

const EXTENSION_SET = new Set<string>(IMAGE_EXTENSIONS);

export function isImagePath(file: string): boolean {
  return EXTENSION_SET.has(path.extname(file).slice(1).toLowerCase());
}

/** Whether a folder walk or a pattern takes a file: an image, or a clip when clips are asked for. */
function wanted(file: string, video: boolean): boolean {
  return isImagePath(file) || (video && isClipPath(file));
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
  /**
   * Symlinks to folders that were not followed, as displayed: `outside` lead out of their folder
   * input (followed with `followSymlinks`), `loops` back to a folder they are in (never followed).
   */
  linksNotFollowed: { outside: string[]; loops: string[] };
  /** Samples of shards that hold no image member, skipped: how many, in which shards. */
  skippedSamples: { container: string; count: number }[];
  /**
   * Shards and Parquet files that cannot be read as such: each fails alone, as its own row
   * (`task.path` is the container's), and the other inputs go on.
   */
  brokenContainers: { task: ImageTask; error: CaptionError }[];
  /**
   * Folder inputs with no image but shards or Parquet files in them, which a folder walk does not
   * open: most likely meant as inputs, so the run says how to name them.
   */
  foldersOfContainers: { input: string; count: number }[];
}

export interface DiscoverOptions {
  /**
   * Follow symlinks to folders out of a folder input too. Loops are never followed.
   * @default false
   */
  followSymlinks?: boolean | undefined;
  /** Take video clips too (`VIDEO_EXTENSIONS`). @default false */
  video?: boolean | undefined;
  /**
   * The run's own outputs, absolute: files (OUT, which a pattern of Parquet files may match) and
   * folders (`--webdataset-out`'s, whose new shards a pattern of shards may match: the files
   * right in it). A pattern or a folder walk passes over them; an input naming one is refused,
   * since the run would write it.
   */
  exclude?: { files: readonly string[]; folders: readonly string[] } | undefined;
}

/**
 * Expands the inputs (folders recursed, files taken as given, anything else a glob pattern) into
 * image tasks. Hidden files and folders are skipped: they hold things like macOS `._x.jpg`
 * resource forks, which are not images despite the name. A folder input is walked without
 * following a symlink to a folder out of it (`trust/links.ts`), unless `followSymlinks` says so;
 * a symlink to an image file is taken wherever it leads. Files are the user's choice, taken as
 * they are; so is what a pattern names, but its `**` descends into no folder link unless
 * `followSymlinks` says so.
 */
export async function discoverImages(
  inputs: readonly string[],
  cwd: string,
  options: DiscoverOptions = {},
): Promise<Discovery> {
  const followSymlinks = options.followSymlinks ?? false;
  const video = options.video ?? false;
  // Keyed by the file's real location, so a file reached through several inputs, a symlink or a
  // symlink loop is still one image.
  const found = new Map<string, ImageTask>();
  const missing: string[] = [];
  const emptyInputs: string[] = [];
  const linksNotFollowed: Discovery["linksNotFollowed"] = { outside: [], loops: [] };
  /** Real paths of the folders walked, each with everything under it. */
  const walkedRoots: string[] = [];
  let added = 0;
  // Compared by real path: a link to OUT, or to the folder of the new shards, is the same file.
  const ownFiles = new Set(await Promise.all((options.exclude?.files ?? []).map(realLocation)));
  const ownFolders = await Promise.all((options.exclude?.folders ?? []).map(realLocation));
  const ownNames = new Set([...ownFiles].map((file) => path.basename(file)));
  // `--webdataset-out` writes `<folder>/<shard's name>`: the shards right in it are the run's.
  // An image is OUT only by its name (a link to OUT named like an image is no worry: its bytes
  // are read, never written); a shard or a Parquet file is looked at through its links.
  const own = async (absPath: string): Promise<boolean> => {
    const container = containerKind(absPath) !== null;
    if (!container && !ownNames.has(path.basename(absPath))) return false;
    const shard = container && ownFolders.length > 0;
    const real = await realLocation(absPath);
    return ownFiles.has(real) || (shard && ownFolders.includes(path.dirname(real)));
  };
  const add = async (key: string, absPath: string, input: string, root: string | null) => {
    if (await own(absPath)) return;
    added += 1;
    if (!found.has(key)) found.set(key, { path: displayPath(absPath, input, cwd), absPath, root });
  };
  const skippedSamples: Discovery["skippedSamples"] = [];
  const foldersOfContainers: Discovery["foldersOfContainers"] = [];
  let containersSeen = 0;
  const brokenContainers: Discovery["brokenContainers"] = [];
  /** Each container listed once, by its real path, however many inputs name it or its images. */
  const listed = new Map<string, Listing | null>();
  const list = async (absPath: string, real: string, input: string): Promise<Listing | null> => {
    if (listed.has(real)) return listed.get(real) ?? null;
    const kind = containerKind(absPath);
    let listing: Listing | null = null;
    try {
      if (kind)
        listing = { ...(await expandContainer(absPath, kind)), byName: null, counted: false };
    } catch (error) {
      if (!(error instanceof CaptionError)) throw error;
      brokenContainers.push({ task: { path: displayPath(absPath, input, cwd), absPath }, error });
    }
    listed.set(real, listing);
    return listing;
  };
  /**
   * A container's images (or the one `only` names), each `<container>#<name>`: whether any was
   * found, or the container could not be read (its failure is listed).
   */
  const addContainer = async (
    absPath: string,
    input: string,
    only?: string,
  ): Promise<"added" | "none" | "broken"> => {
    if (await own(absPath)) return "none";
    const real = await realpath(absPath).catch(() => absPath);
    const listing = await list(absPath, real, input);
    if (!listing) return "broken";
    let images = listing.images;
    // Said of a container taken whole, once: one sample named is not the shard's skips.
    if (only === undefined && listing.skipped > 0 && !listing.counted) {
      listing.counted = true;
      skippedSamples.push({ container: displayPath(absPath, input, cwd), count: listing.skipped });
    }
    if (only !== undefined) {
      // Many inputs may each name one image of a shard (a scale-out job's): found by name at once.
      listing.byName ??= new Map(listing.images.map((image) => [image.name, image]));
      const image = listing.byName.get(only);
      images = image ? [image] : [];
    }
    const shown = displayPath(absPath, input, cwd);
    for (const { name, member } of images) {
      added += 1;
      const key = `${real}#${name}`;
      if (!found.has(key)) {
        found.set(key, { path: `${shown}#${name}`, absPath, root: null, member });
      }
    }
    return images.length > 0 ? "added" : "none";
  };

  const shown = (absPath: string, input: string) => displayPath(absPath, input, cwd);
  // A link into another folder input leads into a folder walked as that input, not out.
  const inputRoots: string[] = [];
  for (const input of inputs) {
    const absInput = path.resolve(cwd, input);
    if ((await statOrNull(absInput))?.isDirectory()) inputRoots.push(await realpath(absInput));
  }

  /**
   * Lists a folder from directory entries alone (no stat per file, which is what makes a 100k-file
   * folder fast). Symlinks are the exception, checked one by one: a link to a folder inside the
   * input is not walked again (its folder is walked where it is), one out of it only with
   * `followSymlinks`, and a loop never; a link to a file is taken if it is named as an image, and
   * a broken link is kept, so the errors file says what it points to instead of the image
   * vanishing. `real` is the real path of `absDir`, and the root of what is found under it.
   */
  const walk = async (absDir: string, real: string, input: string): Promise<void> => {
    walkedRoots.push(real);
    const entries = await fg("**/*", { ...FOLDER_WALK, cwd: absDir });
    for (const entry of entries) {
      const absPath = path.join(absDir, entry.path);
      if (entry.dirent.isSymbolicLink()) {
        const target = await statOrNull(absPath);
        if (target?.isDirectory()) {
          const realTarget = await realpath(absPath).catch(() => null);
          if (realTarget === null) continue;
          // fast-glob follows no link, so the folder holding this one is really under `real`.
          const folder = path.join(real, path.dirname(entry.path));
          const verdict = folderLinkVerdict(
            { target: realTarget, folder },
            [...walkedRoots, ...inputRoots],
            followSymlinks,
          );
          if (verdict === "follow") await walk(absPath, realTarget, input);
          else if (verdict === "outside") linksNotFollowed.outside.push(shown(absPath, input));
          else if (verdict === "loop") linksNotFollowed.loops.push(shown(absPath, input));
        } else if (wanted(entry.path, video)) {
          await add(await realpath(absPath).catch(() => absPath), absPath, input, real);
        }
      } else if (!entry.dirent.isDirectory() && wanted(entry.path, video)) {
        // Folders named like images (x.jpg/) are walked by fast-glob, not captioned.
        await add(absPath, absPath, input, real);
      } else if (!entry.dirent.isDirectory() && containerKind(entry.path)) {
        // Not opened: a folder's `.tar` may be anyone's backup. Said, where the folder holds no image.
        containersSeen += 1;
      }
    }
  };

  // A file or an image in one named as an input (not a pattern, which passes over them).
  const named: string[] = [];
  for (const input of inputs) {
    const file = path.resolve(cwd, splitMemberInput(input)?.container ?? input);
    if ((await own(file)) && (await statOrNull(file))?.isFile()) named.push(input);
  }
  if (named.length > 0) {
    throw new UsageError(
      named.map(
        (input) =>
          `input ${input} is this run's own output (OUT, or a shard --webdataset-out writes): the run would write over what it reads; name another output`,
      ),
    );
  }
  for (const input of inputs) {
    const absInput = path.resolve(cwd, input);
    const stats = await statOrNull(absInput);
    if (stats?.isDirectory()) {
      const real = await realpath(absInput);
      // A folder already walked through another input is not empty, just counted once.
      if (walkedRoots.some((root) => isWithin(real, root))) continue;
      const before = added;
      containersSeen = 0;
      await walk(absInput, real, input);
      if (added === before) emptyInputs.push(input);
      if (added === before && containersSeen > 0) {
        foldersOfContainers.push({ input, count: containersSeen });
      }
    } else if (stats && containerKind(absInput)) {
      if ((await addContainer(absInput, input)) === "none") emptyInputs.push(input);
    } else if (stats) {
      // A file named explicitly is taken whatever its extension: the user asked for it.
      await add(await realpath(absInput), absInput, input, null);
    } else if (await namesMember(input, cwd)) {
      // `shard.tar#key`, `file.parquet#row`: one image of a container (a scale-out job's input).
      const { container, member } = splitMemberInput(input) ?? { container: "", member: "" };
      if ((await addContainer(path.resolve(cwd, container), container, member)) === "none") {
        missing.push(input);
      }
    } else if (fg.isDynamicPattern(input)) {
      const pattern = await escapeRealFolders(toPosix(input), cwd);
      const entries = await fg(pattern, {
        ...PATTERN_WALK,
        cwd,
        caseSensitiveMatch: false,
        // `**` descends into no folder link unless asked: in someone else's folder a link may
        // lead anywhere, `/` or a loop among them. A folder the pattern names is still entered.
        followSymbolicLinks: followSymlinks,
      });
      let matched = 0;
      let mine = 0;
      for (const entry of entries) {
        if (!entry.stats || entry.stats.isDirectory()) continue;
        const absPath = path.resolve(cwd, entry.path);
        if (await own(absPath)) {
          // The run's own output (a rerun's glob reaching the new shards): passed over.
          mine += 1;
        } else if (containerKind(entry.path)) {
          // A pattern of shards (`data/{00000..00099}.tar`) takes each as its images.
          await addContainer(absPath, input);
          matched += 1;
        } else if (wanted(entry.path, video)) {
          await add(await realpath(absPath).catch(() => absPath), absPath, input, null);
          matched += 1;
        }
      }
      if (matched === 0 && mine > 0 && ownFolders.length > 0) {
        throw new UsageError([
          `${input} matches only what the run writes (${mine} ${mine === 1 ? "file" : "files"} of --webdataset-out's folder): name another folder for the new shards`,
        ]);
      }
      if (matched === 0) emptyInputs.push(input);
    } else {
      missing.push(input);
    }
  }
  if (missing.length > 0) {
    throw new UsageError(
      missing.map((input) =>
        splitMemberInput(input)
          ? `input not found: ${input} (its shard or Parquet file holds no image by that name)`
          : `input not found: ${input} (not a file, a folder or a glob pattern)`,
      ),
    );
  }
  const tasks = [...found.values()].sort(byPlace);
  return {
    tasks,
    emptyInputs,
    linksNotFollowed,
    skippedSamples,
    brokenContainers,
    foldersOfContainers,
  };
}

/** A container's images as listed, with an index by name made when an input names one. */
type Listing = Expansion & {
  byName: Map<string, Expansion["images"][number]> | null;
  /** Its skipped samples said already. */
  counted: boolean;
};

/** A path with its folder's links resolved, for a file that may not exist yet (OUT). */
async function realLocation(file: string): Promise<string> {
  const real = await realpath(file).catch(() => null);
  if (real) return real;
  const folder = await realpath(path.dirname(file)).catch(() => path.dirname(file));
  return path.join(folder, path.basename(file));
}

/** Whether an input that is no file names one image of an existing shard or Parquet file. */
async function namesMember(input: string, cwd: string): Promise<boolean> {
  const split = splitMemberInput(input);
  return (
    split !== null && (await statOrNull(path.resolve(cwd, split.container)))?.isFile() === true
  );
}

/**
 * Files by path; a container's images in the container's order (a shard read front to back,
 * row 10 after row 9), so its images are read in the order they lie on disk.
 */
function byPlace(a: ImageTask, b: ImageTask): number {
  const left = containerPath(a);
  const right = containerPath(b);
  if (left !== right) return left < right ? -1 : 1;
  return (a.member?.index ?? 0) - (b.member?.index ?? 0);
}

const FOLDER_WALK = {
  onlyFiles: false,
  dot: false,
  objectMode: true,
  followSymbolicLinks: false,
  // Unreadable folders are skipped rather than ending the whole run.
  suppressErrors: true,
} as const;

const PATTERN_WALK = {
  onlyFiles: false,
  dot: false,
  stats: true,
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
    // An absolute pattern's first segment is empty, which fast-glob refuses to look at.
    if (segment === "" || !fg.isDynamicPattern(segment)) continue;
    if (!(await statOrNull(folder))?.isDirectory()) break;
    segments[i] = fg.escapePath(segment);
  }
  return segments.join("/");
}

/** Relative inputs give paths relative to the working directory, absolute inputs absolute paths. */
function displayPath(absPath: string, input: string, cwd: string): string {
  return toPosix(path.isAbsolute(input) ? absPath : path.relative(cwd, absPath));
}
