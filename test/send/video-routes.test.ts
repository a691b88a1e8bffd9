import { describe, expect, it } from "vitest";
import { ApiError } from "../../src/errors.js";
import { fewerFrames } from "../../src/send/clip-variants.js";
import { ContextExceededError } from "../../src/send/context-overflow.js";
import { VideoRoutes } from "../../src/send/video-routes.js";

const refusal = new ApiError("http_400", "unsupported content[].type", { status: 400 });

describe("VideoRoutes", () => {
  it("under auto, sends natively until an endpoint refuses, then frames to that endpoint only", () => {
    const routes = new VideoRoutes("auto", ["a:1", "b:2"]);
    expect([routes.form(), routes.formFor("a:1")]).toEqual(["native", "native"]);
    expect(routes.refusal("a:1", refusal)).toBe(true);
    expect(routes.refused("a:1")).toBe(true);
    expect(routes.refused("a:1")).toBe(false);
    expect([routes.formFor("a:1"), routes.formFor("b:2"), routes.form()]).toEqual([
      "frames",
      "native",
      "native",
    ]);
    routes.refused("b:2");
    expect(routes.form()).toBe("frames");
  });

  it("takes a 400 from an endpoint that answered a clip for that clip's fault, not a refusal of video", () => {
    const routes = new VideoRoutes("auto", ["a:1"]);
    routes.took("a:1");
    expect(routes.refusal("a:1", refusal)).toBe(false);
  });

  it("reads no other status as a refusal, and never falls back unless auto", () => {
    const routes = new VideoRoutes("auto", ["a:1"]);
    expect(routes.refusal("a:1", new ApiError("http_500", "boom", { status: 500 }))).toBe(false);
    expect(routes.refusal("a:1", new ApiError("http_413", "too large", { status: 413 }))).toBe(
      false,
    );
    const tooLong = new ContextExceededError(
      refusal,
      { requestTokens: 9000, contextTokens: 8192, promptOnly: false },
      "said",
    );
    expect(routes.refusal("a:1", tooLong)).toBe(false);
    const native = new VideoRoutes("native", ["a:1"]);
    expect(native.refusal("a:1", refusal)).toBe(false);
    expect(new VideoRoutes("frames", ["a:1"]).form()).toBe("frames");
  });
});

describe("fewerFrames", () => {
  const exceeded = (requestTokens: number | null, contextTokens: number | null) =>
    new ContextExceededError(refusal, { requestTokens, contextTokens, promptOnly: false }, "said");
  const frames = {
    duration: 5,
    mode: "frames",
    frames: 8,
    fps: null,
    seconds: 5,
    segments: 8,
  } as const;

  it("cuts a clip to the share of the context left, with room for the reply", () => {
    expect(fewerFrames(frames, exceeded(5000, 4096))).toEqual({ frames: 5, change: { frames: 5 } });
    const native = { ...frames, mode: "native", fps: 2, frames: 120 } as const;
    expect(fewerFrames(native, exceeded(24_000, 8192))).toEqual({
      frames: 32,
      change: { fps: 0.533 },
    });
  });

  it("gives up where the server said nothing of sizes, or one frame is all there is", () => {
    expect(fewerFrames(frames, exceeded(null, 4096))).toBeNull();
    expect(fewerFrames({ ...frames, frames: 1 }, exceeded(5000, 4096))).toBeNull();
    expect(fewerFrames(frames, refusal)).toBeNull();
  });
});
