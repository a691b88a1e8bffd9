import { createHash } from "node:crypto";
import { readdir, readFile } from "node:fs/promises";
import path from "node:path";
import { splitMemberInput } from "../archive/containers.js";
import { readRecords } from "../sinks/out-file/read.js";
import { writeWhole } from "../sinks/write-whole.js";
import type { CaptionRecord, FailureRecord } from "../types.js";
import { statOrNull } from "../util/folders.js";

/**
 * A shard: a fixed list of images captioned as one job. Its manifest, written once by `caption
 * enqueue`, is the truth on shared storage; its id is a hash of its list, so the same list is the
 * same job whoever enqueues it.
 */
export interface Shard {
  id: string;
  /** Order of creation: merge writes shards in this order, each in its own order. */
  seq: number;
  /** Absolute paths, as every worker sees them on the shared storage. */
  files: string[];
}

export interface ShardFiles {
  manifest: string;
  /** The shard's captions: OUT of its run. */
  output: string;
  errors: string;
  /** Images gone since they were enqueued, as failures (the run's errors file is its own). */
  missing: string;
  /** Written, whole, once the shard's run ended with every image captioned or reported. */
  done: string;
}

export interface ShardDone {
  /** Images of the shard with a caption row, over every worker that ran it. */
  captioned: number;
  /** Images with a failure row and no caption. */
  failed: number;
  worker: string;
  finishedAt: string;
}

const MANIFEST = /^(shard-[0-9a-f]{16})\.json$/;

export function shardFolder(dir: string): string {
  return path.join(dir, "shards");
}

export function shardFiles(dir: string, id: string): ShardFiles {
  const base = path.join(shardFolder(dir), id);
  return {
    manifest: `${base}.json`,
    output: `${base}.jsonl`,
    errors: `${base}.errors.jsonl`,
    missing: `${base}.missing.jsonl`,
    done: `${base}.done.json`,
  };
}

/** BullMQ job ids may not hold ":" nor be all digits: a prefixed hex digest is neither. */
export function shardId(files: readonly string[]): string {
  const hash = createHash("sha256");
  for (const file of files) hash.update(`${file}\n`);
  return `shard-${hash.digest("hex").slice(0, 16)}`;
}

/**
 * The shards that cover `discovered` beyond what `existing` already holds: each image is in one
 * shard only, ever. Images are taken in sorted order, so the same new images make the same
 * shards (and ids) on every machine.
 */
export function planShards(
  discovered: readonly string[],
  existing: readonly Shard[],
  shardSize: number,
): Shard[] {
  const held = new Set(existing.flatMap((shard) => shard.files));
  const fresh = [...new Set(discovered)].filter((file) => !held.has(file)).sort();
  let seq = existing.reduce((most, shard) => Math.max(most, shard.seq), 0);
  const shards: Shard[] = [];
  let files: string[] = [];
  const close = () => {
    if (files.length === 0) return;
    seq += 1;
    shards.push({ id: shardId(files), seq, files });
    files = [];
  };
  for (const group of byContainer(fresh)) {
    // A tar shard or Parquet file goes to one job whole where it fits (its images are read
    // from one file, in order, by one worker), else in jobs of its own.
    if (files.length + group.length > shardSize) close();
    for (let start = 0; start < group.length; start += shardSize) {
      files.push(...group.slice(start, start + shardSize));
      if (files.length >= shardSize) close();
    }
  }
  close();
  return shards;
}

/** Runs of files in order, the images of one shard or Parquet file together, a file alone. */
function byContainer(files: readonly string[]): string[][] {
  const groups: string[][] = [];
  let last: string | null = null;
  for (const file of files) {
    const container = splitMemberInput(file)?.container ?? null;
    const group = groups.at(-1);
    if (container !== null && container === last && group) group.push(file);
    else groups.push([file]);
    last = container;
  }
  return groups;
}

/** Every manifest under DIR/shards, in creation order. */
export async function readShards(dir: string): Promise<Shard[]> {
  let names: string[];
  try {
    names = await readdir(shardFolder(dir));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw error;
  }
  const shards: Shard[] = [];
  for (const name of names) {
    const match = MANIFEST.exec(name);
    if (!match) continue;
    shards.push(await readShard(dir, match[1] as string));
  }
  return shards.sort((a, b) => a.seq - b.seq);
}

export async function readShard(dir: string, id: string): Promise<Shard> {
  const file = shardFiles(dir, id).manifest;
  const value: unknown = JSON.parse(await readFile(file, "utf8"));
  if (!isShard(value) || value.id !== id) {
    throw new Error(`${file} is not a shard manifest caption wrote`);
  }
  return value;
}

export async function writeShard(dir: string, shard: Shard): Promise<void> {
  await writeWhole(shardFiles(dir, shard.id).manifest, `${JSON.stringify(shard)}\n`);
}

export async function readDone(dir: string, id: string): Promise<ShardDone | null> {
  try {
    return JSON.parse(await readFile(shardFiles(dir, id).done, "utf8")) as ShardDone;
  } catch {
    return null;
  }
}

export async function writeDone(dir: string, id: string, done: ShardDone): Promise<void> {
  await writeWhole(shardFiles(dir, id).done, `${JSON.stringify(done)}\n`);
}

function isShard(value: unknown): value is Shard {
  if (typeof value !== "object" || value === null) return false;
  const shard = value as Record<string, unknown>;
  return (
    typeof shard.id === "string" &&
    typeof shard.seq === "number" &&
    Array.isArray(shard.files) &&
    shard.files.every((file) => typeof file === "string")
  );
}

/**
 * What a shard's files hold, one record an image, each list by path: its captions, and the
 * failures (of its last run, and images gone since enqueue) of images without one. Merge writes
 * exactly these, and the done count is theirs.
 */
export async function readShardRecords(
  files: ShardFiles,
): Promise<{ rows: CaptionRecord[]; failures: FailureRecord[] }> {
  // An image is in one shard only, so each shard is deduplicated on its own; of an image's rows,
  // the later wins (the sort keeps the file's order among equal paths).
  const seen = new Set<string>();
  const rows: CaptionRecord[] = [];
  const sorted = byPath(await recordsOf<CaptionRecord>(files.output));
  sorted.forEach((record, i) => {
    if (sorted[i + 1]?.path === record.path) return;
    seen.add(record.path);
    rows.push(record);
  });
  const failures: FailureRecord[] = [];
  const failed = [
    ...(await recordsOf<FailureRecord>(files.errors)),
    ...(await recordsOf<FailureRecord>(files.missing)),
  ];
  for (const failure of byPath(failed)) {
    if (seen.has(failure.path)) continue;
    seen.add(failure.path);
    failures.push(failure);
  }
  return { rows, failures };
}

/** A shard's JSONL rows, none when it has no such file; a torn last line is no row. */
async function recordsOf<T>(file: string): Promise<T[]> {
  if (!(await statOrNull(file))?.isFile()) return [];
  const records: T[] = [];
  for await (const record of readRecords(file, "jsonl")) records.push(record as T);
  return records;
}

function byPath<T extends { path: string }>(records: T[]): T[] {
  return records.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}
