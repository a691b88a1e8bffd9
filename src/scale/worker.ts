import { hostname } from "node:os";
import { DelayedError, Queue, WaitingError, Worker } from "bullmq";
import type { RunControl } from "../run/control.js";
import { ShardLanes } from "./overlap.js";
import { type ShardJobOptions, shardProcessor } from "./shard-job.js";

export interface WorkerOptions extends ShardJobOptions {
  /** Shards captioned at once by this worker. @default 1 */
  shardsAtOnce: number;
  /**
   * How long a shard stays with a worker that stopped renewing it (killed, or cut off from
   * Redis) before another takes it: BullMQ's lock duration and stall check. @default 30
   */
  stallSeconds: number;
  /** Exit once the queue holds nothing waiting, active or delayed. */
  untilEmpty: boolean;
}

/** How long a worker whose endpoints are all down leaves the queue alone. */
const RESTING_MS = 30_000;
const CONNECTION_TROUBLE =
  /ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE|ENOTFOUND|EAI_AGAIN|Connection is closed|connect/i;

export interface WorkerResult {
  shards: number;
  failedShards: number;
  /** Why the worker stopped by itself (a wrong key or model fails every shard), if it did. */
  settled: string | null;
  /** The queue's budget, reached: the worker stopped there, its shards back in the queue. */
  budgetReached: string | null;
}

export interface WorkerHandle {
  /** Resolves when the worker has stopped: asked to, or the queue was empty with --until-empty. */
  finished: Promise<WorkerResult>;
  /** Finish the requests in flight, release the shards held, stop. */
  stop(): void;
  /** Cancel the requests in flight too. */
  abort(): void;
}

/**
 * Takes shards from the queue and captions each with the normal pipeline. A job completes only
 * once its shard's output is whole (the done file written); a shard stopped by a signal is put
 * back, untouched in its attempts; one whose run aborted is retried by BullMQ with backoff, and
 * whoever takes a shard next resumes from the rows already written.
 */
export function startWorker(options: WorkerOptions): WorkerHandle {
  const name = `${hostname()}:${process.pid}`;
  const running = new Set<RunControl>();
  let stopping = false;
  /** Why this worker stopped by itself: a setting that fails every shard. */
  let settled: string | null = null;
  let budgetReached: string | null = null;
  let shards = 0;
  let failedShards = 0;
  /** Taking no shard for a while: this worker's endpoints are down. */
  let resting = false;

  const lanes = new ShardLanes(options.shardsAtOnce, (jobs) => {
    const more = jobs > worker.concurrency;
    worker.concurrency = Math.max(1, jobs);
    // BullMQ's loop waits on the shards in hand and sees a raised concurrency only once one
    // ends; resuming is its own way to wake that loop and take one more now.
    if (more && !stopping && !resting) {
      void worker
        .pause(true)
        .then(() => (stopping || resting ? undefined : worker.resume()))
        .catch(() => {});
    }
  });

  const processor = shardProcessor({
    options,
    name,
    lanes,
    running,
    stopping: () => stopping,
    settle: (text) => {
      settled = text;
      stopAll();
    },
    rest: () => {
      options.say(
        `taking no shard for ${RESTING_MS / 1000} s: this worker's endpoints are down`,
        "warn",
      );
      resting = true;
      void worker.pause(true).catch(() => {});
      setTimeout(() => {
        resting = false;
        if (!stopping) worker.resume();
      }, RESTING_MS).unref();
    },
    shardDone: () => {
      shards += 1;
    },
    spent: (text) => {
      budgetReached ??= text;
      stopAll();
    },
  });

  const lockMs = options.stallSeconds * 1000;
  const worker = new Worker(options.queue, processor, {
    connection: options.redis,
    concurrency: options.shardsAtOnce,
    name,
    lockDuration: lockMs,
    stalledInterval: lockMs,
    // A shard whose worker was killed goes to another a few times before it counts as failed.
    maxStalledCount: 3,
    autorun: true,
  });
  worker.on("failed", (job, error) => {
    if (!job || error instanceof DelayedError || error instanceof WaitingError) return;
    failedShards += 1;
  });
  let redisLost = false;
  worker.on("error", (error) => {
    if (!CONNECTION_TROUBLE.test(error.message)) {
      // A job another worker took over meanwhile cannot be completed here: it is done there.
      options.say(`BullMQ: ${error.message}`, "warn");
      return;
    }
    if (!redisLost) {
      redisLost = true;
      options.say(
        `lost Redis (${error.message}); holding the shards in hand, taking no new ones, reconnecting`,
        "warn",
      );
    }
  });
  options.redis.on("ready", () => {
    if (redisLost) options.say("Redis is back; taking shards again", "info");
    redisLost = false;
  });

  let resolveFinished: (value: WorkerResult) => void = () => {};
  const finished = new Promise<WorkerResult>((resolve) => {
    resolveFinished = resolve;
  });
  let closing: Promise<void> | null = null;
  const close = () => {
    closing ??= worker
      .close()
      .then(() => resolveFinished({ shards, failedShards, settled, budgetReached }));
    return closing;
  };

  let idleCheck: NodeJS.Timeout | null = null;
  if (options.untilEmpty) {
    const queue = new Queue(options.queue, { connection: options.redis });
    idleCheck = setInterval(async () => {
      if (running.size > 0 || stopping) return;
      try {
        const counts = await queue.getJobCounts("wait", "active", "delayed", "prioritized");
        if (Object.values(counts).every((count) => count === 0)) {
          if (idleCheck) clearInterval(idleCheck);
          await queue.close();
          await close();
        }
      } catch {
        // Redis away: try again at the next tick.
      }
    }, 1000);
  }

  function stopAll(): void {
    stopping = true;
    lanes.stop();
    if (idleCheck) clearInterval(idleCheck);
    for (const control of running) control.stop();
    void close();
  }

  return {
    finished,
    stop: stopAll,
    abort() {
      stopping = true;
      lanes.stop();
      for (const control of running) control.abort();
      void close();
    },
  };
}
