import type { Usage } from "../types.js";
import type { BudgetReached, TokenTotals } from "./events.js";

/** What a run may spend: tokens in and out, and their cost at the endpoints' prices. */
export interface Budget {
  tokens?: number | undefined;
  cost?: number | undefined;
}

/** An endpoint's prices per million tokens; one left out counts as nothing. */
export interface Prices {
  inputPrice?: number | undefined;
  outputPrice?: number | undefined;
}

/**
 * What many runs spend together (the workers of a queue, in Redis): each answer is told to it,
 * and it gives the totals of all of them that the budget is judged on.
 */
export interface SharedSpend {
  /** Adds one answer (`cost` null without prices); the totals of all, this answer in them. */
  add(usage: Usage, cost: number | null): TokenTotals;
  /** The totals of all so far, as last known. */
  current(): TokenTotals;
  /**
   * Tells `listener` each time the totals of all are learned anew (the others' answers among
   * them), until the returned function is called: the budget is judged then too.
   */
  watch?(listener: (totals: TokenTotals) => void): () => void;
}

/** Adds what one answer cost to the run's totals; false when its server reported no usage. */
export function addUsage(tokens: TokenTotals, usage: Usage, prices: Prices): boolean {
  if (!reported(usage)) return false;
  tokens.answers += 1;
  tokens.promptTokens += usage.promptTokens ?? 0;
  tokens.completionTokens += usage.completionTokens ?? 0;
  tokens.reasoningTokens += usage.reasoningTokens ?? 0;
  const cost = costOf(usage, prices);
  if (cost !== null) tokens.cost = (tokens.cost ?? 0) + cost;
  return true;
}

/** Whether a server said what an answer cost at all. */
export function reported(usage: Usage): boolean {
  return usage.promptTokens !== null || usage.completionTokens !== null;
}

/** What one answer cost at these prices; null when there are none. */
export function costOf(usage: Usage, prices: Prices): number | null {
  if (prices.inputPrice === undefined && prices.outputPrice === undefined) return null;
  return (
    ((usage.promptTokens ?? 0) * (prices.inputPrice ?? 0) +
      (usage.completionTokens ?? 0) * (prices.outputPrice ?? 0)) /
    1_000_000
  );
}

/**
 * The budget one more answer, at the mean of those so far, would pass, or null. What is in
 * flight still finishes, so a run passes its budget by at most an answer per request in flight.
 */
export function budgetPassed(tokens: TokenTotals, budget: Budget): BudgetReached | null {
  if (tokens.answers === 0) return null;
  const over = (spent: number, limit: number | undefined) =>
    limit !== undefined && spent + spent / tokens.answers > limit;
  const spentTokens = spentOf(tokens, "tokens");
  if (budget.tokens !== undefined && over(spentTokens, budget.tokens)) {
    return { kind: "tokens", limit: budget.tokens, spent: spentTokens };
  }
  if (budget.cost !== undefined && tokens.cost !== null && over(tokens.cost, budget.cost)) {
    return { kind: "cost", limit: budget.cost, spent: tokens.cost };
  }
  return null;
}

/** What the run has spent of a budget of this kind. */
export function spentOf(tokens: TokenTotals, kind: BudgetReached["kind"]): number {
  return kind === "tokens" ? tokens.promptTokens + tokens.completionTokens : (tokens.cost ?? 0);
}
