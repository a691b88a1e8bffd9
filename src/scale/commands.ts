import path from "node:path";
import type { Redis } from "ioredis";
import { EXIT, exitCodeOf } from "../cli/exit-codes.js";
import type { Reporter } from "../cli/progress.js";
import { abandonRun } from "../cli/signals.js";
import { type NameSetting, RunAbortedError, UsageError } from "../errors.js";
import { captionImages } from "../run/pipeline.js";
import type { FetchLike } from "../send/client.js";
import type { RequestBudget } from "../send/endpoint.js";
import { chooseOutputFormat } from "../settings/output-format.js";
import type { CaptionConfig } from "../settings/resolve.js";
import type { EndpointOptions, ResolvedEndpoint } from "../settings/run-options.js";
import { keyIds } from "../trust/key-id.js";
import {
  DEFAULT_ATTEMPTS,
  DEFAULT_BACKOFF_SECONDS,
  DEFAULT_SHARD_SIZE,
  enqueueShards,
} from "./enqueue.js";
import { type DatasetOutputs, mergeShards } from "./merge.js";
import {
  checkQueueName,
  type QueueSettings,
  readSettings,
  runOptionsOf,
} from "./queue-settings.js";
import { connectRedis, reachRedis, redisUrlOf } from "./redis.js";
import { sharedBudget } from "./shared-budget.js";
import { queueStatus, statusLines } from "./status.js";
import { startWorker } from "./worker.js";

/** What the scale-out commands borrow from the main CLI: config, keys, schema files. */
export interface ScaleContext {
  cwd: string;
  env: NodeJS.ProcessEnv;
  stdout: NodeJS.WritableStream & { isTTY?: boolean };
  fetch?: FetchLike | undefined;
  reporter: Reporter;
  loadConfig: (args: Record<string, unknown>) => CaptionConfig;
  chooseKey: (config: CaptionConfig) => {
    apiKey: string | undefined;
    endpoints: EndpointOptions[] | undefined;
  };
  readJsonSchema: (
    file: string | undefined,
    from: string,
  ) => Promise<Record<string, unknown> | undefined>;
  nameSetting: NameSetting;
  /** nameSetting for a run of this config, naming the config entries whose keys it set. */
  namesFor: (config: CaptionConfig) => NameSetting;
  /** The --sidecar, --hf-metadata and --xmp flags, checked as the main command checks them. */
  datasetOutputs: (args: Record<string, unknown>) => DatasetOutputs;
}

async function openRedis(args: Record<string, unknown>, context: ScaleContext): Promise<Redis> {
  const url = redisUrlOf(args.redis, context.env);
  await reachRedis(url);
  const redis = connectRedis(url);
  // Reported by whoever uses it; an unheard error event would end the process.
  redis.on("error", () => {});
  return redis;
}

function positiveInt(value: unknown, flag: string, fallback: number): number {
  if (value === undefined) return fallback;
  const number = Number(value);
  if (!Number.isInteger(number) || number < 1) {
    throw new UsageError([
      `${flag}: expected a whole number of 1 or more, got ${JSON.stringify(value)}`,
    ]);
  }
  return number;
}

/** `caption enqueue <inputs..> --queue NAME --out DIR`: shards and jobs for the images. */
export async function runEnqueue(
  args: Record<string, unknown>,
  context: ScaleContext,
): Promise<number> {
  const queue = checkQueueName(args.queue);
  if (typeof args.out !== "string" || args.out === "") {
    throw new UsageError([
      "--out: required, the folder (on storage every worker sees) where shards and their captions go",
    ]);
  }
  const shardSize = positiveInt(args.shardSize, "--shard-size", DEFAULT_SHARD_SIZE);
  const config = context.loadConfig(args);
  const settings: QueueSettings = {
    queue,
    dir: path.resolve(context.cwd, args.out),
    cwd: context.cwd,
    model: config.model,
    prompt: config.promptGiven ? config.prompt : undefined,
    jsonSchema: await context.readJsonSchema(config.jsonSchema, config.jsonSchemaFrom),
    tags: config.outputs.tags === true,
    rejectFlagged: config.outputs.rejectFlagged === true,
    maxTokens: config.maxTokens,
    temperature: config.temperature,
    prepare: config.prepare,
    prefix: config.outputs.prefix,
    suffix: config.outputs.suffix,
    rpm: config.rpm,
  };
  const redis = await openRedis(args, context);
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
      nameSetting: context.nameSetting,
      attempts: positiveInt(args.shardAttempts, "--shard-attempts", DEFAULT_ATTEMPTS),
      backoffSeconds: positiveInt(args.shardBackoff, "--shard-backoff", DEFAULT_BACKOFF_SECONDS),
      onWarning: (text) => context.reporter.say(text, "warn"),
    });
    const parts = [
      `${report.newShards} new shards (${report.newImages} images)`,
      `${report.alreadyQueued} already queued`,
      `${report.done} done`,
    ];
    if (report.readded) parts.push(`${report.readded} added again`);
    if (report.retried) parts.push(`${report.retried} failed shards retried`);
    context.reporter.say(
      `queue ${queue}: ${parts.join(", ")}; ${report.images} images in all → ${path.relative(context.cwd, settings.dir) || "."}`,
      "info",
    );
    return EXIT.ok;
  } finally {
    redis.disconnect();
  }
}

/**
 * What shapes the captions is the queue's (`runOptionsOf`), fixed at enqueue: a worker's own
 * config cannot mend it, a new queue can.
 */
function queueNames(settings: QueueSettings, flags: NameSetting, names: NameSetting): NameSetting {
  const fixed = new Set(Object.keys(runOptionsOf(settings)));
  return (option) =>
    fixed.has(option)
      ? `${flags(option)} of a new \`caption enqueue\` (queue ${settings.queue} keeps its own)`
      : names(option);
}

/** A path relative to `cwd` when it lies inside it, else as it is. */
function shownFrom(cwd: string, file: string): string {
  const relative = path.relative(cwd, file);
  return relative.startsWith("..") || path.isAbsolute(relative) ? file : relative;
}

/** `caption worker --queue NAME`: captions shards until stopped (or the queue is empty). */
export async function runWorker(
  args: Record<string, unknown>,
  context: ScaleContext,
): Promise<number> {
  const queue = checkQueueName(args.queue);
  const shardsAtOnce = positiveInt(args.shardsAtOnce, "--shards-at-once", 1);
  const stallSeconds = positiveInt(args.stallSeconds, "--stall-seconds", 30);
  const config = context.loadConfig(args);
  const key = context.chooseKey(config);
  const redis = await openRedis(args, context);
  const settings = await waitForSettings(redis, queue, context.reporter).catch((error: unknown) => {
    redis.disconnect();
    throw error;
  });
  const reporter = context.reporter;
  const rpm = settings.rpm ?? config.rpm;
  // Budgets are named by each key's slow salted hash, worked out once here rather than per request.
  const keyIdOf = await keyIds(
    redis,
    key.endpoints ? key.endpoints.map((endpoint) => endpoint.apiKey) : [key.apiKey],
  ).catch((error: unknown) => {
    redis.disconnect();
    throw error;
  });
  // One budget per endpoint for the worker's life, shared by its shards and with other workers.
  const known = new Map<string, RequestBudget>();
  const budgets = (endpoint: ResolvedEndpoint) => {
    let budget = known.get(endpoint.label);
    if (!budget) {
      budget = sharedBudget(redis, endpoint, keyIdOf(endpoint.apiKey), endpoint.rpm);
      known.set(endpoint.label, budget);
    }
    return budget;
  };
  const handle = startWorker({
    queue,
    redis,
    dir: settings.dir,
    shardsAtOnce,
    stallSeconds,
    untilEmpty: args.untilEmpty === true,
    say: (text, level) => reporter.say(text, level),
    displayPath: (file) => shownFrom(settings.cwd, file),
    run: async (shard, present, files, control, watch) => {
      // A shard's run that stopped early rejects with what it did; the worker reads its reason.
      const stoppedEarly = (error: unknown) => {
        if (error instanceof RunAbortedError && error.summary) return error.summary;
        throw error;
      };
      return captionImages(
        {
          ...runOptionsOf(settings),
          // Named as from where enqueue ran, so rows read as that run's own would.
          inputs: present.map((file) => shownFrom(settings.cwd, file)),
          output: files.output,
          errorsPath: files.errors,
          format: "jsonl",
          baseUrl: config.baseUrl,
          apiKey: key.endpoints ? undefined : key.apiKey,
          env: context.env,
          ...(key.endpoints
            ? { endpoints: key.endpoints.map((endpoint) => ({ ...endpoint, model: undefined })) }
            : {}),
          concurrency: config.concurrency,
          maxConcurrency: config.maxConcurrency,
          rpm,
          retries: config.retries,
          timeoutMs: config.timeoutMs,
          maxReplyBytes: config.maxReplyBytes,
          budgetFor: (endpoint) => watch.budget(endpoint, budgets(endpoint)),
          ...(context.fetch ? { fetch: context.fetch } : {}),
          nameSetting: queueNames(settings, context.nameSetting, context.namesFor(config)),
        },
        {
          control,
          onEvent: (event) => {
            watch.onEvent(event);
            if (event.type === "warning")
              reporter.say(`shard ${shard.id}: ${event.message}`, "warn");
          },
        },
      ).catch(stoppedEarly);
    },
  });
  let stoppedBy: NodeJS.Signals | null = null;
  let forced: () => void = () => {};
  const forcedStop = new Promise<null>((resolve) => {
    forced = () => resolve(null);
  });
  const onSignal = (signal: NodeJS.Signals) => {
    if (stoppedBy) {
      reporter.say(`${signal} again: cancelling the requests in flight`, "warn");
      handle.abort();
      // Releasing a shard needs Redis; without it the shard's lock expires and another takes it.
      setTimeout(forced, 3000).unref();
      return;
    }
    stoppedBy = signal;
    reporter.say(
      `${signal}: finishing the requests in flight, then releasing the shards held (again to cancel them)`,
      "warn",
    );
    handle.stop();
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  reporter.say(`worker on queue ${queue}: ${shardsAtOnce} shard(s) at a time`, "info");
  try {
    const result = await Promise.race([handle.finished, forcedStop]);
    if (!result) {
      abandonRun();
      reporter.say(
        "stopped without releasing the shards held: another worker takes them once their lock expires",
        "warn",
      );
      return exitCodeOf({ settled: false, stoppedBy: stoppedBy ?? "SIGINT" });
    }
    const done = `${result.shards} ${result.shards === 1 ? "shard" : "shards"} done${result.failedShards ? `, ${result.failedShards} failed attempts` : ""}`;
    if (result.settled) {
      // What it held went back to the queue, not to the failed ones: nothing to enqueue again.
      reporter.say(
        `worker stopped (${done}): every shard would fail alike here; the shards it held are back in the queue, their attempts untouched: fix that, then start the worker again (caption worker --queue ${queue} …)`,
        "error",
      );
      return exitCodeOf({ settled: true, stoppedBy });
    }
    reporter.say(`worker stopped: ${done}`, "info");
    return exitCodeOf({ settled: false, stoppedBy });
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    redis.disconnect();
  }
}

/**
 * The queue's settings; a worker started before the first enqueue waits for them (saying so
 * once) rather than exit, so workers and enqueue may start in any order.
 */
async function waitForSettings(
  redis: Redis,
  queue: string,
  reporter: Reporter,
): Promise<QueueSettings> {
  let said = false;
  for (;;) {
    try {
      return await readSettings(redis, queue);
    } catch (error) {
      if (!(error instanceof UsageError)) throw error;
      if (!said) {
        reporter.say(
          `queue ${queue} is empty so far: waiting for caption enqueue … --queue ${queue}`,
          "warn",
        );
        said = true;
      }
      await new Promise((resolve) => setTimeout(resolve, 2000));
    }
  }
}

/** `caption status --queue NAME`: once as JSON, or live on a terminal. */
export async function runStatus(
  args: Record<string, unknown>,
  context: ScaleContext,
): Promise<number> {
  const queue = checkQueueName(args.queue);
  const redis = await openRedis(args, context);
  // A Redis that goes away during a look is an error, not a wait.
  const look = () => withTimeout(queueStatus(redis, queue), 10_000, "Redis stopped answering");
  try {
    await readSettings(redis, queue);
    if (args.json === true || !context.stdout.isTTY) {
      const status = await look();
      context.stdout.write(
        args.json === true ? `${JSON.stringify(status)}\n` : `${statusLines(status).join("\n")}\n`,
      );
      return EXIT.ok;
    }
    // Live: redrawn every second until Ctrl-C, or until nothing is left to do.
    let lines = 0;
    let stop = false;
    const onSignal = () => {
      stop = true;
    };
    process.once("SIGINT", onSignal);
    try {
      while (!stop) {
        const status = await look();
        const text = statusLines(status);
        context.stdout.write(`${lines ? `\x1b[${lines}F\x1b[J` : ""}${text.join("\n")}\n`);
        lines = text.length;
        const { waiting, active, delayed } = status.shards;
        if (waiting + active + delayed === 0) break;
        await new Promise((resolve) => setTimeout(resolve, 1000));
      }
    } finally {
      process.off("SIGINT", onSignal);
    }
    return EXIT.ok;
  } finally {
    redis.disconnect();
  }
}

function withTimeout<T>(work: Promise<T>, ms: number, why: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(
          new RunAbortedError("redis_unreachable", `${why} (no answer within ${ms / 1000} s)`),
        ),
      ms,
    );
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}

/** `caption merge DIR -o OUT`: the shards' captions as one file. */
export async function runMerge(
  args: Record<string, unknown>,
  context: ScaleContext,
): Promise<number> {
  const dir = path.resolve(context.cwd, String(args.dir));
  const outputs = context.datasetOutputs(args);
  const given = typeof args.output === "string" && args.output !== "";
  if (!given && !outputs.sidecar && !outputs.hfMetadata && !outputs.xmp) {
    throw new UsageError([
      "-o/--output is required (or --sidecar, --hf-metadata, --xmp): the CSV or JSONL file to merge into",
    ]);
  }
  const output = given ? path.resolve(context.cwd, String(args.output)) : undefined;
  const format = output ? (await chooseOutputFormat(output, undefined)).format : "jsonl";
  const report = await mergeShards({
    dir,
    output,
    format,
    outputs,
    nameSetting: context.nameSetting,
    partial: args.partial === true,
    csvFormulaGuard: args.csvFormulaGuard === true,
  });
  const into = [
    output ? path.relative(context.cwd, output) || output : null,
    outputs.sidecar ? "sidecars" : null,
    outputs.xmp ? "XMP sidecars" : null,
    outputs.hfMetadata ? "metadata files" : null,
  ].filter(Boolean);
  const errors = report.errorsPath
    ? ` → ${path.relative(context.cwd, report.errorsPath)}`
    : " (not written without -o)";
  context.reporter.say(
    `merged ${report.shards} shards: ${report.rows} captions → ${into.join(", ")}, ${report.failures} failures${errors}${report.unfinished ? ` (${report.unfinished} unfinished shards left out)` : ""}`,
    "info",
  );
  if (report.unaccounted > 0) {
    context.reporter.say(
      `${report.unaccounted} images of finished shards have neither a caption nor a failure row; remove those shards' .done.json files and enqueue again to caption them`,
      "warn",
    );
  }
  return report.failures > 0 || report.unaccounted > 0 ? 3 : 0;
}
