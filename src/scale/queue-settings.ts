import { readFile } from "node:fs/promises";
import path from "node:path";
import type { Redis } from "ioredis";
import { UsageError } from "../errors.js";
import { type FixedOptions, fixedOptionsOf } from "../settings/library-options.js";
import type { RunOptions } from "../settings/run-options.js";
import { writeWhole } from "../sinks/write-whole.js";

/**
 * What shapes a queue's captions, fixed when it is first enqueued: every worker captions with
 * these, whatever its own flags say, so no half of a corpus gets another prompt or model.
 */
export type QueueSettings = FixedOptions & {
  /** The queue DIR's shards belong to: one DIR, one queue. */
  queue: string;
  /** DIR: shards, their manifests and outputs, on storage every worker sees. */
  dir: string;
  /** Rows name images relative to this folder, as a run started there would. */
  cwd: string;
  /** Requests per minute for all workers together, on each endpoint. */
  rpm?: number | undefined;
};

/** The names BullMQ and caption keep under, per queue; a queue name may not hold ":". */
export function settingsKey(queue: string): string {
  return `caption:${queue}:settings`;
}

/** The run options a shard's run takes from the queue: those it fixes, and where rows are named from. */
export function runOptionsOf(settings: QueueSettings): Partial<RunOptions> {
  return {
    cwd: settings.cwd,
    ...fixedOptionsOf(settings),
  };
}

/**
 * Stores the settings with the queue (in Redis, and as DIR/queue.json for `caption merge`), or
 * checks them against those stored: a second enqueue with other settings is refused, naming
 * what differs, before anything is added.
 */
export async function fixSettings(
  redis: Redis,
  queue: string,
  settings: QueueSettings,
): Promise<void> {
  const text = canonical(settings);
  const inDir = await readSettingsFile(settings.dir);
  if (inDir && inDir.queue !== queue) {
    throw new UsageError([
      `--out ${settings.dir}: holds the shards of queue ${inDir.queue ?? "(unnamed)"}; give --queue ${inDir.queue} to add to it, or another --out for queue ${queue}`,
    ]);
  }
  const stored = await redis.get(settingsKey(queue));
  if (stored === null) {
    // Only the first enqueue sets them, even when two start at once.
    const set = await redis.set(settingsKey(queue), text, "NX");
    if (set === "OK") {
      await writeWhole(path.join(settings.dir, "queue.json"), `${text}\n`);
      return;
    }
    return fixSettings(redis, queue, settings);
  }
  const before = JSON.parse(stored) as Record<string, unknown>;
  const now = JSON.parse(text) as Record<string, unknown>;
  const differ = [...new Set([...Object.keys(before), ...Object.keys(now)])].filter(
    (key) => JSON.stringify(before[key]) !== JSON.stringify(now[key]),
  );
  if (differ.length === 0) return;
  throw new UsageError(
    differ.map(
      (key) =>
        `--queue ${queue}: was enqueued with ${key} ${JSON.stringify(before[key]) ?? "unset"}, not ${JSON.stringify(now[key]) ?? "unset"}; every shard of a queue is captioned alike (use another --queue for other settings)`,
    ),
  );
}

/** The settings stored with the queue, or a usage error when it was never enqueued. */
export async function readSettings(redis: Redis, queue: string): Promise<QueueSettings> {
  const stored = await redis.get(settingsKey(queue));
  if (stored === null) {
    throw new UsageError([
      `--queue ${queue}: nothing was ever enqueued there; run caption enqueue <inputs..> --queue ${queue} --out DIR first`,
    ]);
  }
  return JSON.parse(stored) as QueueSettings;
}

/** DIR/queue.json, as enqueue left it; null when DIR holds no queue's shards. */
export async function readSettingsFile(dir: string): Promise<QueueSettings | null> {
  try {
    return JSON.parse(await readFile(path.join(dir, "queue.json"), "utf8")) as QueueSettings;
  } catch {
    return null;
  }
}

/**
 * The inputs every enqueue of DIR was given, as absolute paths, in DIR/inputs.json: the folder
 * inputs are where `caption merge --hf-metadata` writes each metadata file, as a run would.
 */
export async function addEnqueuedInputs(dir: string, inputs: readonly string[]): Promise<void> {
  const known = (await readEnqueuedInputs(dir)) ?? [];
  const all = [...new Set([...known, ...inputs])];
  if (all.length !== known.length) {
    await writeWhole(path.join(dir, "inputs.json"), `${JSON.stringify(all)}\n`);
  }
}

export async function readEnqueuedInputs(dir: string): Promise<string[] | null> {
  try {
    const value: unknown = JSON.parse(await readFile(path.join(dir, "inputs.json"), "utf8"));
    return Array.isArray(value) ? value.filter((item) => typeof item === "string") : null;
  } catch {
    return null;
  }
}

/** JSON with sorted keys and nothing undefined, so equal settings are equal text. */
function canonical(value: unknown): string {
  return JSON.stringify(value, (_key, inner: unknown) => {
    if (inner === null || typeof inner !== "object" || Array.isArray(inner)) return inner;
    return Object.fromEntries(
      Object.entries(inner as Record<string, unknown>)
        .filter(([, v]) => v !== undefined)
        .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
    );
  });
}
