import { lstat, readFile } from "node:fs/promises";
import path from "node:path";
import { writeWhole } from "./write-whole.js";

/**
 * Which files in `--webdataset-out`'s folder the run wrote, so that a file of the same name it did
 * not write (someone's own shard, a file copied there) is never written over. Each new shard gets
 * a hidden mark beside it naming its size and modification time, written before the shard is
 * renamed into place (a rename keeps both); the mark keeps the last two, so a run killed between
 * the mark and the rename still knows the shard that was there before as its own. Not the inode:
 * a file system reuses a freed one at once, and a folder copied with its times (`cp -a`, rsync)
 * keeps its shards' sizes and times but not their inodes.
 */
interface Mark {
  size: number;
  mtimeMs: number;
}

const KEPT = 2;

function markPath(shard: string): string {
  return path.join(path.dirname(shard), `.${path.basename(shard)}.caption.json`);
}

async function readMarks(shard: string): Promise<Mark[]> {
  try {
    const parsed: unknown = JSON.parse(await readFile(markPath(shard), "utf8"));
    return Array.isArray(parsed)
      ? parsed.filter(
          (mark): mark is Mark =>
            typeof mark?.size === "number" && typeof mark?.mtimeMs === "number",
        )
      : [];
  } catch {
    return [];
  }
}

/** Whether the file at `shard` is one this tool wrote there (absent: there is nothing to lose). */
export async function writtenByUs(shard: string): Promise<boolean> {
  const stats = await lstat(shard).catch(() => null);
  if (!stats) return true;
  if (!stats.isFile()) return false;
  return (await readMarks(shard)).some(
    (mark) => mark.size === stats.size && mark.mtimeMs === stats.mtimeMs,
  );
}

/** Marks the finished temporary file, before it is renamed to `shard`, as ours. */
export async function markWritten(temporary: string, shard: string): Promise<void> {
  const stats = await lstat(temporary);
  const marks = [...(await readMarks(shard)), { size: stats.size, mtimeMs: stats.mtimeMs }];
  await writeWhole(markPath(shard), JSON.stringify(marks.slice(-KEPT)));
}
