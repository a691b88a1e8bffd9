/**
 * A `video_url` part read as vLLM and the hosted MiniCPM-V API read one: a base64 data URL of a
 * video, which must decode to something with a video stream. ffprobe stands in for the server's
 * decoder, so what the client sent is recorded as a decoder saw it.
 */
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { isRecord } from "./http.js";
import type { RecordedVideo } from "./types.js";

const VIDEO_DATA_URL_PREFIX = /^data:(video\/[A-Za-z0-9.+-]+);base64,/;
const BASE64_BODY = /^[A-Za-z0-9+/]*={0,2}$/;
/** Long enough to count a short clip's frames on a slow CI box, short enough not to hang a test. */
const PROBE_TIMEOUT_MS = 5_000;

/** What a request's video part came to: a record, or why it is refused (its record is null). */
export interface VideoReading {
  video: RecordedVideo | null;
  error: string | null;
}

/** What ffprobe found, before it is merged with the bytes' own mime, size and hash. */
type Probe = Omit<RecordedVideo, "mime" | "bytes" | "sha256">;

const UNPROBED: Probe = {
  playable: false,
  codec: null,
  container: null,
  width: null,
  height: null,
  fps: null,
  frames: null,
  duration: null,
  audio: false,
};

export async function readVideoUrl(url: unknown, inspect: boolean): Promise<VideoReading> {
  // Whitespace is refused outright, as for images: Buffer.from(…, "base64") would skip it and
  // hide a line-wrapped payload.
  const prefix = typeof url === "string" ? VIDEO_DATA_URL_PREFIX.exec(url) : null;
  if (typeof url !== "string" || /\s/.test(url) || prefix === null) {
    return refused("not a data:video/…;base64, URL");
  }
  const mime = prefix[1] ?? "";
  const payload = url.slice(prefix[0].length);
  if (!inspect) {
    // Benchmarks: spawning ffprobe per request would charge the server's time to the client.
    const bytes = Math.floor((payload.length * 3) / 4);
    return { video: { mime, bytes, sha256: "", ...UNPROBED }, error: null };
  }
  if (payload.length === 0 || !BASE64_BODY.test(payload)) return refused("bad base64");
  const buffer = Buffer.from(payload, "base64");
  const outcome = await probe(buffer);
  if (typeof outcome === "string") return refused(outcome);
  if (!outcome.playable) return refused("no video stream");
  return {
    video: {
      mime,
      bytes: buffer.length,
      sha256: createHash("sha256").update(buffer).digest("hex"),
      ...outcome,
    },
    error: null,
  };
}

function refused(why: string): VideoReading {
  return { video: null, error: `invalid video: ${why}` };
}

/** ffprobe's reading of the bytes, or why it could not read them. */
async function probe(buffer: Buffer): Promise<Probe | string> {
  // ffprobe needs a seekable file for MP4 (its index may sit at the end), so not a pipe.
  const dir = await mkdtemp(join(tmpdir(), "fake-endpoint-video-"));
  const file = join(dir, "clip");
  try {
    await writeFile(file, buffer);
    const run = await runFfprobe(file);
    if (run.timedOut) return `ffprobe took over ${PROBE_TIMEOUT_MS} ms`;
    if (run.code !== 0) {
      // The temp path means nothing to the test reading the message.
      const said = run.stderr.split(file).join("input").trim().split("\n")[0] ?? "";
      return `ffprobe could not read it${said === "" ? "" : ` (${said})`}`;
    }
    return parseProbe(run.stdout) ?? "ffprobe gave no readable report";
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

interface FfprobeRun {
  code: number;
  timedOut: boolean;
  stdout: string;
  stderr: string;
}

function runFfprobe(file: string): Promise<FfprobeRun> {
  const args = [
    "-v",
    "error",
    "-print_format",
    "json",
    "-show_streams",
    "-show_format",
    "-count_frames",
    file,
  ];
  return new Promise((resolve, reject) => {
    execFile(
      "ffprobe",
      args,
      { timeout: PROBE_TIMEOUT_MS, killSignal: "SIGKILL", maxBuffer: 4 * 1024 * 1024 },
      (error, stdout, stderr) => {
        if (error === null) {
          resolve({ code: 0, timedOut: false, stdout, stderr });
          return;
        }
        // A missing ffprobe is the test machine's fault, not the client's: let it surface as a
        // 500 with the reason, rather than as a 400 blaming the video.
        if (error.code === "ENOENT") {
          reject(new Error("ffprobe is not installed (the fake needs it to read video_url parts)"));
          return;
        }
        resolve({
          code: typeof error.code === "number" ? error.code : 1,
          timedOut: error.killed === true,
          stdout,
          stderr,
        });
      },
    );
  });
}

function parseProbe(stdout: string): Probe | null {
  let report: unknown;
  try {
    report = JSON.parse(stdout);
  } catch {
    return null;
  }
  if (!isRecord(report)) return null;
  const streams = Array.isArray(report.streams) ? report.streams.filter(isRecord) : [];
  const format = isRecord(report.format) ? report.format : {};
  const video = streams.find((stream) => stream.codec_type === "video");
  const audio = streams.some((stream) => stream.codec_type === "audio");
  const container = typeof format.format_name === "string" ? format.format_name : null;
  if (video === undefined) return { ...UNPROBED, container, audio };
  return {
    playable: true,
    codec: typeof video.codec_name === "string" ? video.codec_name : null,
    container,
    width: numberOf(video.width),
    height: numberOf(video.height),
    fps: rateOf(video.avg_frame_rate),
    frames: numberOf(video.nb_read_frames) ?? numberOf(video.nb_frames),
    duration: numberOf(format.duration) ?? numberOf(video.duration),
    audio,
  };
}

/** ffprobe writes most numbers as strings ("20", "2.000000") and "N/A" where it has none. */
function numberOf(value: unknown): number | null {
  const number = typeof value === "string" && value.trim() !== "" ? Number(value) : value;
  return typeof number === "number" && Number.isFinite(number) ? number : null;
}

/** "30000/1001" as a number; "0/0", ffprobe's word for unknown, as null. */
function rateOf(value: unknown): number | null {
  if (typeof value !== "string") return null;
  const [num, den] = value.split("/").map(Number);
  if (num === undefined || den === undefined || !(den > 0) || !(num > 0)) return null;
  return num / den;
}
