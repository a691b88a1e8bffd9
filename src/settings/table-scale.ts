import {
  DEFAULT_ATTEMPTS,
  DEFAULT_BACKOFF_SECONDS,
  DEFAULT_REDIS_URL,
  DEFAULT_SHARD_SIZE,
  DEFAULT_SHARDS_AT_ONCE,
  DEFAULT_STALL_SECONDS,
} from "../scale/defaults.js";
import type { SettingSpec } from "./spec.js";

/**
 * The settings of many machines: which queue, which Redis, how shards are cut, retried and held.
 * A config file may keep them (a worker's Redis, say) as it keeps a run's.
 */
export const SCALE_TABLE = {
  queue: {
    flag: "--queue",
    kind: { type: "name" },
    describe: "The queue's name",
    basic: true,
    scope: "scale",
    commands: ["enqueue", "worker", "status"],
    requiredBy: ["enqueue", "worker", "status"],
    requiredFor: "the queue's name, the same for enqueue, every worker and status",
    more: "letters, digits, `.`, `_` or `-`: one queue per folder of shards",
  },
  redis: {
    flag: "--redis",
    kind: { type: "url", schemes: ["redis:", "rediss:"] },
    describe: "Redis URL (env CAPTION_REDIS_URL)",
    default: DEFAULT_REDIS_URL,
    scope: "scale",
    env: ["CAPTION_REDIS_URL"],
    commands: ["enqueue", "worker", "status"],
    more: "a password in it is never shown",
  },
  shardFolder: {
    flag: "--out",
    kind: { type: "path" },
    describe: "Folder for shards and their captions, on storage every worker sees",
    basic: true,
    scope: "scale",
    commands: ["enqueue"],
    requiredBy: ["enqueue"],
    requiredFor: "the folder (on storage every worker sees) where shards and their captions go",
    more: "`caption merge` reads it",
  },
  shardSize: {
    flag: "--shard-size",
    kind: { type: "int", min: 1, max: 1_000_000 },
    describe: "Images per shard (one job)",
    default: DEFAULT_SHARD_SIZE,
    unit: "images",
    scope: "scale",
    commands: ["enqueue"],
  },
  shardAttempts: {
    flag: "--shard-attempts",
    kind: { type: "int", min: 1, max: 1000 },
    describe: "Tries of a shard whose own files fail (a damaged output, a full disk)",
    default: DEFAULT_ATTEMPTS,
    scope: "scale",
    commands: ["enqueue"],
  },
  shardBackoff: {
    flag: "--shard-backoff",
    kind: { type: "int", min: 1, max: 86_400 },
    describe: "Seconds before a failed shard's first retry, doubling after",
    default: DEFAULT_BACKOFF_SECONDS,
    unit: "s",
    scope: "scale",
    commands: ["enqueue"],
  },
  shardsAtOnce: {
    flag: "--shards-at-once",
    kind: { type: "int", min: 1, max: 1000 },
    describe: "Shards captioned at once (each with its own -c)",
    default: DEFAULT_SHARDS_AT_ONCE,
    scope: "scale",
    commands: ["worker"],
  },
  stallSeconds: {
    flag: "--stall-seconds",
    kind: { type: "int", min: 1, max: 86_400 },
    describe: "How long a killed worker's shard waits before another worker takes it",
    default: DEFAULT_STALL_SECONDS,
    unit: "s",
    scope: "scale",
    commands: ["worker"],
  },
} as const satisfies Record<string, SettingSpec>;
