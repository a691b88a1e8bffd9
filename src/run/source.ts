import { UsageError } from "../errors.js";
import type { FinishedWork, Sink } from "../sinks/sink.js";
import { discoverImages } from "../stages/discover.js";
import type { ImageTask } from "../types.js";
import type { RunState } from "./state.js";

/**
 * The run's work: every image the inputs name, less what the sink already holds. The sink is
 * opened here, after discovery has shown the inputs are sound and before anything is sent.
 */
export async function findWork(
  inputs: readonly string[],
  cwd: string,
  strict: boolean,
  sink: Sink,
  state: RunState,
): Promise<{ tasks: ImageTask[]; finished: FinishedWork }> {
  const discovery = await discoverImages(inputs, cwd);
  if (strict && discovery.emptyInputs.length > 0) {
    throw new UsageError(
      discovery.emptyInputs.map(
        (input) => `strict: ${input} matches no image file; fix the path or pattern`,
      ),
    );
  }
  const finished = await sink.open(discovery.tasks);
  const { done, rejected } = finished;
  const settled = (task: ImageTask) => done.has(task.path) || rejected?.has(task.path) === true;
  const tasks = discovery.tasks.filter((task) => !settled(task));
  const refused = discovery.tasks.filter((task) => rejected?.has(task.path));
  state.discovered(
    discovery.tasks.length,
    tasks.length + refused.length,
    finished.repairedBytes,
    discovery.emptyInputs,
  );
  for (const task of refused)
    await state.failed(state.failureOf(task, rejected?.get(task.path), 0));
  return { tasks, finished };
}
