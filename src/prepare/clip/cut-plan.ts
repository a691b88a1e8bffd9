import type { VideoOptions } from "../../types.js";
import type { ClipProbe } from "./probe.js";

/** A stretch of the source that is cut, in seconds. */
export interface Stretch {
  start: number;
  length: number;
}

/** What is cut from a clip and how it is sent: the same numbers its row records. */
export interface CutPlan {
  stretches: Stretch[];
  /** The size sent: the short side at most `side`, both sides even (H.264 at 4:2:0 needs it). */
  width: number;
  height: number;
  /**
   * Frames a second of the cut: the option's, whatever the source's. A slower source (a
   * time-lapse, a screen recording) has frames repeated, so the cut lasts as long as what it
   * covers, as a server that samples a video by its clock expects.
   */
  fps: number;
  /** Frames the cut is planned to hold: the sum over its stretches (the row says how many it did). */
  frames: number;
  /** Seconds of the source covered. */
  seconds: number;
}

/**
 * A long clip sampled as segments gets one per this many seconds of the cap: a minute sent is six
 * ten-second scenes from across the clip, each long enough for motion to be seen in it.
 */
const SEGMENT_SECONDS = 10;

/** The size a clip is sent at: its short side brought to `side` at most, never enlarged. */
export function sentSize(
  width: number,
  height: number,
  side: number,
): { width: number; height: number } {
  const scale = Math.min(1, side / Math.min(width, height));
  const even = (value: number) => Math.max(2, 2 * Math.floor((value * scale) / 2 + 0.25));
  return { width: even(width), height: even(height) };
}

/** How a clip is cut to the budget: which stretches, at what size and frame rate. */
export function planCut(
  probe: ClipProbe,
  options: Pick<VideoOptions, "side" | "fps" | "seconds" | "sample">,
): CutPlan {
  const fps = options.fps;
  const cap = options.seconds;
  const duration = probe.duration;
  let stretches: Stretch[];
  if (duration === null || duration <= cap || options.sample === "start") {
    // A clip whose length is unknown is read from its start, and FFmpeg stops at the cap.
    stretches = [{ start: 0, length: duration === null ? cap : Math.min(duration, cap) }];
  } else {
    const count = Math.max(2, Math.ceil(cap / SEGMENT_SECONDS));
    const length = cap / count;
    const step = (duration - length) / (count - 1);
    stretches = Array.from({ length: count }, (_, index) => ({
      start: round(index * step),
      length: round(length),
    }));
  }
  const frames = stretches.reduce((sum, each) => sum + framesIn(each.length, fps), 0);
  return {
    stretches,
    ...sentSize(probe.width, probe.height, options.side),
    fps,
    frames,
    seconds: round(stretches.reduce((sum, each) => sum + each.length, 0)),
  };
}

/** Frames FFmpeg's fps filter keeps of `length` seconds: one at each tick from the start. */
function framesIn(length: number, fps: number): number {
  return Math.max(1, Math.ceil(round(length * fps)));
}

/**
 * When each of `count` frames is taken: the middle of each of `count` equal parts of the clip, so
 * none is its first black frame or its last. A clip of unknown length is sampled over the cap.
 */
export function frameTimes(duration: number | null, count: number, cap: number): number[] {
  const span = duration === null ? cap : duration;
  return Array.from({ length: count }, (_, index) => round((span * (index + 0.5)) / count));
}

/** FFmpeg's arguments for the cut: each stretch read on its own (seeking, never decoding the rest). */
export function cutArgs(input: readonly string[], plan: CutPlan, out: string): string[] {
  const args = ["-nostdin", "-v", "error", "-y"];
  plan.stretches.forEach((stretch) => {
    args.push("-ss", String(stretch.start), "-t", String(stretch.length), ...input);
  });
  // The fps filter fills a gap between two frames with copies of the first: `trim` holds each
  // stretch to its length, and `-frames:v` the whole cut to the plan, whatever the source's clock.
  const each = (length: number) =>
    `fps=${plan.fps},trim=duration=${length},scale=${plan.width}:${plan.height}:flags=bicubic,setsar=1`;
  const count = plan.stretches.length;
  const graph =
    count === 1
      ? `[0:v:0]${each(plan.stretches[0]?.length ?? 0)},format=yuv420p[v]`
      : `${plan.stretches.map((stretch, index) => `[${index}:v:0]${each(stretch.length)}[s${index}]`).join(";")};${plan.stretches
          .map((_, index) => `[s${index}]`)
          .join("")}concat=n=${count}:v=1:a=0,format=yuv420p[v]`;
  args.push(
    "-filter_complex",
    graph,
    "-map",
    "[v]",
    "-frames:v",
    String(plan.frames),
    "-an",
    "-sn",
    "-dn",
    "-map_metadata",
    "-1",
    "-c:v",
    "libx264",
    "-preset",
    "veryfast",
    "-crf",
    "23",
    "-movflags",
    "+faststart",
    "-f",
    "mp4",
    out,
    // What the cut holds, said by the FFmpeg that made it: no second process to count it.
    "-progress",
    "pipe:1",
    "-nostats",
  );
  return args;
}

/** The frames FFmpeg's `-progress` report says it wrote, from its last `frame=` line. */
export function framesWritten(progress: string): number {
  const counts = [...progress.matchAll(/^frame=(\d+)$/gm)];
  return Number(counts.at(-1)?.[1] ?? 0);
}

/** FFmpeg's arguments for frames: one seek per time, one JPEG out per frame (`outs[i]`). */
export function frameArgs(
  input: readonly string[],
  times: readonly number[],
  size: { width: number; height: number },
  outs: readonly string[],
): string[] {
  const args = ["-nostdin", "-v", "error", "-y"];
  for (const time of times) args.push("-ss", String(time), ...input);
  times.forEach((_, index) => {
    args.push(
      "-map",
      `${index}:v:0`,
      "-frames:v",
      "1",
      "-vf",
      `scale=${size.width}:${size.height}:flags=bicubic`,
      "-q:v",
      "3",
      "-map_metadata",
      "-1",
      "-f",
      "image2",
      "-update",
      "1",
      outs[index] ?? "",
    );
  });
  return args;
}

function round(value: number): number {
  return Math.round(value * 1000) / 1000;
}
