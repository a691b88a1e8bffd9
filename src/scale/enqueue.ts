import path from "node:path";
import { Queue } from "bullmq";
import type { Redis } from "ioredis";
import { taskInput } from "../archive/containers.js";
import { discoverImages } from "../discover/discover.js";
import { byOptionName, type NameSetting } from "../errors.js";
import { linksWarning, skippedWarning } from "../run/source.js";
import { lockOutput } from "../sinks/lock.js";
import { ensureFolder } from "../util/folders.js";
import { seedShardDone, setEnqueued } from "./progress.js";
import { addEnqueuedInputs, fixSettings, type QueueSettings } from "./queue-settings.js";
import { planShards, readDone, readShards, shardFolder, writeShard } from "./shards.js";

/**
 * How BullMQ treats a shard job: a failure of the shard's own (its output damaged, a disk full)
 * retried with exponential backoff, and kept once finished so its id stays taken.
 */
export function shardJobOptions(attempts: number, backoffSeconds: number) {
  return {
    attempts,
    backoff: { type: "exponential", delay: backoffSeconds * 1000 },
    removeOnComplete: false,
    removeOnFail: false,
  } as const;
}

export interface EnqueueRequest {
  queue: string;
  redis: Redis;
  inputs: readonly string[];
  cwd: string;
  shardSize: number;
  settings: QueueSettings;
  /** Put failed shards back in the queue. */
  retryFailed: boolean;
  /** Walk symlinks to folders out of a folder input too (never loops). @default false */
  followSymlinks?: boolean | undefined;
  /** How a message names a setting (`--follow-symlinks`). */
  nameSetting?: NameSetting | undefined;
  attempts: number;
  backoffSeconds: number;
  onWarning: (text: string) => void;
}

export interface EnqueueReport {
  /** Shards made by this enqueue, and the images in them. */
  newShards: number;
  newImages: number;
  /** Shards from earlier that were not in the queue any more and were added again. */
  readded: number;
  /** Shards already in the queue (waiting, active, completed or failed), left as they are. */
  alreadyQueued: number;
  /** Failed shards put back by --retry-failed. */
  retried: number;
  /** Shards whose output is whole. */
  done: number;
  images: number;
}

/**
 * Splits the images the inputs hold into shards (only those no shard holds yet), writes their
 * manifests, and adds a job per shard not yet done. Enqueueing the same inputs again adds
 * nothing; a grown folder adds shards of its new images only. Enqueues of one DIR run one at a
 * time (a lock on DIR/shards), so two never shard the same new image twice.
 */
export async function enqueueShards(request: EnqueueRequest): Promise<EnqueueReport> {
  const { settings } = request;
  const folder = shardFolder(settings.dir);
  await ensureFolder(folder);
  await fixSettings(request.redis, request.queue, settings);
  const lock = await lockOutput(path.join(folder, "enqueue"), request.onWarning);
  const queue = new Queue(request.queue, { connection: request.redis });
  try {
    const discovery = await discoverImages(request.inputs, request.cwd, {
      followSymlinks: request.followSymlinks,
      video: settings.video?.include,
    });
    const unfollowed = linksWarning(
      discovery.linksNotFollowed,
      request.nameSetting ?? byOptionName,
    );
    if (unfollowed) request.onWarning(unfollowed);
    await addEnqueuedInputs(
      settings.dir,
      request.inputs.map((input) => path.resolve(request.cwd, input)),
    );
    for (const input of discovery.emptyInputs) request.onWarning(`no images in ${input}`);
    const noImage = skippedWarning(discovery.skippedSamples);
    if (noImage) request.onWarning(noImage);
    // Not queued: a worker could do no more with it than fail it.
    for (const { task, error } of discovery.brokenContainers) {
      request.onWarning(`${task.path} is not queued: ${error.message}`);
    }
    const existing = await readShards(settings.dir);
    const fresh = planShards(
      // An image inside a shard is enqueued as `<shard>#<key>`, which a worker's run takes as it is.
      discovery.tasks.map(taskInput),
      existing,
      request.shardSize,
    );
    for (const shard of fresh) await writeShard(settings.dir, shard);
    const all = [...existing, ...fresh];
    const earlier = new Set(existing.map((shard) => shard.id));
    const imagesIn = (shards: readonly { files: string[] }[]) =>
      shards.reduce((sum, shard) => sum + shard.files.length, 0);
    const report: EnqueueReport = {
      newShards: fresh.length,
      newImages: imagesIn(fresh),
      readded: 0,
      alreadyQueued: 0,
      retried: 0,
      done: 0,
      images: imagesIn(all),
    };
    // Counted from the manifests, the truth, each time: a flushed Redis gets it right again.
    await setEnqueued(request.redis, request.queue, report.images);
    for (const shard of all) {
      const done = await readDone(settings.dir, shard.id);
      if (done) {
        report.done += 1;
        // A Redis emptied since still counts what the finished shards hold.
        await seedShardDone(request.redis, request.queue, shard.id, done.captioned + done.failed);
        continue;
      }
      const job = await queue.getJob(shard.id);
      if (job) {
        if (request.retryFailed && (await job.isFailed())) {
          // With all its attempts again: it failed for a reason the user has now fixed.
          await job.retry("failed", { resetAttemptsMade: true, resetAttemptsStarted: true });
          report.retried += 1;
        } else {
          report.alreadyQueued += 1;
        }
        continue;
      }
      await queue.add(
        "shard",
        { id: shard.id },
        { ...shardJobOptions(request.attempts, request.backoffSeconds), jobId: shard.id },
      );
      if (earlier.has(shard.id)) report.readded += 1;
    }
    return report;
  } finally {
    await queue.close();
    await lock.release();
  }
}
