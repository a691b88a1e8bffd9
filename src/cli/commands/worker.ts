import path from "node:path";
import type { Redis } from "ioredis";
import { type NameSetting, RunAbortedError, UsageError } from "../../errors.js";
import { captionImages } from "../../run/pipeline.js";
import { type QueueSettings, readSettings, runOptionsOf } from "../../scale/queue-settings.js";
import { sharedBudget } from "../../scale/shared-budget.js";
import { queueSpend, readQueueBudget } from "../../scale/shared-spend.js";
import { startWorker } from "../../scale/worker.js";
import type { RequestBudget } from "../../send/request-budget.js";
import { endpointOptionsOf } from "../../settings/config-options.js";
import { flagOf } from "../../settings/naming.js";
import type { ResolvedEndpoint } from "../../settings/run-options.js";
import { valueOrDefault } from "../../settings/table.js";
import { keyIds } from "../../trust/key-id.js";
import type { CommandIo } from "../command-io.js";
import { chooseKey, loadConfig } from "../context.js";
import { exitCodeOf } from "../exit-codes.js";
import { flagsFor } from "../naming.js";
import type { Reporter } from "../progress.js";
import { openRedis, queueOf, warnRunOnly } from "../scale-io.js";
import { abandonRun } from "../signals.js";

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
export async function run(
  args: Record<string, unknown>,
  { context, reporter }: CommandIo,
): Promise<number> {
  const config = loadConfig(args, context, reporter, "worker");
  warnRunOnly(config, "worker", (text) => reporter.say(text, "warn"));
  const queue = queueOf(config);
  const shardsAtOnce = valueOrDefault(config.values, "shardsAtOnce");
  const stallSeconds = valueOrDefault(config.values, "stallSeconds");
  const key = chooseKey(config, reporter, context.env);
  const redis = await openRedis(config);
  const settings = await waitForSettings(redis, queue, reporter).catch((error: unknown) => {
    redis.disconnect();
    throw error;
  });
  const rpm = settings.rpm ?? config.values.rpm;
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
      // Read for each shard: an enqueue may have given the queue a fresh budget meanwhile.
      const budget = await readQueueBudget(redis, queue).catch(() => null);
      return captionImages(
        {
          ...runOptionsOf(settings),
          // Named as from where enqueue ran, so rows read as that run's own would.
          inputs: present.map((file) => shownFrom(settings.cwd, file)),
          output: files.output,
          errorsPath: files.errors,
          format: "jsonl",
          // The queue fixed the model: an endpoint's own is not this worker's to change.
          ...endpointOptionsOf(config, {
            apiKey: key.apiKey,
            endpoints: key.endpoints?.map((endpoint) => ({ ...endpoint, model: undefined })),
          }),
          rpm,
          env: context.env,
          budgetFor: (endpoint) => watch.budget(endpoint, budgets(endpoint)),
          ...(budget
            ? {
                budgetTokens: budget.tokens,
                budgetCost: budget.cost,
                inputPrice: budget.inputPrice,
                outputPrice: budget.outputPrice,
                sharedSpend: await queueSpend(redis, queue),
              }
            : {}),
          ...(context.fetch ? { fetch: context.fetch } : {}),
          nameSetting: queueNames(settings, flagOf, flagsFor(config)),
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
    if (result.budgetReached) {
      reporter.say(
        `worker stopped (${done}): ${result.budgetReached}; the shards it held are back in the queue: give it a fresh budget (caption enqueue … --queue ${queue} with --budget-tokens or --budget-cost) and start the workers again`,
        "warn",
      );
      return exitCodeOf({ settled: false, stoppedBy, budgetReached: true });
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
