import type { SettingSpec } from "./spec.js";

/** What a run's answers cost: the prices its summary counts them at. */
export const COST_TABLE = {
  inputPrice: {
    flag: "--input-price",
    kind: { type: "number", min: 0, max: 1_000_000 },
    describe: "Price of a million prompt tokens, for the run's cost in its summary",
    scope: "run",
    commands: ["worker"],
    unit: "per million tokens",
    more: "in any currency, the same as `--output-price`; per endpoint in a config's `endpoints`; a price left out counts as nothing",
    library: "inputPrice",
  },
  outputPrice: {
    flag: "--output-price",
    kind: { type: "number", min: 0, max: 1_000_000 },
    describe: "Price of a million completion tokens (reasoning included)",
    scope: "run",
    commands: ["worker"],
    unit: "per million tokens",
    more: "per endpoint in a config's `endpoints`",
    library: "outputPrice",
  },
} as const satisfies Record<string, SettingSpec>;
