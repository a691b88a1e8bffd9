import { mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { ImageError } from "../../errors.js";
import type { ClipSent, PreparedImage, VideoOptions } from "../../types.js";
import { encodedImage } from "../encoded-image.js";
import { findFileProblem } from "../file-problems.js";
import { targetSize } from "../prepare.js";
import { cutArgs, frameArgs, framesWritten, frameTimes, planCut } from "./cut-plan.js";
import { runTool, type ToolRun } from "./ffmpeg.js";
import { type ClipProbe, fileInput, INPUT_GUARD, probeClip } from "./probe.js";

/** How a clip goes to a server: one MP4, or frames as images. */
export type ClipForm = "native" | "frames";

/**
 * The most of a cut that is sent. A minute at 448 px and one frame a second is one to three
 * megabytes (`npm run bench`, P16); a cut past this (a `side` and `fps` raised far) would be a
 * request no server takes.
 */
const MAX_SENT_BYTES = 48 * 1024 * 1024;

/**
 * Cuts a clip to the model's budget with FFmpeg: one H.264 MP4 without sound (`native`), or
 * `frames` JPEGs taken evenly across it. Its header is read first (ffprobe), so only the
 * stretches sent are decoded, and a ten-hour file costs no more than a minute's. Throws
 * ImageError, with a stable code, for a clip that cannot be read or cut in time.
 */
export async function prepareClip(
  absPath: string,
  options: VideoOptions,
  form: ClipForm,
  signal?: AbortSignal,
): Promise<PreparedImage> {
  const problem = await findFileProblem(absPath);
  if (problem) throw problem;
  const run: ToolRun = { timeoutMs: options.timeoutMs, signal };
  const probe = await probeClip(absPath, run);
  const folder = await mkdtemp(path.join(tmpdir(), "caption-clip-"));
  try {
    return form === "native"
      ? await cutNative(absPath, probe, options, run, folder)
      : await cutFrames(absPath, probe, options, run, folder);
  } finally {
    await rm(folder, { recursive: true, force: true });
  }
}

async function cutNative(
  absPath: string,
  probe: ClipProbe,
  options: VideoOptions,
  run: ToolRun,
  folder: string,
): Promise<PreparedImage> {
  const plan = planCut(probe, options);
  const out = path.join(folder, "clip.mp4");
  const progress = await runTool("ffmpeg", cutArgs(inputOf(absPath), plan, out), run);
  const data = await readSent(out);
  // Fewer than planned where a source has gaps (a stretch with no frame in it): the row says.
  const frames = framesWritten(progress.toString("utf8"));
  if (frames === 0) {
    throw new ImageError(
      "video_unreadable",
      "no frame of the clip could be cut; play it to check, then replace it with a good copy or remove it",
    );
  }
  const clip: ClipSent = {
    duration: probe.duration,
    mode: "native",
    frames,
    fps: plan.fps,
    seconds: plan.seconds,
    segments: plan.stretches.length,
  };
  return clipImage(data, "video/mp4", plan, probe, clip, undefined);
}

async function cutFrames(
  absPath: string,
  probe: ClipProbe,
  options: VideoOptions,
  run: ToolRun,
  folder: string,
): Promise<PreparedImage> {
  const times = frameTimes(probe.duration, options.frames, options.seconds);
  const size = frameSize(probe, options.side);
  const outs = times.map((_, index) => path.join(folder, `${index}.jpg`));
  await runTool("ffmpeg", frameArgs(inputOf(absPath), times, size, outs), run);
  const frames: Buffer[] = [];
  let bytes = 0;
  // A time past the end of a clip whose header lied about its length yields no frame.
  for (const out of outs) {
    const frame = await readSent(out).catch(() => null);
    if (frame === null || frame.length === 0) continue;
    bytes += frame.length;
    if (bytes > MAX_SENT_BYTES) throw tooLarge();
    frames.push(frame);
  }
  const [first] = frames;
  if (!first) {
    throw new ImageError(
      "video_unreadable",
      "no frame of the clip could be decoded; play it to check, then replace it with a good copy or remove it",
    );
  }
  const span = probe.duration ?? options.seconds;
  const clip: ClipSent = {
    duration: probe.duration,
    mode: "frames",
    frames: frames.length,
    fps: null,
    seconds: Math.round(span * 1000) / 1000,
    segments: frames.length,
  };
  return clipImage(first, "image/jpeg", size, probe, clip, frames, bytes);
}

/**
 * What a clip counts for in `caption estimate`, which forecasts tokens from the pixels an image
 * is sent with: one slice of `side`² pixels per frame it would send, read from its header alone,
 * since MiniCPM-V takes each frame of a video as one slice however small. Null for a clip that
 * cannot be read. Under `auto` the clip is taken to go natively.
 */
export async function clipSentPixels(
  absPath: string,
  options: VideoOptions,
): Promise<number | null> {
  try {
    const probe = await probeClip(absPath, { timeoutMs: options.timeoutMs });
    const frames = options.mode === "frames" ? options.frames : planCut(probe, options).frames;
    return clipPixels(frames, options.side);
  } catch {
    return null;
  }
}

/** A clip's frames as the pixels `caption estimate` counts them at: one slice each. */
export function clipPixels(frames: number, side: number): number {
  return frames * side * side;
}

/**
 * A frame sent as an image fits in `side`² pixels: the one slice MiniCPM-V's guide recommends for
 * video, where a server slices a larger image into several, each as costly as a frame.
 */
function frameSize(probe: ClipProbe, side: number): { width: number; height: number } {
  return targetSize(probe.width, probe.height, side * side);
}

function inputOf(absPath: string): string[] {
  return [...INPUT_GUARD, "-i", fileInput(absPath)];
}

/** A cut as a prepared image: its bytes sent, the source's size as `original`, what was sent. */
function clipImage(
  data: Buffer,
  mime: PreparedImage["mime"],
  size: { width: number; height: number },
  probe: ClipProbe,
  clip: ClipSent,
  frames: readonly Buffer[] | undefined,
  bytes = data.length,
): PreparedImage {
  const image = encodedImage(data, mime, size, { width: probe.width, height: probe.height });
  image.bytes = bytes;
  image.clip = clip;
  // Like `data`, not enumerated: a program that logs or copies the image gets no megabytes of it.
  if (frames) Object.defineProperty(image, "frames", { value: frames, enumerable: false });
  return image;
}

async function readSent(file: string): Promise<Buffer> {
  if ((await stat(file)).size > MAX_SENT_BYTES) throw tooLarge();
  return readFile(file);
}

function tooLarge(): ImageError {
  return new ImageError(
    "video_too_large",
    `the clip's cut came to more than ${MAX_SENT_BYTES / 1024 / 1024} MiB; lower --video-side, --video-fps or --video-seconds`,
  );
}
