/**
 * `useFakeEndpoint()`: a fake endpoint per test (or per file) in a suite, started on 127.0.0.1 at
 * a free port and closed after, so that no suite repeats that setup. Kept out of the fake's index
 * so the bench and the standalone server do not load vitest.
 */
import { afterAll, afterEach, beforeAll, beforeEach } from "vitest";
import type { FakeEndpointOptions } from "./options.js";
import { startFakeEndpoint } from "./server.js";
import type { FakeEndpoint, RecordedRequest } from "./types.js";

/**
 * The fake of the running test. It reads as the fake itself (`fake.baseUrl`, `fake.requests`…),
 * which throws while none is started; `current` is the fake or null.
 */
export interface FakeEndpointHandle extends FakeEndpoint {
  /** The fake started last, or null before one is (in "manual" mode, before the test starts it). */
  readonly current: FakeEndpoint | null;
  /** Starts a fake with these options in place of the current one, which is closed first. */
  start(options?: FakeEndpointOptions): Promise<FakeEndpoint>;
  /** Starts one more fake beside the current one; it is closed after the test as well. */
  startAnother(options?: FakeEndpointOptions): Promise<FakeEndpoint>;
  /** Closes the current fake, if there is one; closing twice is harmless. */
  close(): Promise<void>;
}

/**
 * Registers the hooks of a fake endpoint in the file or `describe` it is called in, and returns
 * the handle the tests read.
 *
 * - `useFakeEndpoint(options)`: a fake with these options before each test, closed after it.
 * - `useFakeEndpoint(options, "all")`: one fake for every test of the file or `describe`.
 * - `useFakeEndpoint("manual")`: none until a test calls `await fake.start(options)`; whatever a
 *   test started is closed after it.
 *
 * Every fake a test started, replaced ones and `startAnother()` ones included, is closed in its
 * afterEach (afterAll for "all"). vitest runs after-hooks in the reverse order of registration,
 * so an afterEach registered after this one runs while the fake is still open.
 */
export function useFakeEndpoint(
  options?: FakeEndpointOptions | "manual",
  scope: "each" | "all" = "each",
): FakeEndpointHandle {
  let current: FakeEndpoint | null = null;
  const open: FakeEndpoint[] = [];

  const started = (): FakeEndpoint => {
    if (current === null) {
      throw new Error("no fake endpoint is started: call `await fake.start(options)` first");
    }
    return current;
  };
  const startAnother = async (startOptions: FakeEndpointOptions = {}): Promise<FakeEndpoint> => {
    const fake = await startFakeEndpoint(startOptions);
    open.push(fake);
    return fake;
  };
  const start = async (startOptions: FakeEndpointOptions = {}): Promise<FakeEndpoint> => {
    await current?.close();
    current = await startAnother(startOptions);
    return current;
  };
  const closeAll = async (): Promise<void> => {
    await Promise.all(open.splice(0).map((fake) => fake.close()));
  };

  if (options === "manual") {
    beforeEach(() => {
      current = null;
    });
    afterEach(closeAll);
  } else if (scope === "all") {
    beforeAll(async () => {
      await start(options);
    });
    afterAll(closeAll);
  } else {
    beforeEach(async () => {
      await start(options);
    });
    afterEach(closeAll);
  }

  return {
    get current() {
      return current;
    },
    start,
    startAnother,
    close: async () => {
      await current?.close();
    },
    get baseUrl(): string {
      return started().baseUrl;
    },
    get port(): number {
      return started().port;
    },
    get requests(): RecordedRequest[] {
      return started().requests;
    },
    get modelListings() {
      return started().modelListings;
    },
    get inFlight() {
      return started().inFlight;
    },
    get maxInFlight() {
      return started().maxInFlight;
    },
    get connectionCount() {
      return started().connectionCount;
    },
    resetStats() {
      started().resetStats();
    },
  };
}
