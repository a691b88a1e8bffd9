import { describe, expect, it } from "vitest";
import { type QueueSettings, runOptionsOf, settingsKey } from "../../src/scale/queue-settings.js";
import { checkSetting } from "../../src/settings/check.js";
import { SETTING_KEYS, SETTING_SPECS } from "../../src/settings/table.js";

describe("a queue's name (the queue setting)", () => {
  // Redis keys and BullMQ's are built from it: a ":" would let one queue reach another's keys.
  it("accepts letters, digits, '.', '_' and '-', up to 100 characters", () => {
    for (const name of ["photos", "Photos-2024.v1_b", "7", "a".repeat(100)]) {
      expect(checkSetting("queue", name)).toBeNull();
    }
  });

  it("refuses ':' and anything else, naming the value", () => {
    for (const name of ["a:b", "", "a b", "été", "a/b", "a".repeat(101), 42, null]) {
      expect(checkSetting("queue", name)).toMatch(/expected a name of letters/);
    }
    expect(checkSetting("queue", "bad:name")).toContain('got "bad:name"');
  });
});

describe("settingsKey", () => {
  it("keeps a queue's settings under its own name", () => {
    expect(settingsKey("photos")).toBe("caption:photos:settings");
    expect(settingsKey("a")).not.toBe(settingsKey("b"));
  });
});

describe("runOptionsOf", () => {
  it("maps what shapes captions and leaves out the queue's own fields", () => {
    const settings: QueueSettings = {
      queue: "photos",
      dir: "/shared/q",
      cwd: "/shared",
      model: "qwen2-vl",
      prompt: "Describe {path}",
      jsonSchema: { type: "object" },
      tags: true,
      rejectFlagged: false,
      maxTokens: 300,
      temperature: 0.2,
      prepare: { maxPixels: 1000, imageFormat: "png" },
      prefix: "pre ",
      suffix: " post",
      rpm: 60,
    };
    expect(runOptionsOf(settings)).toEqual({
      cwd: "/shared",
      model: "qwen2-vl",
      prompt: "Describe {path}",
      jsonSchema: { type: "object" },
      tags: true,
      rejectFlagged: false,
      maxTokens: 300,
      temperature: 0.2,
      prepare: { maxPixels: 1000, imageFormat: "png" },
      prefix: "pre ",
      suffix: " post",
    });
    const options = runOptionsOf(settings) as Record<string, unknown>;
    for (const key of ["queue", "dir", "rpm"]) expect(options).not.toHaveProperty(key);
  });
});

describe("what a queue fixes", () => {
  it("is what the settings table marks queueFixed: nothing more, nothing less", () => {
    const settings: QueueSettings = {
      queue: "q",
      dir: "/d",
      cwd: "/c",
      model: "m",
      prompt: "p",
      jsonSchema: { type: "object" },
      tags: false,
      rejectFlagged: false,
      maxTokens: 1,
      temperature: 0,
      prepare: { maxPixels: 1024, maxSide: 64, imageFormat: "jpeg", quality: 80 },
      video: {
        include: true,
        mode: "auto",
        side: 448,
        fps: 1,
        seconds: 60,
        sample: "segments",
        frames: 8,
        timeoutMs: 1000,
      },
      prefix: "",
      suffix: "",
    };
    const fixed = Object.entries(runOptionsOf(settings)).flatMap(([key, value]) =>
      key === "prepare" || key === "video"
        ? Object.keys(value as object).map((inner) => `${key}.${inner}`)
        : [key],
    );
    const marked = SETTING_KEYS.filter((key) => SETTING_SPECS[key].queueFixed).map(
      // The prompt's file is read at enqueue: the queue keeps its text.
      (key) => (key === "promptFile" ? "prompt" : SETTING_SPECS[key].library),
    );
    expect([...new Set(marked)].sort()).toEqual(fixed.filter((key) => key !== "cwd").sort());
  });
});
