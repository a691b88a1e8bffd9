import type { SettingSpec } from "./spec.js";

/** What a run's answers cost: the prices its summary counts them at. */
export const COST_TABLE = {
  inputPrice: {
    flag: "--input-price",
    kind: { type: "number", min: 0, max: 1_000_000 },
    describe: "Price of a million prompt tokens, for the run's cost in its summary",
    scope: "run",
    unit: "per million tokens",
    more: "in any currency, the same as `--output-price`; per endpoint in a config's `endpoints`; a price left out counts as nothing",
    library: "inputPrice",
  },
  outputPrice: {
    flag: "--output-price",
    kind: { type: "number", min: 0, max: 1_000_000 },
    describe: "Price of a million completion tokens (reasoning included)",
    scope: "run",
    unit: "per million tokens",
    more: "per endpoint in a config's `endpoints`",
    library: "outputPrice",
  },
  budgetTokens: {
    flag: "--budget-tokens",
    kind: { type: "int", min: 1, max: 1_000_000_000_000 },
    describe: "Stop sending once the next image would likely pass this many tokens, in and out",
    scope: "run",
    unit: "tokens",
    more: "judged from the mean of an answer so far; what is in flight finishes; exit 4, and a rerun with a fresh budget goes on ([Exit codes](failures.md#exit-codes))",
    library: "budgetTokens",
  },
  budgetCost: {
    flag: "--budget-cost",
    kind: { type: "number", min: 0, max: 1_000_000_000, exclusiveMin: true },
    describe: "Stop sending once the next image would likely pass this cost (needs a price)",
    scope: "run",
    more: "at `--input-price` and `--output-price`; as `--budget-tokens` otherwise",
    library: "budgetCost",
  },
} as const satisfies Record<string, SettingSpec>;
