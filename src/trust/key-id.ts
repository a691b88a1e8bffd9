import { randomBytes, scrypt, scryptSync } from "node:crypto";
import type { Redis } from "ioredis";

/** The salt every worker of one Redis derives key ids with: made once, by the first to ask. */
export const KEY_SALT_NAME = "caption:key-salt";

/**
 * scrypt's cost: 16 MiB and some 50–100 ms a key on a 2-core box, paid once per key per process.
 * A reader of Redis who has the salt pays the same for every key they guess.
 */
const COST = { N: 2 ** 14, r: 8, p: 1, maxmem: 64 * 1024 * 1024 } as const;
const ID_BYTES = 12;

/**
 * What names an API key in Redis: a slow salted hash (scrypt), so a reader of Redis cannot test
 * candidate keys cheaply, the way 12 hex digits of a plain SHA-256 let them. The salt is random,
 * kept in Redis (SET NX, so every worker sharing that Redis gets the same one), and the same key
 * gives the same id in every worker: workers sharing a key still share its budget.
 */
export async function keySalt(redis: Redis): Promise<string> {
  await redis.set(KEY_SALT_NAME, randomBytes(16).toString("hex"), "NX");
  const salt = await redis.get(KEY_SALT_NAME);
  if (!salt) throw new Error(`${KEY_SALT_NAME} is missing from Redis right after it was set`);
  return salt;
}

/** A key's id under `salt`: 24 hex digits of scrypt, nothing of the key a reader can test fast. */
export function keyIdOf(apiKey: string | undefined, salt: string): Promise<string> {
  return new Promise((resolve, reject) => {
    scrypt(apiKey ?? "", salt, ID_BYTES, COST, (error, derived) => {
      if (error) reject(error);
      else resolve(derived.toString("hex"));
    });
  });
}

/**
 * The ids of the keys a worker was given, derived up front (off the event loop, in parallel), and
 * a lookup that derives any other key once, in place, should one turn up.
 */
export async function keyIds(
  redis: Redis,
  apiKeys: readonly (string | undefined)[],
): Promise<(apiKey: string | undefined) => string> {
  const salt = await keySalt(redis);
  const known = new Map<string, string>();
  await Promise.all(
    [...new Set(apiKeys.map((key) => key ?? ""))].map(async (key) => {
      known.set(key, await keyIdOf(key, salt));
    }),
  );
  return (apiKey) => {
    const key = apiKey ?? "";
    let id = known.get(key);
    if (id === undefined) {
      id = scryptSync(key, salt, ID_BYTES, COST).toString("hex");
      known.set(key, id);
    }
    return id;
  };
}
