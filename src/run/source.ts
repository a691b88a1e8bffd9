import { containerKind, containerPath } from "../archive/containers.js";
import { type Discovery, discoverImages } from "../discover/discover.js";
import { type NameSetting, UsageError } from "../errors.js";
import type { FinishedWork, Sink } from "../sinks/sink.js";
import type { ImageTask } from "../types.js";
import type { RunState } from "./state.js";

export interface SourceOptions {
  /** Fail before anything is sent when an input holds no image. */
  strict: boolean;
  /** Follow symlinks to folders out of a folder input (never a loop). */
  followSymlinks: boolean;
  /** Folders and globs pick up clips too. */
  video: boolean;
  /**
   * The settings asked for that write a file beside each image (`sidecar`, `xmp`,
   * `hfMetadata`): refused for an image inside a shard or a Parquet file, which has no folder.
   */
  besideImages: readonly string[];
  /** The run's own outputs, absolute: never inputs (see DiscoverOptions.exclude). */
  own: { files: readonly string[]; folders: readonly string[] };
  /** `--webdataset-out` is asked for: it rewrites shards, so Parquet inputs are refused with it. */
  webdatasetOut: boolean;
  nameSetting: NameSetting;
}

/**
 * The run's work: every image the inputs name, less what the sink already holds. The sink is
 * opened here, after discovery has shown the inputs are sound and before anything is sent.
 */
export async function findWork(
  inputs: readonly string[],
  cwd: string,
  options: SourceOptions,
  sink: Sink,
  state: RunState,
  pick?: (pending: readonly ImageTask[]) => readonly ImageTask[],
): Promise<{ tasks: ImageTask[]; finished: FinishedWork }> {
  const discovery = await discoverImages(inputs, cwd, {
    followSymlinks: options.followSymlinks,
    video: options.video,
    exclude: options.own,
  });
  if (options.strict && discovery.emptyInputs.length > 0) {
    throw new UsageError(
      discovery.emptyInputs.map(
        (input) => `strict: ${input} matches no image file; fix the path or pattern`,
      ),
    );
  }
  refuseOutputsWithout(discovery, options);
  const unfollowed = linksWarning(discovery.linksNotFollowed, options.nameSetting);
  if (unfollowed) state.emit({ type: "warning", message: unfollowed });
  for (const { input, count: found } of discovery.foldersOfContainers) {
    const pattern = `${input.replace(/\/+$/, "")}/*.tar`;
    state.emit({
      type: "warning",
      message: `${input} holds ${count(found, "shard or Parquet file")} and no image file: a folder's shards are not opened; name them, e.g. '${pattern}' or '${input.replace(/\/+$/, "")}/*.parquet'`,
    });
  }
  const noImage = skippedWarning(discovery.skippedSamples);
  if (noImage) state.emit({ type: "warning", message: noImage });
  const finished = await sink.open(discovery.tasks);
  const { done, rejected, redo } = finished;
  const settled = (task: ImageTask) =>
    (done.has(task.path) && redo?.has(task.path) !== true) || rejected?.has(task.path) === true;
  const pending = discovery.tasks.filter((task) => !settled(task));
  const redone = redo
    ? pending.filter((task) => redo.has(task.path)).map((task) => ({ ...task, redo: true }))
    : pending;
  if (redone.length < pending.length) {
    const left = pending.length - redone.length;
    state.emit({
      type: "warning",
      message: `${left} ${left === 1 ? "image has" : "images have"} no finished row in OUT yet: ${options.nameSetting("redo")} sends only those it makes again, so ${left === 1 ? "it is" : "they are"} left for a run without it`,
    });
  }
  const tasks = pick ? [...pick(redone)] : redone;
  const refused = discovery.tasks.filter((task) => rejected?.has(task.path));
  state.discovered(
    discovery.tasks.length - (pending.length - tasks.length),
    tasks.length + refused.length,
    finished.repairedBytes,
    discovery.emptyInputs,
  );
  for (const task of refused)
    await state.failed(state.failureOf(task, rejected?.get(task.path), 0));
  // A shard that is not one fails alone, as one row; the other inputs go on.
  for (const { task, error } of discovery.brokenContainers) {
    await state.failed(state.failureOf(task, error, 0));
  }
  return { tasks, finished };
}

/**
 * Outputs that need a file of their own per image, or a shard to rewrite, refused where the
 * inputs hold none: before anything is sent, naming the input and what to use instead.
 */
function refuseOutputsWithout(discovery: Discovery, options: SourceOptions): void {
  const inside = [...discovery.tasks, ...discovery.brokenContainers.map((b) => b.task)];
  const container = inside.find((task) => task.member || containerKind(task.absPath));
  const problems: string[] = [];
  if (container && options.besideImages.length > 0) {
    const shown = containerPath(container);
    problems.push(
      `${options.besideImages.map((name) => options.nameSetting(name)).join(", ")}: ${shown} is a shard or a Parquet file, whose images have no folder to write beside; ${options.nameSetting("webdatasetOut")} DIR writes new shards holding the captions, and -o OUT.parquet a table of them`,
    );
  }
  if (options.webdatasetOut) {
    const parquet = inside.find((task) => containerKind(task.absPath) === "parquet");
    if (parquet) {
      problems.push(
        `${options.nameSetting("webdatasetOut")}: ${containerPath(parquet)} is a Parquet file, not a shard; its captions go to OUT (-o captions.parquet keeps them as a table)`,
      );
    }
  }
  if (problems.length > 0) throw new UsageError(problems);
}

/** The samples skipped for holding no image, said once, or null when there were none. */
export function skippedWarning(skipped: Discovery["skippedSamples"]): string | null {
  if (skipped.length === 0) return null;
  const total = skipped.reduce((sum, entry) => sum + entry.count, 0);
  const where = skipped.slice(0, 3).map((entry) => `${entry.count} in ${entry.container}`);
  if (skipped.length > 3) where.push(`and more in ${skipped.length - 3} other shards`);
  return `${count(total, "sample")} with no image member (jpg, png, webp, …) ${total === 1 ? "was" : "were"} skipped: ${where.join(", ")}`;
}

/** The folder links discovery did not follow, said once, or null when there were none. */
export function linksWarning(
  { outside, loops }: Discovery["linksNotFollowed"],
  nameSetting: NameSetting,
): string | null {
  const parts: string[] = [];
  if (outside.length > 0) {
    parts.push(
      `${count(outside.length, "symlink")} to a folder outside the input ${outside.length === 1 ? "was" : "were"} not followed (${examples(outside)}); ${nameSetting("followSymlinks")} follows ${outside.length === 1 ? "it" : "them"}`,
    );
  }
  if (loops.length > 0) {
    parts.push(
      `${count(loops.length, "symlink")} back to a folder ${loops.length === 1 ? "it is" : "they are"} in ${loops.length === 1 ? "was" : "were"} not followed, as loops never are (${examples(loops)})`,
    );
  }
  return parts.length > 0 ? parts.join("; ") : null;
}

function count(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? "" : "s"}`;
}

function examples(paths: readonly string[]): string {
  const shown = paths.slice(0, 3).join(", ");
  return paths.length > 3 ? `${shown} and ${paths.length - 3} more` : shown;
}
