import path from "node:path";
import type { ImageTask } from "../types.js";

/** Files whose images lie inside them: a WebDataset shard, a Parquet file. */
export type ContainerKind = "tar" | "parquet";

/** The kind of container a file is, by its name; null for any other file. */
export function containerKind(file: string): ContainerKind | null {
  const ext = path.extname(file).toLowerCase();
  if (ext === ".tar") return "tar";
  if (ext === ".parquet") return "parquet";
  return null;
}

/**
 * `shard.tar#key` or `file.parquet#row` split into the container and what names the image in
 * it; null for anything else. The first `#` after which a container's name ends splits, so a key
 * may hold a `#` of its own (`a.tar#x#1` is key `x#1`).
 */
export function splitMemberInput(input: string): { container: string; member: string } | null {
  for (let hash = input.indexOf("#"); hash > 0; hash = input.indexOf("#", hash + 1)) {
    const container = input.slice(0, hash);
    if (hash < input.length - 1 && containerKind(container)) {
      return { container, member: input.slice(hash + 1) };
    }
  }
  return null;
}

/** What names an image in its container, after the `#`: a shard's key, a Parquet file's row. */
export function memberName(task: ImageTask): string | null {
  const member = task.member;
  if (!member) return null;
  return member.kind === "tar" ? member.key : String(member.row);
}

/**
 * The path OUT shows for a task's file: its own, or for an image inside a container, the
 * container's (its path less `#<name>`).
 */
export function containerPath(task: ImageTask): string {
  const name = memberName(task);
  return name === null ? task.path : task.path.slice(0, task.path.length - name.length - 1);
}

/** The input that names one image again, on any machine: its path, or `<container>#<member>`. */
export function taskInput(task: ImageTask): string {
  const name = memberName(task);
  return name === null ? task.absPath : `${task.absPath}#${name}`;
}
