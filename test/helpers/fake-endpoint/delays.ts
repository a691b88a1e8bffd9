/**
 * How long an answer takes: a plain wait, or a batching server's shared time. Either gives up as
 * soon as the response closes, so a client that left is not answered.
 */
import type { ServerResponse } from "node:http";
import { performance } from "node:perf_hooks";

/** Waits `ms` for `res`: true once the time is up, false if the response closed first. */
export type Wait = (res: ServerResponse, ms: number) => Promise<boolean>;

/** Resolves true after `ms`, or false as soon as the response closes (client gone or server closing). */
export function waitWhileOpen(res: ServerResponse, ms: number): Promise<boolean> {
  if (res.destroyed || res.writableEnded) return Promise.resolve(false);
  if (ms <= 0) return Promise.resolve(true);
  return new Promise((resolve) => {
    const onClose = (): void => {
      clearTimeout(timer);
      resolve(false);
    };
    const timer = setTimeout(() => {
      res.off("close", onClose);
      resolve(true);
    }, ms);
    res.once("close", onClose);
  });
}

/**
 * Processor sharing over at most `batch` lanes: each job needs its latency's worth of work, done
 * at full speed while no more than `batch` are in, else at batch / in-flight of it; `slowdown`
 * makes the speed of each lane fall with the number of lanes busy.
 */
export function batchingWaiter(batch: number, slowdown: number): Wait {
  interface Job {
    remaining: number;
    finish: (answered: boolean) => void;
  }
  const jobs = new Set<Job>();
  let advancedAt = performance.now();
  let timer: NodeJS.Timeout | null = null;
  const rate = () => {
    const busy = Math.min(batch, Math.max(1, jobs.size));
    return Math.min(1, batch / Math.max(1, jobs.size)) / (1 + slowdown * (busy - 1));
  };
  const advance = () => {
    const now = performance.now();
    const done = (now - advancedAt) * rate();
    for (const job of jobs) job.remaining -= done;
    advancedAt = now;
  };
  const schedule = () => {
    if (timer) clearTimeout(timer);
    timer = null;
    if (jobs.size === 0) return;
    const next = Math.min(...[...jobs].map((job) => job.remaining));
    timer = setTimeout(
      () => {
        advance();
        for (const job of jobs) {
          if (job.remaining <= 0.5) {
            jobs.delete(job);
            job.finish(true);
          }
        }
        schedule();
      },
      Math.max(0, next / rate()),
    );
  };
  return (res, ms) => {
    if (res.destroyed || res.writableEnded) return Promise.resolve(false);
    return new Promise((resolve) => {
      advance();
      const job: Job = {
        remaining: ms,
        finish: (answered) => {
          res.off("close", onClose);
          resolve(answered);
        },
      };
      const onClose = () => {
        advance();
        if (jobs.delete(job)) job.finish(false);
        schedule();
      };
      jobs.add(job);
      res.once("close", onClose);
      schedule();
    });
  };
}
