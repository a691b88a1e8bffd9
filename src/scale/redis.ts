import { Redis, type RedisOptions } from "ioredis";
import { RunAbortedError } from "../errors.js";
import { withoutPassword } from "../util/redact.js";

/** The URL as it may be shown: a password in it is not. */
export function shownRedisUrl(url: string): string {
  return withoutPassword(url).replace(/\/$/, "");
}

/**
 * A connection that keeps trying when Redis goes away mid-run (BullMQ's workers need
 * `maxRetriesPerRequest: null`), made only after `reachRedis` said Redis answers.
 */
export function connectRedis(url: string, options: RedisOptions = {}): Redis {
  return new Redis(url, {
    maxRetriesPerRequest: null,
    enableReadyCheck: true,
    // Back off to 2 s between attempts, for ever: a worker holds its shard and reconnects.
    retryStrategy: (times) => Math.min(2000, 100 * times),
    ...options,
  });
}

/**
 * Redis answering at start, or a clear error (exit 1): one attempt with a short timeout, so a
 * typo in the URL or a stopped server is said at once rather than retried for ever.
 */
export async function reachRedis(url: string): Promise<void> {
  // The URL's form is the settings table's to check (a redis:// or rediss:// URL).
  const probe = new Redis(url, {
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    connectTimeout: 3000,
    enableOfflineQueue: false,
  });
  // ioredis rejects with "Connection is closed"; the reason came as an error event before.
  let cause: Error | null = null;
  probe.on("error", (error: Error) => {
    cause ??= error;
  });
  try {
    await probe.connect();
    await probe.ping();
  } catch (error) {
    const reason = (cause as Error | null)?.message ?? (error as Error).message;
    throw new RunAbortedError(
      "redis_unreachable",
      `cannot reach Redis at ${shownRedisUrl(url)} (${reason}); start it (redis-server) or point --redis or CAPTION_REDIS_URL at it`,
      { cause: error },
    );
  } finally {
    probe.disconnect();
  }
}
