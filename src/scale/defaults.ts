/**
 * The defaults of the many-machines commands, apart from the modules that use them so that the
 * settings table (and `caption --help`) can show them without loading BullMQ or ioredis.
 */
export const DEFAULT_REDIS_URL = "redis://127.0.0.1:6379";
export const DEFAULT_SHARD_SIZE = 1000;
/** Tries of a shard whose own files fail, and the seconds before the first retry (doubling). */
export const DEFAULT_ATTEMPTS = 5;
export const DEFAULT_BACKOFF_SECONDS = 10;
export const DEFAULT_SHARDS_AT_ONCE = 1;
export const DEFAULT_STALL_SECONDS = 30;
