import type { Redis } from "ioredis";
import { UsageError } from "../errors.js";
import { connectRedis, reachRedis, redisUrlOf } from "../scale/redis.js";

/** The Redis the command names (--redis, CAPTION_REDIS_URL), reached or a clear error. */
export async function openRedis(
  args: Record<string, unknown>,
  env: NodeJS.ProcessEnv,
): Promise<Redis> {
  const url = redisUrlOf(args.redis, env);
  await reachRedis(url);
  const redis = connectRedis(url);
  // Reported by whoever uses it; an unheard error event would end the process.
  redis.on("error", () => {});
  return redis;
}

/** A count a flag gives, 1 or more; its default when the flag is absent. */
export function positiveInt(value: unknown, flag: string, fallback: number): number {
  if (value === undefined) return fallback;
  const number = Number(value);
  if (!Number.isInteger(number) || number < 1) {
    throw new UsageError([
      `${flag}: expected a whole number of 1 or more, got ${JSON.stringify(value)}`,
    ]);
  }
  return number;
}
