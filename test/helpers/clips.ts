import { execFile } from "node:child_process";
import { mkdir } from "node:fs/promises";
import path from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

export interface ClipSpec {
  width?: number;
  height?: number;
  /** Frames a second of the source. */
  rate?: number;
  seconds: number;
  /** An AAC tone beside the picture. */
  audio?: boolean;
  /** lavfi's pattern: testsrc2 moves and has texture, as a camera's clip does. */
  pattern?: string;
  /** Encoder and its arguments: H.264 unless a WebM or an AVI asks otherwise. */
  codec?: readonly string[];
}

/** Makes a clip with FFmpeg at test time, as a camera or a phone would leave one. */
export async function makeClip(file: string, spec: ClipSpec): Promise<string> {
  await mkdir(path.dirname(file), { recursive: true });
  const size = `${spec.width ?? 320}x${spec.height ?? 240}`;
  const args = [
    "-v",
    "error",
    "-y",
    "-f",
    "lavfi",
    "-i",
    `${spec.pattern ?? "testsrc2"}=size=${size}:rate=${spec.rate ?? 10}`,
    ...(spec.audio ? ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100"] : []),
    "-t",
    String(spec.seconds),
    "-pix_fmt",
    "yuv420p",
    ...(spec.codec ?? ["-c:v", "libx264", "-preset", "ultrafast"]),
    ...(spec.audio ? ["-c:a", file.endsWith(".webm") ? "libopus" : "aac", "-shortest"] : []),
    file,
  ];
  await run("ffmpeg", args, { timeout: 60_000 });
  return file;
}

/** Runs FFmpeg with these arguments, for a clip no spec describes. */
export async function ffmpeg(args: readonly string[]): Promise<void> {
  await run("ffmpeg", ["-v", "error", "-y", ...args], { timeout: 60_000 });
}
