import { rm } from "node:fs/promises";
import { hostname } from "node:os";
import { DelayedError, type Job, Queue, WaitingError, Worker } from "bullmq";
import type { Redis } from "ioredis";
import { ModelNotServedError } from "../errors.js";
import { RunControl } from "../run/control.js";
import type { RunEvent, RunSummary } from "../run/events.js";
import type { RequestBudget } from "../send/endpoint.js";
import type { ResolvedEndpoint } from "../settings/run-options.js";
import { writeWhole } from "../sinks/write-whole.js";
import type { FailureRecord } from "../types.js";
import { statOrNull } from "../util/folders.js";
import { ShardLanes, ShardTrack } from "./overlap.js";
import { setShardDone, tickFinished } from "./progress.js";
import {
  readDone,
  readShard,
  readShardRecords,
  type Shard,
  type ShardFiles,
  shardFiles,
  writeDone,
} from "./shards.js";

/** What a worker hears from a shard's run, and the budget it gives the run's requests. */
export interface ShardWatch {
  onEvent(event: RunEvent): void;
  /** The budget of the run's requests to `endpoint`: `shared` (the rpm), in the worker's turn. */
  budget(endpoint: ResolvedEndpoint, shared: RequestBudget): RequestBudget;
}

/** Captions these images of a shard (those still there) into its files. */
export type ShardRun = (
  shard: Shard,
  present: string[],
  files: ShardFiles,
  control: RunControl,
  watch: ShardWatch,
) => Promise<RunSummary>;

/** Why a shard waits in the delayed set, in its progress for `caption status`. */
export type HeldBack = "locked";

export interface WorkerOptions {
  queue: string;
  redis: Redis;
  dir: string;
  run: ShardRun;
  /** How rows name an image of a shard (relative to where enqueue ran). */
  displayPath: (file: string) => string;
  /** Shards captioned at once by this worker. @default 1 */
  shardsAtOnce: number;
  /**
   * How long a shard stays with a worker that stopped renewing it (killed, or cut off from
   * Redis) before another takes it: BullMQ's lock duration and stall check. @default 30
   */
  stallSeconds: number;
  /** Exit once the queue holds nothing waiting, active or delayed. */
  untilEmpty: boolean;
  say: (text: string, level: "info" | "warn" | "error") => void;
}

/** A shard another worker's run still holds the lock of waits this long before it is tried again. */
const LOCKED_DELAY_MS = 10_000;
/** How long a worker whose endpoints are all down leaves the queue alone. */
const RESTING_MS = 30_000;
const CONNECTION_TROUBLE =
  /ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE|ENOTFOUND|EAI_AGAIN|Connection is closed|connect/i;

function missingRecord(displayed: string): FailureRecord {
  return {
    path: displayed,
    code: "file_missing",
    message: "the file is gone since it was enqueued; restore it and enqueue again",
    attempts: 0,
    status: null,
    created_at: new Date().toISOString(),
  };
}

export interface WorkerResult {
  shards: number;
  failedShards: number;
  /** Why the worker stopped by itself (a wrong key or model fails every shard), if it did. */
  settled: string | null;
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
 * Aborts that are about the shard's own files: retried by BullMQ with backoff, and failed in the
 * end. Every other abort is about this worker (its endpoints, its key, a lock another worker
 * holds): the shard goes back for another worker without using an attempt.
 */
const SHARD_OWN = new Set(["output_unreadable", "output_write_failed", "errors_not_writable"]);
/** Worker-local aborts that no retry by this worker can cure: it stops. */
const SETTLED = new Set([
  "model_not_found",
  "auth_rejected",
  "trial_key_refused",
  "endpoint_wrong",
  "no_endpoint_left",
]);

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

  const processor = async (job: Job<{ id: string }>, token?: string) => {
    const id = job.data.id;
    const already = await readDone(options.dir, id);
    if (already) {
      await setShardDone(
        options.redis,
        options.queue,
        id,
        already.captioned + already.failed,
      ).catch(() => {});
      return { already: true };
    }
    const shard = await readShard(options.dir, id);
    const files = shardFiles(options.dir, id);
    const track = new ShardTrack(shard.files.length);
    lanes.join(track);
    try {
      return await runShard(job, token, shard, files, track);
    } finally {
      lanes.leave(track);
    }
  };

  const runShard = async (
    job: Job<{ id: string }>,
    token: string | undefined,
    shard: Shard,
    files: ShardFiles,
    track: ShardTrack,
  ) => {
    const id = shard.id;
    // An image deleted since it was enqueued is reported, as a failure of its own, not lost.
    const present: string[] = [];
    const missing: FailureRecord[] = [];
    for (const file of shard.files) {
      if (await statOrNull(file)) present.push(file);
      else missing.push(missingRecord(options.displayPath(file)));
    }
    if (missing.length > 0) {
      await writeWhole(files.missing, missing.map((row) => `${JSON.stringify(row)}\n`).join(""));
      options.say(
        `shard ${id}: ${missing.length} images are gone since they were enqueued`,
        "warn",
      );
    } else {
      await rm(files.missing, { force: true });
    }
    const control = new RunControl();
    running.add(control);
    if (stopping) control.stop();
    const total = shard.files.length;
    /** Images the shard's files held when this run took its lock; null until it has. */
    let held: number | null = null;
    let finished = 0;
    let reported = 0;
    const report = async () => {
      const fresh = finished - reported;
      reported = finished;
      const done = held === null ? null : held + finished;
      // Progress is for `caption status`; a shard goes on without Redis, so nothing waits on it.
      await Promise.all([
        job.updateProgress({ worker: name, done: done ?? 0, total }),
        done === null ? null : setShardDone(options.redis, options.queue, id, done),
        fresh > 0 ? tickFinished(options.redis, options.queue, fresh) : null,
      ]).catch(() => {});
    };
    void report();
    const ticker = setInterval(() => void report(), 500);
    const watch: ShardWatch = {
      onEvent: (event) => {
        track.observe(event);
        // Said once the run holds the shard's lock: what its files hold then is the run's start.
        if (event.type === "discovered") held = event.alreadyDone + missing.length;
        else if (event.type === "captioned" || event.type === "failed") finished += 1;
      },
      budget: (endpoint, shared) => lanes.budget(track, endpoint, shared),
    };
    let summary: RunSummary | null = null;
    try {
      if (present.length > 0) {
        summary = await options.run(shard, present, files, control, watch);
      }
    } catch (error) {
      // A setting the queue fixed that this worker's servers refuse before any image (a model
      // none of them serves): every shard would fail alike, so it goes back and the worker stops.
      if (!(error instanceof ModelNotServedError)) throw error;
      const text = `shard ${id}: ${error.problems.join("; ")}`;
      options.say(text, "error");
      await job.moveToWait(token);
      settled = text;
      stopAll();
      throw new WaitingError();
    } finally {
      clearInterval(ticker);
      running.delete(control);
      await report();
    }
    const aborted = summary?.aborted ?? null;
    if (aborted) {
      const text = `shard ${id}: ${aborted.message}`;
      options.say(text, "error");
      if (SHARD_OWN.has(aborted.code)) throw new Error(text);
      if (aborted.code === "output_locked") {
        // Another run writes its output: tried again a little later, and said so in status.
        const heldBack: HeldBack = "locked";
        await job.updateProgress({ worker: name, done: 0, total, heldBack }).catch(() => {});
        await job.moveToDelayed(Date.now() + LOCKED_DELAY_MS, token);
        throw new DelayedError();
      }
      // Back in the queue for another worker, its attempts untouched.
      await job.moveToWait(token);
      if (SETTLED.has(aborted.code)) {
        // Every shard would fail alike here: this worker stops rather than fail them one by one.
        settled = text;
        stopAll();
      } else if (aborted.code === "endpoint_unreachable" && !stopping) {
        // Its servers are down: leave the shards to others for a while, then try again.
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
      }
      throw new WaitingError();
    }
    const incomplete = summary !== null && (summary.unfinished > 0 || summary.errorsFileProblem);
    // Stopped with every image written, the shard is done: nothing is left for another worker.
    if (incomplete) {
      // Back in the queue at once, its attempts untouched; the rows written stay for the next.
      await job.moveToWait(token);
      options.say(`shard ${id}: released (${finished} of ${total} images this time)`, "info");
      throw new WaitingError();
    }
    // Counted from the files as merge reads them: rows earlier workers wrote are the shard's too.
    const whole = await readShardRecords(files);
    const captioned = whole.rows.length;
    const failed = whole.failures.length;
    await writeDone(options.dir, id, {
      captioned,
      failed,
      worker: name,
      finishedAt: new Date().toISOString(),
    });
    await setShardDone(options.redis, options.queue, id, captioned + failed).catch(() => {});
    shards += 1;
    options.say(`shard ${id}: done, ${captioned} captioned, ${failed} failed`, "info");
    return { captioned, failed };
  };

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
    closing ??= worker.close().then(() => resolveFinished({ shards, failedShards, settled }));
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
