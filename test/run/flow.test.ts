import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { describe, expect, it } from "vitest";
import type { PreparedWork, PrepareStage } from "../../src/prepare/stage.js";
import { RunControl } from "../../src/run/control.js";
import { runFlow } from "../../src/run/flow.js";
import type { Intake } from "../../src/run/intake.js";
import { RunState } from "../../src/run/state.js";
import type { Sender } from "../../src/send/variants.js";
import type { Sink } from "../../src/sinks/sink.js";
import type { ImageTask } from "../../src/types.js";
import { BoundedQueue } from "../../src/util/bounded-queue.js";

// What a sender keeps between images is only visible to the garbage collector.
setFlagsFromString("--expose-gc");
const collect = runInNewContext("gc") as () => void;

const tick = () => new Promise((resolve) => setImmediate(resolve));

describe("runFlow", () => {
  it("keeps nothing of an image once it is sent, while its sender waits for a seat", async () => {
    const tasks: ImageTask[] = Array.from({ length: 30 }, (_, i) => ({
      path: `${i}.jpg`,
      absPath: `/nowhere/${i}.jpg`,
    }));
    const state = new RunState({ sink: {} as Sink, control: new RunControl() });
    const queue = new BoundedQueue<PreparedWork>(2);
    const intake = {
      take: async (task: ImageTask) => {
        if (!(await queue.reserve())) return;
        const data = Buffer.from(task.path.repeat(1000));
        const image = {
          data,
          dataUrl: `data:image/jpeg;base64,${data.toString("base64")}`,
          mime: "image/jpeg" as const,
          width: 1,
          height: 1,
          original: { width: 1, height: 1 },
          bytes: 1,
        };
        queue.push({ task, sha256: task.path, image, settle: () => {} });
      },
      drain: async () => {},
      close: async () => {},
    } as unknown as Intake;
    // Ten seats at once, then none until `open`: the ten senders that sent wait for a seat, as
    // most of them do under `-c auto` against a server slower than the decoders.
    let seats = 10;
    let open: () => void = () => {};
    const opened = new Promise<void>((resolve) => {
      open = resolve;
    });
    const sent: WeakRef<object>[] = [];
    const sender: Sender<true> = {
      admit: async () => {
        if (seats > 0) {
          seats -= 1;
          return true;
        }
        await opened;
        return true;
      },
      send: async (work) => {
        sent.push(new WeakRef(work.image));
        return { kind: "dry" };
      },
      release: () => {},
    };
    const flow = runFlow(
      tasks,
      { producers: 2, senders: 16 },
      { intake, prepare: { queue } as unknown as PrepareStage, send: sender },
      state,
    );
    while (sent.length < 10) await tick();
    for (let i = 0; i < 5; i += 1) await tick();
    collect();
    expect(sent.filter((ref) => ref.deref() !== undefined)).toHaveLength(0);
    open();
    expect(await flow).toBe(0);
    expect(sent).toHaveLength(30);
  });
});
