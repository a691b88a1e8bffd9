import { Redis } from "ioredis";

/** The Redis the machine runs (CI starts it); the tests that need it use this one. */
export const REDIS_URL = "redis://127.0.0.1:6379";

/** Whether a Redis answers at `url`, within a second, without retrying. */
export async function redisAnswers(url: string = REDIS_URL): Promise<boolean> {
  const probe = new Redis(url, {
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    connectTimeout: 1000,
  });
  probe.on("error", () => {});
  try {
    await probe.connect();
    return (await probe.ping()) === "PONG";
  } catch {
    return false;
  } finally {
    probe.disconnect();
  }
}
