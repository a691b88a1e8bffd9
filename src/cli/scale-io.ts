import type { Redis } from "ioredis";
import { UsageError } from "../errors.js";
import { connectRedis, reachRedis } from "../scale/redis.js";
import type { CaptionConfig } from "../settings/caption-config.js";
import { namedWhereTheyLive } from "../settings/naming.js";
import { settingsOf, valueOrDefault } from "../settings/table.js";
import { RUN_OWN_TABLE } from "../settings/table-run-own.js";

/** The Redis the settings name (--redis, CAPTION_REDIS_URL, a config file), reached or a clear error. */
export async function openRedis(config: CaptionConfig): Promise<Redis> {
  const url = valueOrDefault(config.values, "redis");
  await reachRedis(url);
  const redis = connectRedis(url);
  // Reported by whoever uses it; an unheard error event would end the process.
  redis.on("error", () => {});
  return redis;
}

/**
 * The queue the command's settings required: loadConfig has already refused a command line
 * without it, this only narrows its type.
 */
export function queueOf(config: CaptionConfig): string {
  if (config.values.queue === undefined) throw new UsageError(["--queue: required"]);
  return config.values.queue;
}

/**
 * Says which of a run's own settings (`table-run-own.ts`) a config or the environment gave that
 * this command of many machines does not take: a worker keeps to its queue's budget and prices,
 * given at enqueue, and neither takes a redo or several prompts yet.
 */
export function warnRunOnly(
  config: CaptionConfig,
  command: "enqueue" | "worker",
  say: (text: string) => void,
): void {
  const taken = settingsOf(command);
  const given = (Object.keys(RUN_OWN_TABLE) as (keyof typeof RUN_OWN_TABLE)[]).filter(
    (key) => config.values[key] !== undefined && !taken.includes(key),
  );
  if (given.length === 0) return;
  const them = given.length === 1 ? "it" : "them";
  const queueBudget =
    command === "worker" ? "; the queue's budget and prices, given at enqueue, apply" : "";
  say(
    `${given.map(namedWhereTheyLive(config.settingFrom)).join(", ")}: a run's own, which ${command === "worker" ? "a worker" : "a queue"} does not take, so this command ignores ${them}${queueBudget}`,
  );
}
