import { rm } from "node:fs/promises";
import { DelayedError, type Job, WaitingError } from "bullmq";
import type { Redis } from "ioredis";
import { splitMemberInput } from "../archive/containers.js";
import { ModelNotServedError } from "../errors.js";
import { RunControl } from "../run/control.js";
import type { RunSummary } from "../run/events.js";
import { writeWhole } from "../sinks/write-whole.js";
import type { FailureRecord } from "../types.js";
import { statOrNull } from "../util/folders.js";
import { type ShardLanes, ShardTrack } from "./overlap.js";
import { setShardDone, tickFinished } from "./progress.js";
import type { ShardRun, ShardWatch } from "./shard-run.js";
import {
  readDone,
  readShard,
  readShardRecords,
  type Shard,
  type ShardFiles,
  shardFiles,
  writeDone,
} from "./shards.js";

/** Why a shard waits in the delayed set, in its progress for `caption status`. */
export type HeldBack = "locked";

/** What taking a shard needs of the worker's options. */
export interface ShardJobOptions {
  queue: string;
  redis: Redis;
  dir: string;
  run: ShardRun;
  /** How rows name an image of a shard (relative to where enqueue ran). */
  displayPath: (file: string) => string;
  say: (text: string, level: "info" | "warn" | "error") => void;
}

/** What a shard's job shares with the worker that took it. */
export interface ShardHost {
  options: ShardJobOptions;
  /** The worker's name (host and pid), in the shard's progress and its done file. */
  name: string;
  lanes: ShardLanes;
  /** The runs under way, which the worker stops or aborts with itself. */
  running: Set<RunControl>;
  /** Whether the worker is stopping. */
  stopping(): boolean;
  /** Every shard would fail alike here (`text` says why): the worker stops. */
  settle(text: string): void;
  /** This worker's endpoints are down: it takes no shard for a while. */
  rest(): void;
  /** The queue's budget is spent (`text` says how far): the worker stops, as every worker will. */
  spent(text: string): void;
  /** A shard is done. */
  shardDone(): void;
}

/** A shard another worker's run still holds the lock of waits this long before it is tried again. */
const LOCKED_DELAY_MS = 10_000;

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

/** BullMQ's processor of shard jobs, for the worker `host`: see startWorker. */
export function shardProcessor(host: ShardHost) {
  const { options, name, running, lanes } = host;

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
      // A sample of a shard is there while its shard is (the run reports a sample gone from it).
      const onDisk =
        (await statOrNull(file)) ?? (await statOrNull(splitMemberInput(file)?.container ?? file));
      if (onDisk) present.push(file);
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
    if (host.stopping()) control.stop();
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
      host.settle(text);
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
        host.settle(text);
      } else if (aborted.code === "endpoint_unreachable" && !host.stopping()) {
        // Its servers are down: leave the shards to others for a while, then try again.
        host.rest();
      }
      throw new WaitingError();
    }
    const incomplete = summary !== null && (summary.unfinished > 0 || summary.errorsFileProblem);
    // Stopped with every image written, the shard is done: nothing is left for another worker.
    if (incomplete) {
      // Back in the queue at once, its attempts untouched; the rows written stay for the next.
      await job.moveToWait(token);
      options.say(`shard ${id}: released (${finished} of ${total} images this time)`, "info");
      const reached = summary?.budgetReached;
      if (reached) {
        host.spent(
          `the queue's ${reached.kind === "tokens" ? "token" : "cost"} budget of ${reached.limit} is reached (${reached.spent} spent by its workers)`,
        );
      }
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
    host.shardDone();
    options.say(`shard ${id}: done, ${captioned} captioned, ${failed} failed`, "info");
    return { captioned, failed };
  };

  return processor;
}
