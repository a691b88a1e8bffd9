import type { RunControl } from "../run/control.js";
import type { RunEvent, RunSummary } from "../run/events.js";
import type { RequestBudget } from "../send/request-budget.js";
import type { ResolvedEndpoint } from "../settings/run-options.js";
import type { Shard, ShardFiles } from "./shards.js";

/** What a worker hears from a shard's run, and the budget it gives the run's requests. */
export interface ShardWatch {
  onEvent(event: RunEvent): void;
  /** The budget of the run's requests to `endpoint`: `shared` (the rpm), in the worker's turn. */
  budget(endpoint: ResolvedEndpoint, shared: RequestBudget): RequestBudget;
}

/** Captions these images of a shard (those still there) into its files. */
export type ShardRun = (
  shard: Shard,
  present: string[],
  files: ShardFiles,
  control: RunControl,
  watch: ShardWatch,
) => Promise<RunSummary>;
