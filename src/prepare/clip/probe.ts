import { ImageError } from "../../errors.js";
import { runTool, type ToolRun } from "./ffmpeg.js";

/** What a clip's header says: enough to plan its cut without decoding a frame. */
export interface ClipProbe {
  /** Seconds; null when the container does not say (a live recording's WebM, say). */
  duration: number | null;
  /** Upright: as FFmpeg's decoder hands the frames on, a phone's rotation applied. */
  width: number;
  height: number;
  /** Frames a second of the source; null when the container does not say. */
  fps: number | null;
}

/**
 * The demuxers a clip may be read by, and only from a file: a playlist (HLS, concat) named
 * `.mp4` in someone else's folder would otherwise have FFmpeg open addresses or files the user
 * never named. MP4's references to other files are off by default in FFmpeg, and stay off.
 */
export const INPUT_GUARD = [
  "-protocol_whitelist",
  "file",
  "-format_whitelist",
  "mov,mp4,m4a,3gp,3g2,mj2,matroska,webm,avi",
] as const;

/** FFmpeg's name for a file: `file:` keeps a name such as `a:b.mp4` from being read as a protocol. */
export function fileInput(absPath: string): string {
  return `file:${absPath}`;
}

/** Reads a clip's header with ffprobe: its length, upright size and frame rate. */
export async function probeClip(absPath: string, run: ToolRun): Promise<ClipProbe> {
  const out = await runTool("ffprobe", probeArgs(absPath), run);
  return readProbe(out.toString("utf8"));
}

/** ffprobe's arguments for a clip's header: its first video stream and the container's length. */
export function probeArgs(absPath: string): string[] {
  return [
    "-v",
    "error",
    "-print_format",
    "json",
    "-show_entries",
    "format=duration:stream=codec_type,width,height,avg_frame_rate,r_frame_rate,duration:stream_side_data=rotation:stream_tags=rotate",
    "-select_streams",
    "v:0",
    ...INPUT_GUARD,
    "-i",
    fileInput(absPath),
  ];
}

/** ffprobe's JSON as a ClipProbe; a clip with no video stream (a song named `.mp4`) fails. */
export function readProbe(json: string): ClipProbe {
  let parsed: unknown;
  try {
    parsed = JSON.parse(json);
  } catch {
    throw new ImageError("video_unreadable", "ffprobe's report on the clip could not be read");
  }
  const root = record(parsed);
  const streams = Array.isArray(root.streams) ? root.streams.map(record) : [];
  const video = streams.find((stream) => stream.codec_type === "video");
  const width = Number(video?.width);
  const height = Number(video?.height);
  if (!video || !(width > 0) || !(height > 0)) {
    throw new ImageError(
      "no_video_stream",
      "the file holds no video stream (sound only, or subtitles); leave it out of the inputs",
    );
  }
  const turned = Math.abs(rotationOf(video)) % 180 === 90;
  const duration = seconds(record(root.format).duration) ?? seconds(video.duration);
  return {
    duration,
    width: turned ? height : width,
    height: turned ? width : height,
    fps: rate(video.avg_frame_rate) ?? rate(video.r_frame_rate),
  };
}

function rotationOf(stream: Record<string, unknown>): number {
  const sideData = Array.isArray(stream.side_data_list) ? stream.side_data_list.map(record) : [];
  for (const data of sideData) {
    const rotation = Number(data.rotation);
    if (Number.isFinite(rotation)) return rotation;
  }
  const tag = Number(record(stream.tags).rotate);
  return Number.isFinite(tag) ? tag : 0;
}

function seconds(value: unknown): number | null {
  const number =
    typeof value === "string" || typeof value === "number" ? Number(value) : Number.NaN;
  return Number.isFinite(number) && number > 0 ? number : null;
}

/** "30000/1001" as 29.97; "0/0" (unknown) as null. */
function rate(value: unknown): number | null {
  if (typeof value !== "string") return null;
  const [top, bottom] = value.split("/").map(Number);
  if (top === undefined || !Number.isFinite(top) || top <= 0) return null;
  const per = bottom === undefined ? 1 : bottom;
  return Number.isFinite(per) && per > 0 ? top / per : null;
}

function record(value: unknown): Record<string, unknown> {
  return typeof value === "object" && value !== null ? (value as Record<string, unknown>) : {};
}
