import { PassThrough } from "node:stream";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { Reporter } from "../../src/cli/progress.js";
import { summaryLine } from "../../src/cli/summary-line.js";
import { formatDuration } from "../../src/cli/units.js";
import type { RunSummary } from "../../src/run/events.js";

function stream(isTTY: boolean) {
  const out = new PassThrough() as PassThrough & { isTTY?: boolean; columns?: number };
  out.isTTY = isTTY;
  out.columns = 120;
  let text = "";
  out.on("data", (chunk: Buffer) => {
    text += chunk.toString();
  });
  return { out, text: () => text };
}

const discovered = {
  type: "discovered",
  found: 4,
  alreadyDone: 0,
  todo: 4,
  repairedBytes: 0,
  emptyInputs: [],
} as const;
const failure = {
  type: "failed",
  failure: {
    path: "b.jpg",
    code: "corrupt_image",
    message: "the file is corrupt",
    attempts: 0,
    status: null,
    created_at: "",
  },
} as const;

const captioned = { type: "captioned", record: {} as never, copyOf: null } as const;

describe("Reporter", () => {
  // The clock the live line is drawn by and measures the rate with, moved by hand.
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ["setInterval", "clearInterval", "performance", "Date"] });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it("draws a live line with done/total, failures, rate and ETA on a terminal, every interval", async () => {
    const { out, text } = stream(true);
    const reporter = new Reporter({
      stream: out,
      quiet: false,
      verbose: false,
      secret: undefined,
      intervalMs: 250,
    });
    // Each redraw returns to the start of the line, writes it and clears what is left of it.
    const live = () =>
      text()
        .split("\r")
        .filter((part) => part.startsWith("caption: ") && part.endsWith("\x1b[K"));
    reporter.onEvent(discovered);
    expect(live()).toEqual([]);
    await vi.advanceTimersByTimeAsync(1000);
    expect(live()).toHaveLength(4);
    expect(live().at(-1)).toBe("caption: 0/4 done, 0 failed, 0.0 images/s, ETA ?\x1b[K");

    reporter.onEvent(captioned);
    reporter.onEvent(failure);
    await vi.advanceTimersByTimeAsync(1000);
    // Two of four done in two seconds.
    expect(live().at(-1)).toBe("caption: 2/4 done, 1 failed, 1.0 images/s, ETA 2.0 s\x1b[K");
    // The failure is a line of its own, printed with the live line cleared first.
    expect(text()).toContain("\r\x1b[Kcaption: failed b.jpg: the file is corrupt\n");

    reporter.stop();
    expect(text().endsWith("\r\x1b[K")).toBe(true);
    const stopped = text();
    await vi.advanceTimersByTimeAsync(1000);
    expect(text()).toBe(stopped);
    expect(vi.getTimerCount()).toBe(0);
  });

  it("prints no live line when piped or quiet, but still reports failures", async () => {
    for (const [isTTY, quiet] of [
      [false, false],
      [true, true],
    ] as const) {
      const { out, text } = stream(isTTY);
      const reporter = new Reporter({
        stream: out,
        quiet,
        verbose: false,
        secret: undefined,
        intervalMs: 250,
      });
      reporter.onEvent(discovered);
      reporter.onEvent(captioned);
      reporter.onEvent(failure);
      // No timer to draw a live line with, however long the run takes.
      expect(vi.getTimerCount()).toBe(0);
      await vi.advanceTimersByTimeAsync(1000);
      reporter.stop();
      expect(text()).not.toContain("\r");
      expect(text()).toBe("caption: failed b.jpg: the file is corrupt\n");
    }
  });

  it("masks the key in anything it prints", () => {
    const { out, text } = stream(false);
    const reporter = new Reporter({
      stream: out,
      quiet: false,
      verbose: false,
      secret: "sk-abcdef",
    });
    reporter.say("server said: Bearer sk-abcdef is invalid");
    expect(text()).toBe("caption: server said: Bearer [redacted] is invalid\n");
  });
});

describe("JSON log format", () => {
  it("writes one JSON object per event line, the summary last, and masks the key", () => {
    const { out, text } = stream(true);
    const reporter = new Reporter({
      stream: out,
      format: "json",
      quiet: false,
      verbose: false,
      secret: "sk-abcdef",
    });
    reporter.onEvent(discovered);
    reporter.onEvent({
      type: "captioned",
      record: { path: "a.jpg", attempts: 2, latency_ms: 5, truncated: false } as never,
      copyOf: null,
    });
    reporter.onEvent(failure);
    reporter.say("key sk-abcdef leaked?", "warn");
    reporter.finish({ ...summaryBase, failed: 1 }, "done", 3);
    const lines = text()
      .trimEnd()
      .split("\n")
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(lines.map((l) => l.event)).toEqual([
      "discovered",
      "captioned",
      "failed",
      "message",
      "summary",
    ]);
    expect(lines[1]).toMatchObject({ path: "a.jpg", attempts: 2, level: "info" });
    expect(lines[2]).toMatchObject({ path: "b.jpg", code: "corrupt_image", level: "error" });
    expect(lines[3]?.message).toBe("key [redacted] leaked?");
    expect(lines[4]).toMatchObject({ exit_code: 3, failed: 1, captioned: 7 });
    for (const line of lines) expect(Number.isNaN(Date.parse(String(line.time)))).toBe(false);
    expect(text()).not.toContain("\r");
  });

  it("in quiet mode keeps only failures, warnings and the summary", () => {
    const { out, text } = stream(false);
    const reporter = new Reporter({
      stream: out,
      format: "json",
      quiet: true,
      verbose: false,
      secret: undefined,
    });
    reporter.onEvent(discovered);
    reporter.onEvent({ type: "captioned", record: { path: "a.jpg" } as never, copyOf: null });
    reporter.onEvent(failure);
    reporter.finish(summaryBase, "done", 3);
    expect(
      text()
        .trimEnd()
        .split("\n")
        .map((l) => JSON.parse(l).event),
    ).toEqual(["failed", "summary"]);
  });
});

const summaryBase: RunSummary = {
  found: 10,
  alreadyDone: 2,
  captioned: 7,
  failed: 0,
  unfinished: 0,
  copies: 0,
  prepared: 0,
  preparedBytes: 0,
  elapsedMs: 3500,
  aborted: null,
  stopped: false,
  errorsFileProblem: null,
  emptyInputs: [],
  flagged: {},
  byEndpoint: {},
  contextOverflows: {},
  tokens: { answers: 0, promptTokens: 0, completionTokens: 0, reasoningTokens: 0, cost: null },
  budgetReached: null,
};

describe("summaryLine", () => {
  const base: RunSummary = { ...summaryBase, failed: 1 };

  it("sums up a run in one line", () => {
    expect(summaryLine(base, "out.csv", "out.errors.jsonl", false)).toBe(
      "7 captioned, 1 failed, 2 already done in 3.5 s (2.0 images/s) → out.csv; failures are listed in out.errors.jsonl",
    );
    expect(summaryLine({ ...base, alreadyDone: 10 }, "out.csv", "e", false)).toBe(
      "nothing to do: all 10 images are already in out.csv",
    );
    expect(
      summaryLine({ ...base, stopped: true, unfinished: 1, failed: 0 }, "o", "e", false),
    ).toMatch(/^interrupted: 7 captioned, 0 failed, 2 already done, 1 left for the next run/);
  });

  it("formats durations for people", () => {
    expect([formatDuration(4.25), formatDuration(75), formatDuration(7300)]).toEqual([
      "4.3 s",
      "1 min 15 s",
      "2 h 1 min",
    ]);
  });
});
