import path from "node:path";
import { UsageError } from "../../errors.js";
import {
  DEFAULT_ATTEMPTS,
  DEFAULT_BACKOFF_SECONDS,
  DEFAULT_SHARD_SIZE,
} from "../../scale/defaults.js";
import { enqueueShards } from "../../scale/enqueue.js";
import type { QueueSettings } from "../../scale/queue-settings.js";
import { captionOptionsOf } from "../../settings/config-options.js";
import { flagOf } from "../../settings/naming.js";
import type { CommandIo } from "../command-io.js";
import { loadConfig } from "../context.js";
import { EXIT } from "../exit-codes.js";
import { readJsonSchema } from "../input-files.js";
import { openRedis, queueOf } from "../scale-io.js";

/** `caption enqueue <inputs..> --queue NAME --out DIR`: shards and jobs for the images. */
export async function run(
  args: Record<string, unknown>,
  { context, reporter }: CommandIo,
): Promise<number> {
  const config = loadConfig(args, context, reporter, "enqueue");
  const queue = queueOf(config);
  const folder = config.shardFolder;
  if (folder === undefined) throw new UsageError(["--out: required"]);
  const settings: QueueSettings = {
    queue,
    dir: folder,
    cwd: context.cwd,
    ...captionOptionsOf(config),
    jsonSchema: await readJsonSchema(config.jsonSchema, config.jsonSchemaFrom),
    rpm: config.rpm,
  };
  const redis = await openRedis(config);
  try {
    const report = await enqueueShards({
      queue,
      redis,
      inputs: (args.inputs as string[]).map(String),
      cwd: context.cwd,
      shardSize: config.values.shardSize ?? DEFAULT_SHARD_SIZE,
      settings,
      retryFailed: args.retryFailed === true,
      followSymlinks: config.outputs.followSymlinks === true,
      nameSetting: flagOf,
      attempts: config.values.shardAttempts ?? DEFAULT_ATTEMPTS,
      backoffSeconds: config.values.shardBackoff ?? DEFAULT_BACKOFF_SECONDS,
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
