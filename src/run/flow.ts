import type { PrepareStage } from "../prepare/stage.js";
import type { Sender } from "../send/variants.js";
import type { ImageTask } from "../types.js";
import type { RunControl } from "./control.js";
import type { Intake } from "./intake.js";
import type { RunState } from "./state.js";

export interface FlowShape {
  /** Images read, hashed and prepared at once. */
  producers: number;
  /** Requests in flight at once. */
  senders: number;
}

/**
 * Runs the tasks through intake and preparing into the senders until all are done or the run
 * stops. Returns how many tasks were never taken up. Whatever happens to the producers, the
 * senders are let finish before this returns, so the sinks can be closed behind them.
 */
export async function runFlow<T>(
  tasks: readonly ImageTask[],
  shape: FlowShape,
  stages: { intake: Intake; prepare: PrepareStage; send: Sender<T> },
  state: RunState,
): Promise<number> {
  const { intake, prepare, send } = stages;
  const control: RunControl = state.control;
  const queue = prepare.queue;
  let cursor = 0;
  const producer = async () => {
    while (!control.stopSignal.aborted) {
      const task = tasks[cursor];
      if (!task) return;
      cursor += 1;
      await intake.take(task);
    }
  };
  // One image, taken and sent in a frame of its own: a sender waiting for its next seat then
  // holds nothing of the last image (a suspended async function keeps its locals, and with
  // `-c auto` up to --max-concurrency senders wait, each of which would keep one).
  const sendOne = async (seat: T | null): Promise<boolean> => {
    const work = await queue.shift();
    if (!work) {
      if (seat !== null) send.release(seat);
      return false;
    }
    // Once a stop is asked for, prepared images are left for the next run, not sent.
    if (seat === null) {
      work.settle(state.unfinished(work.task));
      return true;
    }
    try {
      work.settle(await send.send(work));
    } catch (error) {
      // Copies waiting on this image must not wait forever.
      work.settle(state.unfinished(work.task));
      throw error;
    } finally {
      send.release(seat);
    }
    return true;
  };
  // Each sender takes a seat before it takes an image, so no more images are held prepared than
  // the endpoints let in flight (and the queue's few).
  const sender = async () => {
    while (await sendOne(control.stopSignal.aborted ? null : await send.admit())) {}
  };
  const senders = Promise.all(
    Array.from({ length: Math.min(shape.senders, tasks.length) }, () => sender()),
  );
  // Handled now, so a failing sender cannot become an unhandled rejection while producers run.
  senders.catch(() => {});
  let producerFailure: unknown = null;
  try {
    await Promise.all(
      Array.from({ length: Math.min(shape.producers, tasks.length) }, () => producer()),
    );
    await intake.drain();
  } catch (error) {
    producerFailure = error;
  } finally {
    await intake.close();
    queue.close();
  }
  await senders;
  if (producerFailure) throw producerFailure;
  return tasks.length - cursor;
}
