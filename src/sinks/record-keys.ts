import path from "node:path";
import { memberName } from "../archive/containers.js";
import type { ImageTask } from "../types.js";
import { toPosix } from "../util/folders.js";

export interface RecordKeys {
  learn(tasks: readonly ImageTask[]): void;
  /** The record's key for a displayed path: itself, or relative to the record's root. */
  key(displayPath: string): string;
}

export function recordKeys(root: string | undefined): RecordKeys {
  const keys = new Map<string, string>();
  return {
    learn(tasks) {
      if (root === undefined) return;
      for (const task of tasks) {
        const file = toPosix(path.relative(root, task.absPath));
        const name = memberName(task);
        keys.set(task.path, name === null ? file : `${file}#${name}`);
      }
    },
    key: (displayPath) => keys.get(displayPath) ?? displayPath,
  };
}
