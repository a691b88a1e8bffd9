import { RunAbortedError } from "../../errors.js";
import { readSettings } from "../../scale/queue-settings.js";
import { queueStatus, statusLines } from "../../scale/status.js";
import type { CommandIo } from "../command-io.js";
import { loadConfig } from "../context.js";
import { exitCodeOf } from "../exit-codes.js";
import { openRedis, queueOf } from "../scale-io.js";

/** `caption status --queue NAME`: once as JSON, or live on a terminal. */
export async function run(
  args: Record<string, unknown>,
  { context, reporter }: CommandIo,
): Promise<number> {
  const config = loadConfig(args, context, reporter, "status");
  const queue = queueOf(config);
  const redis = await openRedis(config);
  // A Redis that goes away during a look is an error, not a wait.
  const look = () => withTimeout(queueStatus(redis, queue), 10_000, "Redis stopped answering");
  try {
    await readSettings(redis, queue);
    if (args.json === true || !context.stdout.isTTY) {
      const status = await look();
      context.stdout.write(
        args.json === true ? `${JSON.stringify(status)}\n` : `${statusLines(status).join("\n")}\n`,
      );
      return exitCodeOf({ done: true });
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
    return exitCodeOf({ done: true });
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
