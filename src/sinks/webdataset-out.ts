import { createReadStream, createWriteStream } from "node:fs";
import { lstat, mkdir, realpath, rename, rm } from "node:fs/promises";
import path from "node:path";
import { pipeline } from "node:stream/promises";
import tar from "tar-stream";
import { containerPath } from "../archive/containers.js";
import { indexTar, type TarEntry } from "../archive/tar-index.js";
import { splitMemberName } from "../archive/webdataset.js";
import { IMAGE_EXTENSIONS, VIDEO_EXTENSIONS } from "../discover/extensions.js";
import { type NameSetting, RunAbortedError, UsageError } from "../errors.js";
import type { CaptionRecord, FailureRecord, ImageTask } from "../types.js";
import type { StoredCaption } from "./out-file/stored-caption.js";
import { markWritten, writtenByUs } from "./shard-marks.js";
import type { FinishedWork, Sink } from "./sink.js";
import { removeStaleTemporaries, temporaryPath } from "./write-whole.js";

/** Where and how `--webdataset-out` writes its shards. */
export interface WebDatasetOutOptions {
  /** The folder the new shards go to, each under its input's name. */
  out: string;
  /**
   * The member a sample's caption is written as: `<key>.<member>`. Named, it replaces a sample's
   * own member of that name in the new shard; left out, it is `txt`, and a shard whose samples
   * hold a `.txt` already (img2dataset's alt text) is refused before anything is sent.
   */
  member?: string | undefined;
}

/** Members the caption must never replace: a sample's image or clip (and its `json`, below). */
const KEPT_MEMBERS = new Set<string>([...IMAGE_EXTENSIONS, ...VIDEO_EXTENSIONS]);

/** What is wrong with a caption member's name (`txt`, `caption.txt`), or null. */
export function memberExtProblem(value: string): string | null {
  if (!/^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/.test(value)) {
    return `${JSON.stringify(value)} is no member extension: letters, digits, "_", "-", parts joined by "." (txt, caption.txt)`;
  }
  const last = value.slice(value.lastIndexOf(".") + 1).toLowerCase();
  // `caption.json` is a member of its own; `json` is the sample's metadata.
  return KEPT_MEMBERS.has(last) || value.toLowerCase() === "json"
    ? `${JSON.stringify(value)} would write the caption over each sample's ${last === "json" ? "metadata (<key>.json takes a structured answer's fields)" : "image or clip"}; name a text member (txt, caption.txt)`
    : null;
}

interface ShardState {
  /** The input shard. */
  absPath: string;
  /** The new shard. */
  target: string;
  /** Its images' paths in OUT, each with its sample's key (which may hold a `#`). */
  paths: Map<string, string>;
  /** The shard as OUT names it: a path less its `#<key>`. */
  shown: string;
  /** Those with no row yet: the shard is written when none is left. */
  pending: Set<string>;
  /** What this run captioned of it, by key: the record's rows are those from before the run. */
  fresh: Map<string, Captioned>;
}

/** What a new shard takes of a row. */
type Captioned = Pick<StoredCaption, "caption" | "data" | "tags" | "captions" | "answers">;

/**
 * Writes each input shard again into a folder, once each of its samples is captioned or
 * reported: every original member copied unchanged and in its order, each sample's caption as
 * `<key>.<member>` after its last member, and a structured answer merged into `<key>.json`. A
 * shard is written whole (a temporary file, renamed) from the run's record, so a run killed
 * half way leaves no shard or a whole one, and the next finishes what is missing. Input shards
 * are only read.
 */
export class WebDatasetSink implements Sink {
  readonly #options: { out: string; member: string; replaceMember: boolean };
  readonly #recorded: (imagePath: string) => Promise<StoredCaption | undefined>;
  readonly #dryRun: boolean;
  readonly #nameSetting: NameSetting;
  readonly #shardOf = new Map<string, ShardState>();

  constructor(
    options: WebDatasetOutOptions,
    recorded: (imagePath: string) => Promise<StoredCaption | undefined>,
    dryRun: boolean,
    nameSetting: NameSetting,
  ) {
    this.#options = {
      out: options.out,
      member: options.member ?? "txt",
      replaceMember: options.member !== undefined,
    };
    this.#recorded = recorded;
    this.#dryRun = dryRun;
    this.#nameSetting = nameSetting;
  }

  async open(tasks: readonly ImageTask[], replace?: ReadonlySet<string>): Promise<FinishedWork> {
    const out = path.resolve(this.#options.out);
    const shards = new Map<string, ShardState>();
    for (const task of tasks) {
      const member = task.member;
      if (member?.kind !== "tar") continue;
      let shard = shards.get(task.absPath);
      if (!shard) {
        shard = {
          absPath: task.absPath,
          target: path.join(out, path.basename(task.absPath)),
          paths: new Map(),
          shown: containerPath(task),
          pending: new Set(),
          fresh: new Map(),
        };
        shards.set(task.absPath, shard);
      }
      shard.paths.set(task.path, member.key);
    }
    await this.#check(out, [...shards.values()], tasks);
    if (!this.#dryRun) {
      await mkdir(out, { recursive: true });
      await removeStaleTemporaries([out]);
    }
    const finishedNow: ShardState[] = [];
    const notOurs: string[] = [];
    for (const shard of shards.values()) {
      for (const imagePath of shard.paths.keys()) {
        const held = Boolean(await this.#recorded(imagePath));
        // Made again (`--redo`): the shard is written again once its new rows are in.
        if (!held || replace?.has(imagePath)) shard.pending.add(imagePath);
        this.#shardOf.set(imagePath, shard);
      }
      const target = await lstat(shard.target).catch(() => null);
      // Captioned in full by a run that stopped before writing it: written now.
      if (shard.pending.size === 0 && !target?.isFile()) finishedNow.push(shard);
      // A file there that this tool did not write is someone else's: never written over, and
      // said even when there is nothing to write (the new shard would be missing).
      if (!(await writtenByUs(shard.target))) notOurs.push(shard.target);
    }
    if (notOurs.length > 0) {
      throw new UsageError(
        notOurs.map(
          (file) =>
            `${this.#nameSetting("webdatasetOut")}: ${file} exists, and caption did not write it: it is never written over; move it, or name another folder (a copy of a shard caption wrote, made without its times, is written again once removed)`,
        ),
      );
    }
    for (const shard of finishedNow) await this.#write(shard);
    // A sample is done once the record holds its row: the new shard takes its caption from there.
    const pending = new Set([...shards.values()].flatMap((shard) => [...shard.pending]));
    const done = new Set(tasks.filter((task) => !pending.has(task.path)).map((task) => task.path));
    return { done, hashes: new Set(), repairedBytes: 0 };
  }

  /** Refuses what would overwrite an input, name two shards alike, or drop a sample's member. */
  async #check(
    out: string,
    shards: readonly ShardState[],
    tasks: readonly ImageTask[],
  ): Promise<void> {
    const flag = this.#nameSetting("webdatasetOut");
    const problems: string[] = [];
    const folder = await lstat(out).catch(() => null);
    if (folder?.isSymbolicLink()) {
      problems.push(`${flag}: ${out} is a symlink; name a folder of the run's own`);
    } else if (folder && !folder.isDirectory()) {
      problems.push(`${flag}: ${out} is a file, not a folder; name a folder for the new shards`);
    }
    const byTarget = new Map<string, string>();
    for (const shard of shards) {
      const other = byTarget.get(shard.target);
      if (other) {
        problems.push(
          `${flag}: ${other} and ${shard.absPath} would both be written as ${path.basename(shard.target)}; caption them into different folders`,
        );
      }
      byTarget.set(shard.target, shard.absPath);
      const realTarget = await realpath(shard.target).catch(() => null);
      if (realTarget !== null && realTarget === (await realpath(shard.absPath))) {
        problems.push(
          `${flag}: ${shard.target} is the input shard itself; input shards are never written, name another folder`,
        );
      }
    }
    if (!this.#options.replaceMember) {
      const clash = this.#memberClash(tasks);
      if (clash) problems.push(clash);
    }
    if (problems.length > 0) throw new UsageError(problems);
  }

  /**
   * The first sample that already holds the caption's member, said; null when none does. Told by
   * discovery's listing (each task knows its sample's members), not by reading the shards again.
   */
  #memberClash(tasks: readonly ImageTask[]): string | null {
    const ext = this.#options.member;
    const held = tasks.find(
      (task) => task.member?.kind === "tar" && task.member.exts.includes(ext),
    );
    if (held?.member?.kind !== "tar") return null;
    const name = this.#nameSetting("webdatasetMember");
    return `${this.#nameSetting("webdatasetOut")}: ${path.basename(held.absPath)} already holds ${held.member.key}.${ext}, and the caption would be written as ${path.posix.basename(held.member.key)}.${ext} too; keep both with ${name} caption.txt, or replace the shard's own with ${name} ${ext}`;
  }

  async stored(): Promise<StoredCaption | undefined> {
    return undefined;
  }

  async write(record: CaptionRecord): Promise<void> {
    const shard = this.#shardOf.get(record.path);
    const key = shard?.paths.get(record.path);
    if (!shard || key === undefined) return;
    const { caption, data, tags, captions, answers } = record;
    shard.fresh.set(key, { caption, data, tags, captions, answers });
    await this.#settled(shard, record.path);
  }

  async fail(failure: FailureRecord): Promise<void> {
    const shard = this.#shardOf.get(failure.path);
    if (shard) await this.#settled(shard, failure.path);
  }

  /**
   * Writes the shard once its last sample is settled. Awaited by the run, as OUT's own write is,
   * so a shard that cannot be written ends the run with a message, never an unhandled error.
   */
  async #settled(shard: ShardState, imagePath: string): Promise<void> {
    if (!shard.pending.delete(imagePath) || shard.pending.size > 0) return;
    await this.#write(shard);
  }

  async close(): Promise<void> {}

  /** Writes one shard whole from its input and the record; a failure ends the run, as OUT's does. */
  async #write(shard: ShardState): Promise<void> {
    if (this.#dryRun) return;
    try {
      await writeShard(
        shard,
        this.#options.member,
        async (key) => shard.fresh.get(key) ?? (await this.#recorded(`${shard.shown}#${key}`)),
      );
      // Written: what this run captioned of it is in the shard and the record, not needed here.
      shard.fresh.clear();
    } catch (error) {
      throw new RunAbortedError(
        "webdataset_write_failed",
        `cannot write ${shard.target}: ${(error as Error).message}; the captions are kept in the record, and a rerun writes the shard`,
        { cause: error },
      );
    }
  }
}

async function writeShard(
  shard: ShardState,
  member: string,
  captionOf: (key: string) => Promise<Captioned | undefined>,
): Promise<void> {
  const entries = await indexTar(shard.absPath);
  const lastOf = new Map<string, number>();
  entries.forEach((entry, at) => {
    const key = splitMemberName(entry.name)?.key;
    if (key !== undefined) lastOf.set(key, at);
  });
  const temporary = temporaryPath(shard.target);
  const pack = tar.pack();
  const written = pipeline(pack, createWriteStream(temporary, { flags: "wx" }));
  try {
    const names = new Set(entries.map((entry) => entry.name));
    for (const [at, entry] of entries.entries()) {
      const split = splitMemberName(entry.name);
      const stored = split ? await captionOf(split.key) : undefined;
      // The sample's own member of the caption's name (asked to be replaced) is, in its place.
      if (split && stored && split.ext === member) {
        await addText(pack, entry, `${stored.caption}\n`);
      } else {
        const merged =
          split && stored && split.ext === "json" && entry.type === "file" && hasFields(stored)
            ? await mergedJson(shard.absPath, entry, stored)
            : null;
        if (merged === null) await copyMember(pack, shard.absPath, entry);
        else await addText(pack, entry, merged);
      }
      if (!split || !stored || lastOf.get(split.key) !== at) continue;
      // After the sample's last member: what it did not hold already.
      const base = entry.name.slice(0, entry.name.length - split.ext.length);
      if (!names.has(`${base}${member}`)) {
        await addText(pack, { ...entry, name: `${base}${member}` }, `${stored.caption}\n`);
      }
      if (!names.has(`${base}json`) && hasFields(stored)) {
        await addText(pack, { ...entry, name: `${base}json` }, JSON.stringify(fieldsOf(stored)));
      }
    }
    pack.finalize();
    await written;
    await markWritten(temporary, shard.target);
    await rename(temporary, shard.target);
  } catch (error) {
    pack.destroy();
    await written.catch(() => {});
    await rm(temporary, { force: true });
    throw error;
  }
}

function hasFields(stored: Captioned): boolean {
  return Object.keys(fieldsOf(stored)).length > 0;
}

/**
 * What an answer adds to a sample's JSON: a structured answer's fields and the tags asked for;
 * with several prompts, every prompt's answer, under `captions` and `answers` as in JSONL's OUT.
 */
function fieldsOf(stored: Captioned): Record<string, unknown> {
  return {
    ...(stored.data ?? {}),
    ...(stored.tags ? { tags: stored.tags } : {}),
    ...(stored.captions ? { captions: stored.captions } : {}),
    ...(stored.answers ? { answers: stored.answers } : {}),
  };
}

/**
 * The sample's JSON with the answer's fields over it; null where it is copied as it was: no
 * JSON object, or too large to read whole (the answer's fields are in OUT either way).
 */
async function mergedJson(
  shardPath: string,
  entry: TarEntry,
  stored: Captioned,
): Promise<string | null> {
  if (entry.size > JSON_READ_LIMIT) return null;
  const chunks: Buffer[] = [];
  for await (const chunk of createReadStream(shardPath, rangeOf(entry))) {
    chunks.push(chunk as Buffer);
  }
  let original: unknown;
  try {
    original = JSON.parse(Buffer.concat(chunks).toString("utf8"));
  } catch {
    return null;
  }
  if (typeof original !== "object" || original === null || Array.isArray(original)) return null;
  return JSON.stringify({ ...original, ...fieldsOf(stored) });
}

/** A JSON member is read whole to merge into; past this it is copied as it is. */
const JSON_READ_LIMIT = 16 * 1024 * 1024;

function rangeOf(entry: TarEntry): { start: number; end: number } {
  return { start: entry.offset, end: entry.offset + entry.size - 1 };
}

/** The entry's header as the input shard had it, with the size of what the new shard holds. */
function headerOf(entry: TarEntry, size: number): Partial<tar.Header> & { name: string } {
  return {
    name: entry.name,
    type: entry.type,
    size,
    mode: entry.mode,
    mtime: new Date(entry.mtime * 1000),
    linkname: entry.linkname,
    uid: entry.uid,
    gid: entry.gid,
    uname: entry.uname,
    gname: entry.gname,
    devmajor: entry.devmajor,
    devminor: entry.devminor,
  };
}

/**
 * Copies a member as it is: a file's bytes as a stream (a shard's video member is never held
 * whole), a link, folder or device as its header alone.
 */
async function copyMember(pack: tar.Pack, shardPath: string, entry: TarEntry): Promise<void> {
  if (entry.type !== "file") return addEntry(pack, headerOf(entry, 0), "");
  if (entry.size === 0) return addText(pack, entry, "");
  await pipeline(
    createReadStream(shardPath, rangeOf(entry)),
    pack.entry(headerOf(entry, entry.size)),
  );
}

/** A file of this text in the new shard, in the place and with the times of `entry`. */
function addText(pack: tar.Pack, entry: TarEntry, text: string): Promise<void> {
  const bytes = Buffer.from(text, "utf8");
  return addEntry(pack, { ...headerOf(entry, bytes.length), type: "file", linkname: "" }, bytes);
}

function addEntry(
  pack: tar.Pack,
  header: Partial<tar.Header> & { name: string },
  bytes: Buffer | string,
): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    pack.entry(header, bytes, (error) => (error ? reject(error) : resolve()));
  });
}
