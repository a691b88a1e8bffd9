import { describe, expect, it } from "vitest";
import { addUsage, budgetPassed, spentOf } from "../../src/run/budget.js";
import type { TokenTotals } from "../../src/run/events.js";

const fresh = (): TokenTotals => ({
  answers: 0,
  promptTokens: 0,
  completionTokens: 0,
  reasoningTokens: 0,
  cost: null,
});
const usage = (promptTokens: number | null, completionTokens: number | null) => ({
  promptTokens,
  completionTokens,
  reasoningTokens: null,
});

describe("a run's tokens and budget", () => {
  it("adds what each answer cost, at its endpoint's prices, and skips an answer with no usage", () => {
    const tokens = fresh();
    expect(addUsage(tokens, usage(null, null), { inputPrice: 1 })).toBe(false);
    expect(addUsage(tokens, usage(1000, 100), {})).toBe(true);
    expect(tokens.cost).toBeNull();
    addUsage(tokens, usage(2000, 500), { inputPrice: 3, outputPrice: 10 });
    expect(tokens).toMatchObject({ answers: 2, promptTokens: 3000, completionTokens: 600 });
    expect(tokens.cost).toBeCloseTo((2000 * 3 + 500 * 10) / 1e6, 12);
  });

  it("is passed once one more answer at the mean would pass it, never before an answer", () => {
    const tokens = fresh();
    expect(budgetPassed(tokens, { tokens: 1 })).toBeNull();
    addUsage(tokens, usage(90, 10), {});
    // 100 spent, 100 more expected: 199 is passed, 200 is not.
    expect(budgetPassed(tokens, { tokens: 200 })).toBeNull();
    expect(budgetPassed(tokens, { tokens: 199 })).toEqual({
      kind: "tokens",
      limit: 199,
      spent: 100,
    });
    // A cost budget needs a cost to judge.
    expect(budgetPassed(tokens, { cost: 0.000001 })).toBeNull();
    addUsage(tokens, usage(0, 0), { inputPrice: 1000 });
    tokens.cost = 0.5;
    expect(budgetPassed(tokens, { cost: 0.7 })?.kind).toBe("cost");
    expect(spentOf(tokens, "tokens")).toBe(100);
    expect(spentOf(tokens, "cost")).toBe(0.5);
  });
});
