import { execFile } from "node:child_process";
import { createWriteStream } from "node:fs";
import { mkdir } from "node:fs/promises";
import path from "node:path";
import { pipeline } from "node:stream/promises";
import { promisify } from "node:util";
import sharp from "sharp";
import tar from "tar-stream";

/** One member of a shard to write: its name and bytes. */
export interface ShardMember {
  name: string;
  data: Buffer | string;
}

/** Writes a tar shard of these members, in this order. */
export async function writeShard(file: string, members: readonly ShardMember[]): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  const pack = tar.pack();
  const done = pipeline(pack, createWriteStream(file));
  for (const member of members) {
    await new Promise<void>((resolve, reject) =>
      pack.entry({ name: member.name, mtime: new Date(1_700_000_000_000) }, member.data, (error) =>
        error ? reject(error) : resolve(),
      ),
    );
  }
  pack.finalize();
  await done;
}

/** A small JPEG, different for each `seed`, so no two samples are copies. */
export function sampleJpeg(seed: number, size = 40): Promise<Buffer> {
  return sharp({
    create: {
      width: size + (seed % 50),
      height: size,
      channels: 3,
      background: { r: (seed * 37) % 256, g: 80, b: (seed * 11) % 256 },
    },
  })
    .jpeg()
    .toBuffer();
}

/**
 * The members of an img2dataset-like shard: per sample `<key>.jpg`, `<key>.txt` (the alt text)
 * and `<key>.json`, keys numbered from `first`.
 */
export async function img2datasetMembers(first: number, count: number): Promise<ShardMember[]> {
  const members: ShardMember[] = [];
  for (let i = first; i < first + count; i += 1) {
    const key = String(i).padStart(9, "0");
    members.push({ name: `${key}.jpg`, data: await sampleJpeg(i) });
    members.push({ name: `${key}.txt`, data: `alt text ${i}` });
    members.push({ name: `${key}.json`, data: JSON.stringify({ key, url: `https://x/${i}.jpg` }) });
  }
  return members;
}

const run = promisify(execFile);

/** What GNU tar, another reader than the one that wrote it, lists in a shard, in order. */
export async function tarList(file: string): Promise<string[]> {
  const { stdout } = await run("tar", ["-tf", file]);
  return stdout.split("\n").filter((line) => line !== "");
}

/** One member's bytes, as GNU tar extracts them. */
export async function tarMember(file: string, name: string): Promise<Buffer> {
  const { stdout } = await run("tar", ["-xOf", file, name], {
    encoding: "buffer",
    maxBuffer: 64 * 1024 * 1024,
  });
  return stdout;
}
