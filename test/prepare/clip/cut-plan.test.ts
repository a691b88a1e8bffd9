import { describe, expect, it } from "vitest";
import {
  cutArgs,
  frameArgs,
  framesWritten,
  frameTimes,
  planCut,
  sentSize,
} from "../../../src/prepare/clip/cut-plan.js";
import { readProbe } from "../../../src/prepare/clip/probe.js";

const DEFAULTS = { side: 448, fps: 1, seconds: 60, sample: "segments" } as const;
const HD = { width: 1920, height: 1080, fps: 30 };

describe("sentSize", () => {
  it("brings the short side to the cap, keeps the aspect, both sides even, never enlarges", () => {
    expect(sentSize(1920, 1080, 448)).toEqual({ width: 796, height: 448 });
    expect(sentSize(1080, 1920, 448)).toEqual({ width: 448, height: 796 });
    expect(sentSize(320, 240, 448)).toEqual({ width: 320, height: 240 });
    // An odd source size is made even for H.264's 4:2:0, never larger.
    expect(sentSize(321, 241, 448)).toEqual({ width: 320, height: 240 });
    expect(sentSize(3840, 2160, 360)).toEqual({ width: 640, height: 360 });
  });
});

describe("planCut", () => {
  it("sends a clip within the cap whole, at the capped frame rate", () => {
    const plan = planCut({ ...HD, duration: 12.5 }, DEFAULTS);
    expect(plan.stretches).toEqual([{ start: 0, length: 12.5 }]);
    expect(plan).toMatchObject({ fps: 1, frames: 13, seconds: 12.5, width: 796, height: 448 });
  });

  it("gives a slower source the same clock: the cut lasts as long as what it covers", () => {
    expect(planCut({ ...HD, fps: 0.5, duration: 10 }, DEFAULTS)).toMatchObject({
      fps: 1,
      frames: 10,
    });
  });

  it("samples a long clip as segments from its start to its end, the cap's seconds in all", () => {
    const plan = planCut({ ...HD, duration: 3600 }, DEFAULTS);
    expect(plan.stretches).toHaveLength(6);
    expect(plan.stretches[0]).toEqual({ start: 0, length: 10 });
    expect(plan.stretches.at(-1)).toEqual({ start: 3590, length: 10 });
    const gaps = plan.stretches
      .slice(1)
      .map((each, i) => each.start - (plan.stretches[i]?.start ?? 0));
    expect(new Set(gaps).size).toBe(1);
    expect(plan).toMatchObject({ seconds: 60, frames: 60 });
  });

  it("takes two segments at least, and only the start when asked or when the length is unknown", () => {
    expect(planCut({ ...HD, duration: 100 }, { ...DEFAULTS, seconds: 5 }).stretches).toEqual([
      { start: 0, length: 2.5 },
      { start: 97.5, length: 2.5 },
    ]);
    expect(planCut({ ...HD, duration: 100 }, { ...DEFAULTS, sample: "start" }).stretches).toEqual([
      { start: 0, length: 60 },
    ]);
    expect(planCut({ ...HD, duration: null }, DEFAULTS).stretches).toEqual([
      { start: 0, length: 60 },
    ]);
  });
});

describe("frameTimes", () => {
  it("takes each frame from the middle of its share of the clip, never its first or last instant", () => {
    expect(frameTimes(8, 4, 60)).toEqual([1, 3, 5, 7]);
    expect(frameTimes(null, 2, 60)).toEqual([15, 45]);
  });
});

describe("FFmpeg's arguments", () => {
  const input = ["-i", "file:/clips/a b.mp4"];

  it("reads each stretch by seeking its own input, and writes silent H.264 in MP4", () => {
    const plan = planCut({ ...HD, duration: 3600 }, { ...DEFAULTS, seconds: 20 });
    const args = cutArgs(input, plan, "/tmp/out.mp4");
    expect(args.filter((arg) => arg === "-ss")).toHaveLength(2);
    expect(args).toContain("-an");
    expect(args.join(" ")).toContain("concat=n=2:v=1:a=0");
    // Each stretch held to its length, and the whole to the plan's frames.
    expect(args.join(" ").match(/trim=duration=10/g)).toHaveLength(2);
    expect(args.slice(args.indexOf("-frames:v"), args.indexOf("-frames:v") + 2)).toEqual([
      "-frames:v",
      "20",
    ]);
    expect(args.slice(args.indexOf("-c:v"), args.indexOf("-c:v") + 2)).toEqual(["-c:v", "libx264"]);
    expect(args.slice(-4)).toEqual(["/tmp/out.mp4", "-progress", "pipe:1", "-nostats"]);
  });

  it("writes one JPEG per frame time, each from its own seek", () => {
    const args = frameArgs(input, [1, 3], { width: 320, height: 180 }, ["/t/0.jpg", "/t/1.jpg"]);
    expect(args.filter((arg) => arg === "-ss")).toHaveLength(2);
    expect(args.filter((arg) => arg === "-frames:v")).toHaveLength(2);
    expect(args.slice(-2)).toEqual(["1", "/t/1.jpg"]);
  });
});

describe("readProbe", () => {
  const report = (stream: object, format: object = { duration: "5.000" }) =>
    JSON.stringify({ streams: [stream], format });

  it("reads length, upright size and frame rate", () => {
    expect(
      readProbe(
        report({ codec_type: "video", width: 1920, height: 1080, avg_frame_rate: "30000/1001" }),
      ),
    ).toEqual({ duration: 5, width: 1920, height: 1080, fps: 30000 / 1001 });
  });

  it("turns a phone's portrait clip upright", () => {
    const turned = readProbe(
      report({
        codec_type: "video",
        width: 1920,
        height: 1080,
        side_data_list: [{ rotation: -90 }],
      }),
    );
    expect([turned.width, turned.height]).toEqual([1080, 1920]);
  });

  it("says the length is unknown rather than guessing, and refuses a file without a picture", () => {
    expect(readProbe(report({ codec_type: "video", width: 2, height: 2 }, {})).duration).toBeNull();
    expect(() => readProbe(report({ codec_type: "audio" }))).toThrow(/no video stream/);
    expect(() => readProbe("not json")).toThrow(/could not be read/);
  });
});

describe("framesWritten", () => {
  it("reads the last frame count of FFmpeg's -progress report", () => {
    const report = "frame=12\nfps=0.0\nprogress=continue\nframe=60\nfps=12.1\nprogress=end\n";
    expect(framesWritten(report)).toBe(60);
    expect(framesWritten("progress=end\n")).toBe(0);
  });
});
