import type { Redis } from "ioredis";
import { UsageError } from "../errors.js";
import { connectRedis, reachRedis } from "../scale/redis.js";
import type { CaptionConfig } from "../settings/caption-config.js";
import { namedWhereTheyLive } from "../settings/naming.js";
import { valueOrDefault } from "../settings/table.js";
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
 * Says which settings a config or the environment gave that a command of many machines does not
 * use: a run's own settings (`table-run-own.ts`), which workers of a queue do not take (yet).
 */
export function warnRunOnly(config: CaptionConfig, say: (text: string) => void): void {
  const given = Object.keys(RUN_OWN_TABLE).filter(
    (key) => config.values[key as keyof typeof RUN_OWN_TABLE] !== undefined,
  );
  if (given.length === 0) return;
  say(
    `${given.map(namedWhereTheyLive(config.settingFrom)).join(", ")}: a run's own (a budget, prices, a redo, several prompts); the workers of a queue do not take ${given.length === 1 ? "it" : "them"} yet, so this command ignores ${given.length === 1 ? "it" : "them"}`,
  );
}
