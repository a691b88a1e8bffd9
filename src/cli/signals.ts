import type { RunControl } from "../run/control.js";

/** How long a run may take to end after it was told to cancel, before the CLI walks away from it. */
export const ABANDON_AFTER_MS = 3000;

export interface SignalWatch {
  /** The first SIGINT or SIGTERM received, if any. */
  readonly stoppedBy: NodeJS.Signals | null;
  /**
   * Resolves when the run did not end within ABANDON_AFTER_MS of being cancelled: something it
   * waits on (a hung network file system, say) will not return, and the process must exit anyway.
   */
  readonly abandoned: Promise<void>;
  /** Requests are being sent from now on, so a first signal lets those in flight finish. */
  sending(): void;
  dispose(): void;
}

/**
 * SIGINT and SIGTERM end a run whatever it is waiting on. Once requests are being sent, the first
 * signal drains them and the second cancels them; before that there is nothing to drain, so the
 * first one cancels. A cancelled run that still has not ended after ABANDON_AFTER_MS is abandoned.
 */
let gaveUp = false;

/** Whether a run of this process was abandoned: something it called may never return. */
export function runWasAbandoned(): boolean {
  return gaveUp;
}

/** Says this process gave up on work that may never return (a worker cut off from Redis). */
export function abandonRun(): void {
  gaveUp = true;
}

export function watchSignals(control: RunControl, say: (text: string) => void): SignalWatch {
  let stoppedBy: NodeJS.Signals | null = null;
  let draining = false;
  let seen = 0;
  let timer: NodeJS.Timeout | null = null;
  let abandon: () => void = () => {};
  const abandoned = new Promise<void>((resolve) => {
    abandon = () => {
      gaveUp = true;
      resolve();
    };
  });
  const handler = (signal: NodeJS.Signals) => {
    seen += 1;
    stoppedBy ??= signal;
    if (seen === 1 && draining) {
      say(`${signal}: finishing requests in flight, then stopping (again to cancel them)`);
      control.stop();
      return;
    }
    say(draining ? `${signal}: cancelling requests in flight` : `${signal}: stopping`);
    control.abort();
    timer ??= setTimeout(abandon, ABANDON_AFTER_MS);
  };
  process.on("SIGINT", handler);
  process.on("SIGTERM", handler);
  return {
    get stoppedBy() {
      return stoppedBy;
    },
    abandoned,
    sending() {
      draining = true;
    },
    dispose() {
      process.off("SIGINT", handler);
      process.off("SIGTERM", handler);
      if (timer) clearTimeout(timer);
    },
  };
}
