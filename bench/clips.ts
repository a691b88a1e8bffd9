/**
 * P16's clips: camera-like 1080p30 footage made with FFmpeg at bench time, and the bare FFmpeg
 * commands `prepareClip` is held against.
 */
import { execFileSync, spawn } from "node:child_process";
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import path from "node:path";
import { cutArgs, planCut } from "../src/prepare/clip/cut-plan.js";
import { fileInput, INPUT_GUARD, probeArgs, readProbe } from "../src/prepare/clip/probe.js";
import { withDefaults } from "../src/settings/library-options.js";
import type { VideoOptions } from "../src/types.js";

/** The options a run cuts clips with when none are given: the settings table's defaults. */
export const CLIP_DEFAULTS: VideoOptions = { ...withDefaults({}).video, include: true };

/**
 * How the source is encoded: what a phone records at 1080p30. About 17 Mb/s, a keyframe every
 * second (30 frames, closed, no scene cuts), High profile with CABAC, 8×8 transforms and in-loop
 * deblocking, no B-frames; AAC stereo at 48 kHz, 192 kb/s. x264's ultrafast search keeps the
 * bench short; the options it turns off that change what a decoder does (CABAC, deblocking, 8×8)
 * are turned back on, so decoding it should cost about what decoding a phone's clip does.
 */
const CAMERA_VIDEO = [
  "-c:v",
  "libx264",
  "-preset",
  "ultrafast",
  "-x264-params",
  "cabac=1:deblock=0,0:8x8dct=1",
  "-profile:v",
  "high",
  "-pix_fmt",
  "yuv420p",
  "-b:v",
  "17M",
  "-maxrate",
  "20M",
  "-bufsize",
  "20M",
  "-g",
  "30",
  "-keyint_min",
  "30",
  "-sc_threshold",
  "0",
];
const CAMERA_AUDIO = ["-c:a", "aac", "-b:a", "192k", "-ac", "2", "-ar", "48000"];

/** Whether FFmpeg and ffprobe are on PATH, for P16. */
export function ffmpegAnswers(): boolean {
  try {
    for (const command of ["ffmpeg", "ffprobe"])
      execFileSync(command, ["-version"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

export interface ToolRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs FFmpeg or ffprobe to its end (no shell); throws on a non-zero exit. */
export function tool(command: "ffmpeg" | "ffprobe", args: readonly string[]): Promise<ToolRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    child.stderr.on("data", (chunk: Buffer) => {
      stderr = (stderr + chunk.toString()).slice(-4096);
    });
    child.on("error", reject);
    child.on("close", (code) => {
      if (code === 0) resolve({ code, stdout, stderr });
      else reject(new Error(`${command} exited ${code}: ${stderr.trim().split("\n").at(-1)}`));
    });
  });
}

export interface CameraClips {
  /** The long clip, `longSeconds` long. */
  long: string;
  /** `shortCount` clips of `shortSeconds` each, every one different footage. */
  short: string[];
  /** Seconds FFmpeg took to make them. */
  madeIn: number;
}

/**
 * Camera-like clips in `folder`: `testsrc2` (moving shapes, gradients and a running counter) under
 * strong temporal noise, as a sensor gives, which no frame repeats and the encoder cannot predict
 * away. One reel of `shortCount × shortSeconds` is encoded once and split, by stream copy at its
 * keyframes, into the short clips; the long clip is that reel played over again until
 * `longSeconds` (stream copy too: the same bitstream, decoded at the same cost, though its
 * pictures repeat after the reel's length).
 */
export async function cameraClips(
  folder: string,
  shortCount: number,
  shortSeconds: number,
  longSeconds: number,
): Promise<CameraClips> {
  const started = performance.now();
  await mkdir(folder, { recursive: true });
  const reelSeconds = shortCount * shortSeconds;
  const reel = path.join(folder, "reel.mp4");
  await tool("ffmpeg", [
    "-nostdin",
    "-v",
    "error",
    "-y",
    "-f",
    "lavfi",
    "-i",
    `testsrc2=size=1920x1080:rate=30:duration=${reelSeconds}`,
    "-f",
    "lavfi",
    "-i",
    `anoisesrc=color=pink:amplitude=0.2:sample_rate=48000:duration=${reelSeconds}`,
    "-vf",
    "noise=alls=20:allf=t+u,format=yuv420p",
    ...CAMERA_VIDEO,
    ...CAMERA_AUDIO,
    "-movflags",
    "+faststart",
    reel,
  ]);
  const shortFolder = path.join(folder, "short");
  await mkdir(shortFolder, { recursive: true });
  await tool("ffmpeg", [
    "-nostdin",
    "-v",
    "error",
    "-y",
    "-i",
    reel,
    "-map",
    "0",
    "-c",
    "copy",
    "-f",
    "segment",
    "-segment_time",
    String(shortSeconds),
    "-reset_timestamps",
    "1",
    "-segment_format",
    "mp4",
    "-segment_format_options",
    "movflags=+faststart",
    path.join(shortFolder, "clip-%02d.mp4"),
  ]);
  // A last piece of a frame or two, where the audio runs a little past the video, is dropped.
  const pieces = (await readdir(shortFolder)).sort().map((name) => path.join(shortFolder, name));
  const short = pieces.slice(0, shortCount);
  for (const extra of pieces.slice(shortCount)) await rm(extra, { force: true });
  const list = path.join(folder, "reel.txt");
  const loops = Math.ceil(longSeconds / reelSeconds);
  await writeFile(list, `${Array.from({ length: loops }, () => "file 'reel.mp4'").join("\n")}\n`);
  const long = path.join(folder, "long.mp4");
  await tool("ffmpeg", [
    "-nostdin",
    "-v",
    "error",
    "-y",
    "-f",
    "concat",
    "-safe",
    "0",
    "-i",
    list,
    "-map",
    "0",
    "-c",
    "copy",
    "-t",
    String(longSeconds),
    "-movflags",
    "+faststart",
    long,
  ]);
  await rm(reel, { force: true });
  // Names as a camera gives them, for what they are.
  const named: string[] = [];
  for (const [index, clip] of short.entries()) {
    const name = path.join(shortFolder, `VID_${String(index + 1).padStart(4, "0")}.mp4`);
    await rename(clip, name);
    named.push(name);
  }
  return { long, short: named, madeIn: (performance.now() - started) / 1000 };
}

/** What ffprobe says of a clip, as the bench reports its source. */
export interface SourceFacts {
  bytes: number;
  duration: number;
  videoBitRate: number;
  profile: string;
}

export async function sourceFacts(file: string): Promise<SourceFacts> {
  const run = await tool("ffprobe", [
    "-v",
    "error",
    "-print_format",
    "json",
    "-show_entries",
    "format=duration:stream=codec_type,profile,bit_rate",
    file,
  ]);
  const parsed = JSON.parse(run.stdout) as {
    format?: { duration?: string };
    streams?: { codec_type?: string; profile?: string; bit_rate?: string }[];
  };
  const video = parsed.streams?.find((stream) => stream.codec_type === "video");
  return {
    bytes: (await stat(file)).size,
    duration: Number(parsed.format?.duration ?? 0),
    videoBitRate: Number(video?.bit_rate ?? 0),
    profile: video?.profile ?? "unknown",
  };
}

/** The bare commands for one clip: ffprobe as the tool calls it, then FFmpeg with `cutArgs`. */
export interface BareCut {
  probe: string[];
  cut: string[];
}

/**
 * The commands of the cut `prepareClip(file, options, "native")` makes, worked out ahead (the plan
 * from a probe made here), with the cut written to `out`: its probe and its FFmpeg, the same
 * arguments.
 */
export async function bareCut(file: string, options: VideoOptions, out: string): Promise<BareCut> {
  const probe = probeArgs(file);
  const plan = planCut(readProbe((await tool("ffprobe", probe)).stdout), options);
  return { probe, cut: cutArgs([...INPUT_GUARD, "-i", fileInput(file)], plan, out) };
}

/** Runs one bare cut as a script would: ffprobe, then FFmpeg; the bytes of what it wrote. */
export async function runBare(bare: BareCut, out: string): Promise<number> {
  await tool("ffprobe", bare.probe);
  await tool("ffmpeg", bare.cut);
  return (await stat(out)).size;
}

/** Runs `jobs` at most `limit` at a time; their results in order. */
export async function pool<T>(jobs: (() => Promise<T>)[], limit: number): Promise<T[]> {
  const results: T[] = new Array(jobs.length);
  let next = 0;
  const worker = async () => {
    while (next < jobs.length) {
      const index = next;
      next += 1;
      const job = jobs[index];
      if (job) results[index] = await job();
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, jobs.length) }, worker));
  return results;
}

const TICKS = 100;

/**
 * CPU seconds spent so far by this process and by the children it has waited for (FFmpeg and
 * ffprobe, from /proc: cutime and cstime), which a busy machine inflates far less than wall time.
 */
export async function cpuSeconds(): Promise<number> {
  const stat = await readFile("/proc/self/stat", "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const children = (Number(fields[13]) + Number(fields[14])) / TICKS;
  const own = process.cpuUsage();
  return children + (own.user + own.system) / 1e6;
}
