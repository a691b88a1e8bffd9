import path from "node:path";
import { UsageError } from "../../errors.js";
import {
  DEFAULT_ATTEMPTS,
  DEFAULT_BACKOFF_SECONDS,
  DEFAULT_SHARD_SIZE,
  enqueueShards,
} from "../../scale/enqueue.js";
import { checkQueueName, type QueueSettings } from "../../scale/queue-settings.js";
import { captionOptionsOf } from "../../settings/config-options.js";
import { flagOf } from "../../settings/naming.js";
import type { CommandIo } from "../command-io.js";
import { loadConfig } from "../context.js";
import { EXIT } from "../exit-codes.js";
import { readJsonSchema } from "../input-files.js";
import { openRedis, positiveInt } from "../scale-io.js";

/** `caption enqueue <inputs..> --queue NAME --out DIR`: shards and jobs for the images. */
export async function run(
  args: Record<string, unknown>,
  { context, reporter }: CommandIo,
): Promise<number> {
  const queue = checkQueueName(args.queue);
  if (typeof args.out !== "string" || args.out === "") {
    throw new UsageError([
      "--out: required, the folder (on storage every worker sees) where shards and their captions go",
    ]);
  }
  const shardSize = positiveInt(args.shardSize, "--shard-size", DEFAULT_SHARD_SIZE);
  const config = loadConfig(args, context, reporter);
  const settings: QueueSettings = {
    queue,
    dir: path.resolve(context.cwd, args.out),
    cwd: context.cwd,
    ...captionOptionsOf(config),
    jsonSchema: await readJsonSchema(config.jsonSchema, config.jsonSchemaFrom),
    rpm: config.rpm,
  };
  const redis = await openRedis(args, context.env);
  try {
    const report = await enqueueShards({
      queue,
      redis,
      inputs: (args.inputs as string[]).map(String),
      cwd: context.cwd,
      shardSize,
      settings,
      retryFailed: args.retryFailed === true,
      followSymlinks: config.outputs.followSymlinks === true,
      nameSetting: flagOf,
      attempts: positiveInt(args.shardAttempts, "--shard-attempts", DEFAULT_ATTEMPTS),
      backoffSeconds: positiveInt(args.shardBackoff, "--shard-backoff", DEFAULT_BACKOFF_SECONDS),
      onWarning: (text) => reporter.say(text, "warn"),
    });
    const parts = [
      `${report.newShards} new shards (${report.newImages} images)`,
      `${report.alreadyQueued} already queued`,
      `${report.done} done`,
    ];
    if (report.readded) parts.push(`${report.readded} added again`);
    if (report.retried) parts.push(`${report.retried} failed shards retried`);
    reporter.say(
      `queue ${queue}: ${parts.join(", ")}; ${report.images} images in all → ${path.relative(context.cwd, settings.dir) || "."}`,
      "info",
    );
    return EXIT.ok;
  } finally {
    redis.disconnect();
  }
}
