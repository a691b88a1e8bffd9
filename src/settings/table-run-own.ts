import { redoProblem } from "../sinks/redo.js";
import type { SettingSpec } from "./spec.js";

/**
 * A run's own: what its answers cost (the prices its summary counts them at, the budget it keeps
 * to), which rows of OUT it makes again, and the several prompts it may ask of each image. A
 * queue takes its budget and prices at enqueue, for all its workers; a worker takes none of them.
 */
export const RUN_OWN_TABLE = {
  inputPrice: {
    flag: "--input-price",
    kind: { type: "number", min: 0, max: 1_000_000 },
    describe: "Price of a million prompt tokens, for the run's cost in its summary",
    scope: "run",
    commands: ["enqueue"],
    unit: "per million tokens",
    more: "in any currency, the same as `--output-price`; per endpoint in a config's `endpoints`; a price left out counts as nothing",
    library: "inputPrice",
  },
  outputPrice: {
    flag: "--output-price",
    kind: { type: "number", min: 0, max: 1_000_000 },
    describe: "Price of a million completion tokens (reasoning included)",
    scope: "run",
    commands: ["enqueue"],
    unit: "per million tokens",
    more: "per endpoint in a config's `endpoints`",
    library: "outputPrice",
  },
  budgetTokens: {
    flag: "--budget-tokens",
    kind: { type: "int", min: 1, max: 1_000_000_000_000 },
    describe: "Stop sending once the next image would likely pass this many tokens, in and out",
    scope: "run",
    commands: ["enqueue"],
    unit: "tokens",
    more: "judged from the mean of an answer so far; what is in flight finishes; exit 4, and a rerun with a fresh budget goes on ([Exit codes](failures.md#exit-codes)); given to `caption enqueue`, one budget for all the queue's workers ([Many machines](many-machines.md#one-budget-for-all))",
    library: "budgetTokens",
  },
  budgetCost: {
    flag: "--budget-cost",
    kind: { type: "number", min: 0, max: 1_000_000_000, exclusiveMin: true },
    describe: "Stop sending once the next image would likely pass this cost (needs a price)",
    scope: "run",
    commands: ["enqueue"],
    more: "at `--input-price` and `--output-price`; as `--budget-tokens` otherwise",
    library: "budgetCost",
  },
  redo: {
    flag: "--redo",
    kind: { type: "text", rule: redoProblem },
    describe:
      "Send again only the images whose rows carry a flag (flagged, or truncated,refusal…) or another prompt (prompt-changed)",
    scope: "run",
    more: "the new row replaces the old, and the outputs beside the image are written again; settings given with it (`--max-tokens`, `--temperature`) apply to these images alone, since images not in OUT yet are left for a run without it ([Redo](outputs.md#redo-only-what-needs-it))",
    library: "redo",
  },
  prompts: {
    flag: "--prompts",
    kind: { type: "path" },
    describe:
      "Ask several named prompts of each image (a JSON or YAML file); OUT gets a caption_<name> column each",
    scope: "run",
    more: "each with its own template, and optionally `model`, `max_tokens`, `temperature`, `json_schema`, `tags`; `{answer.NAME}` uses another's answer ([Several prompts](prompts.md#several-prompts-in-one-pass))",
    library: "prompts",
  },
  captionPrompt: {
    flag: "--caption-prompt",
    kind: { type: "name" },
    describe:
      "With --prompts: the prompt whose answer is the caption column, the sidecars, XMP and HF text",
    shownDefault: "the first",
    scope: "run",
    library: "captionPrompt",
  },
} as const satisfies Record<string, SettingSpec>;
