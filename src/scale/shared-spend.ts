import type { Redis } from "ioredis";
import type { Budget, Prices, SharedSpend } from "../run/budget.js";
import type { TokenTotals } from "../run/events.js";
import type { Usage } from "../types.js";

/** A queue's budget and prices, given at enqueue: every worker keeps to it, together. */
export type QueueBudget = Budget & Prices;

const budgetKey = (queue: string) => `caption:${queue}:budget`;
const spentKey = (queue: string) => `caption:${queue}:spent`;

/**
 * Cost is kept in units of 10^-12: Redis adds whole numbers exactly (sums of floats drift), and
 * an answer at a fraction of a cent still counts (up to 9 million in all, in 64 bits).
 */
const COST_UNIT = 1_000_000_000_000;

/**
 * Gives the queue a fresh budget (and the prices it is counted at): what was spent so far is
 * forgotten, as a run with a fresh budget starts from nothing, and the workers go on.
 */
export async function setQueueBudget(redis: Redis, queue: string, budget: QueueBudget) {
  const fields = Object.entries(budget).filter(([, value]) => value !== undefined);
  await redis
    .multi()
    .del(budgetKey(queue), spentKey(queue))
    .hset(budgetKey(queue), Object.fromEntries(fields.map(([key, value]) => [key, String(value)])))
    .exec();
}

/** The queue's budget and prices, or null when its enqueue gave none. */
export async function readQueueBudget(redis: Redis, queue: string): Promise<QueueBudget | null> {
  const fields = await redis.hgetall(budgetKey(queue));
  if (Object.keys(fields).length === 0) return null;
  const number = (key: keyof QueueBudget) =>
    fields[key] === undefined ? undefined : Number(fields[key]);
  return {
    tokens: number("tokens"),
    cost: number("cost"),
    inputPrice: number("inputPrice"),
    outputPrice: number("outputPrice"),
  };
}

/** What the workers of a queue have spent together, as `caption status` shows it. */
export async function readQueueSpent(redis: Redis, queue: string): Promise<TokenTotals> {
  return totalsOf(await redis.hgetall(spentKey(queue)));
}

/**
 * The queue's spending, shared by its workers through Redis: each answer is added there at once
 * (one round trip, its reply the totals of all), and the budget is judged on the last totals
 * known plus this worker's answers not yet counted there. A worker goes on while Redis is away,
 * judging on what it knows.
 */
export async function queueSpend(redis: Redis, queue: string): Promise<SharedSpend> {
  let known = totalsOf(await redis.hgetall(spentKey(queue)).catch(() => ({})));
  const listeners = new Set<(totals: TokenTotals) => void>();
  const learned = (fields: Record<string, string>) => {
    known = totalsOf(fields);
    for (const listener of listeners) listener(sum());
  };
  const pending = emptyTotals();
  const sum = (): TokenTotals => ({
    answers: known.answers + pending.answers,
    promptTokens: known.promptTokens + pending.promptTokens,
    completionTokens: known.completionTokens + pending.completionTokens,
    reasoningTokens: known.reasoningTokens + pending.reasoningTokens,
    cost:
      known.cost === null && pending.cost === null ? null : (known.cost ?? 0) + (pending.cost ?? 0),
  });
  return {
    add(usage: Usage, cost: number | null) {
      const added: TokenTotals = {
        answers: 1,
        promptTokens: usage.promptTokens ?? 0,
        completionTokens: usage.completionTokens ?? 0,
        reasoningTokens: usage.reasoningTokens ?? 0,
        cost,
      };
      shift(pending, added, 1);
      const key = spentKey(queue);
      redis
        .multi()
        .hincrby(key, "answers", added.answers)
        .hincrby(key, "promptTokens", added.promptTokens)
        .hincrby(key, "completionTokens", added.completionTokens)
        .hincrby(key, "reasoningTokens", added.reasoningTokens)
        .hincrby(key, "cost", Math.round((cost ?? 0) * COST_UNIT))
        .hincrby(key, "priced", cost === null ? 0 : 1)
        .hgetall(key)
        .exec()
        .then((replies) => {
          shift(pending, added, -1);
          const all = replies?.at(-1)?.[1];
          if (all && typeof all === "object") learned(all as Record<string, string>);
        })
        .catch(() => {
          // Redis away: this answer stays counted here, and is not shared.
        });
      return sum();
    },
    current: sum,
    watch(listener) {
      listeners.add(listener);
      // The others' answers arrive with this worker's own; between those, a look now and then.
      const timer = setInterval(() => {
        redis
          .hgetall(spentKey(queue))
          .then(learned)
          .catch(() => {});
      }, WATCH_MS);
      timer.unref();
      return () => {
        clearInterval(timer);
        listeners.delete(listener);
      };
    },
  };
}

/** How often a worker looks at what the others spent while its own answers do not tell it. */
const WATCH_MS = 200;

function totalsOf(fields: Record<string, string>): TokenTotals {
  const count = (key: string) => Number(fields[key] ?? 0) || 0;
  return {
    answers: count("answers"),
    promptTokens: count("promptTokens"),
    completionTokens: count("completionTokens"),
    reasoningTokens: count("reasoningTokens"),
    cost: count("priced") > 0 ? count("cost") / COST_UNIT : null,
  };
}

function emptyTotals(): TokenTotals {
  return { answers: 0, promptTokens: 0, completionTokens: 0, reasoningTokens: 0, cost: null };
}

function shift(totals: TokenTotals, by: TokenTotals, sign: 1 | -1): void {
  totals.answers += sign * by.answers;
  totals.promptTokens += sign * by.promptTokens;
  totals.completionTokens += sign * by.completionTokens;
  totals.reasoningTokens += sign * by.reasoningTokens;
  if (by.cost !== null) totals.cost = (totals.cost ?? 0) + sign * by.cost;
}
