import path from "node:path";
import { UsageError } from "../../errors.js";
import { enqueueShards } from "../../scale/enqueue.js";
import type { QueueSettings } from "../../scale/queue-settings.js";
import { type QueueBudget, setQueueBudget } from "../../scale/shared-spend.js";
import { captionOptionsOf } from "../../settings/config-options.js";
import { flagOf } from "../../settings/naming.js";
import { budgetProblems } from "../../settings/resolve-run-options.js";
import { valueOrDefault } from "../../settings/table.js";
import type { CommandIo } from "../command-io.js";
import { loadConfig } from "../context.js";
import { exitCodeOf } from "../exit-codes.js";
import { readJsonSchema } from "../input-files.js";
import { openRedis, queueOf, warnRunOnly } from "../scale-io.js";

/** `caption enqueue <inputs..> --queue NAME --out DIR`: shards and jobs for the images. */
export async function run(
  args: Record<string, unknown>,
  { context, reporter }: CommandIo,
): Promise<number> {
  const config = loadConfig(args, context, reporter, "enqueue");
  warnRunOnly(config, "enqueue", (text) => reporter.say(text, "warn"));
  const queue = queueOf(config);
  const folder = config.shardFolder;
  if (folder === undefined) throw new UsageError(["--out: required"]);
  const settings: QueueSettings = {
    queue,
    dir: folder,
    cwd: context.cwd,
    ...captionOptionsOf(config),
    jsonSchema: await readJsonSchema(config.jsonSchema, config.jsonSchemaFrom),
    rpm: config.values.rpm,
  };
  const priceless = budgetProblems({ ...config.values, nameSetting: flagOf });
  if (priceless.length > 0) throw new UsageError(priceless);
  const redis = await openRedis(config);
  try {
    const report = await enqueueShards({
      queue,
      redis,
      inputs: (args.inputs as string[]).map(String),
      cwd: context.cwd,
      shardSize: valueOrDefault(config.values, "shardSize"),
      settings,
      retryFailed: args.retryFailed === true,
      followSymlinks: config.outputs.followSymlinks === true,
      nameSetting: flagOf,
      attempts: valueOrDefault(config.values, "shardAttempts"),
      backoffSeconds: valueOrDefault(config.values, "shardBackoff"),
      onWarning: (text) => reporter.say(text, "warn"),
    });
    const parts = [
      `${report.newShards} new shards (${report.newImages} images)`,
      `${report.alreadyQueued} already queued`,
      `${report.done} done`,
    ];
    if (report.readded) parts.push(`${report.readded} added again`);
    if (report.retried) parts.push(`${report.retried} failed shards retried`);
    const budget = {
      tokens: config.values.budgetTokens,
      cost: config.values.budgetCost,
      inputPrice: config.values.inputPrice,
      outputPrice: config.values.outputPrice,
    };
    if (Object.values(budget).some((value) => value !== undefined)) {
      // A fresh budget for all the queue's workers: what they spent before is forgotten.
      await setQueueBudget(redis, queue, budget);
      parts.push(`a fresh budget of ${budgetShown(budget)} for all its workers`);
    }
    reporter.say(
      `queue ${queue}: ${parts.join(", ")}; ${report.images} images in all → ${path.relative(context.cwd, settings.dir) || "."}`,
      "info",
    );
    return exitCodeOf({ done: true });
  } finally {
    redis.disconnect();
  }
}

function budgetShown(budget: QueueBudget): string {
  const limits = [
    budget.tokens === undefined ? null : `${budget.tokens} tokens`,
    budget.cost === undefined ? null : `cost ${budget.cost}`,
  ].filter((limit) => limit !== null);
  return limits.length > 0 ? limits.join(" or ") : "nothing but prices";
}
