import { ImageError } from "../../errors.js";
import { runTool, type ToolRun } from "./ffmpeg.js";
import { fileInput, INPUT_GUARD, probeClip } from "./probe.js";

/** Where the poster is taken, as a share of the clip: past a fade-in or a black first frame. */
const POSTER_SHARE = 0.1;
/** ...but no later than this many seconds, so a long film's poster is still its opening scene. */
const POSTER_CAP_SECONDS = 3;
/** A clip shorter than this shows its first frame: a tenth of it may fall between its frames. */
const SHORT_CLIP_SECONDS = 1;
/**
 * The poster's long side at most: it becomes a thumbnail, and an 8K frame's JPEG could pass what
 * runTool keeps of stdout. Smaller clips keep their size.
 */
const POSTER_SIDE = 1280;

/** When a clip's poster is taken, from its length (null when its container does not say). */
export function posterTime(duration: number | null): number {
  if (duration === null || duration < SHORT_CLIP_SECONDS) return 0;
  return Math.round(Math.min(POSTER_CAP_SECONDS, duration * POSTER_SHARE) * 1000) / 1000;
}

/**
 * One frame of a clip as a JPEG, a little into it (`posterTime`): what a page shows for it. The
 * header is read first (ffprobe), and FFmpeg seeks to the frame rather than decoding up to it, so a
 * ten-hour file costs no more than a short one. Throws ImageError for a clip that cannot be read.
 */
export async function posterFrame(absPath: string, run: ToolRun): Promise<Buffer> {
  const probe = await probeClip(absPath, run);
  const time = posterTime(probe.duration);
  let frame = await runTool("ffmpeg", posterArgs(absPath, time), run);
  // A header that overstates the length, or a frame rate too low for the time: no frame comes out.
  if (frame.length === 0 && time > 0) frame = await runTool("ffmpeg", posterArgs(absPath, 0), run);
  if (frame.length === 0) {
    throw new ImageError(
      "video_unreadable",
      "no frame of the clip could be decoded; play it to check, then replace it with a good copy or remove it",
    );
  }
  return frame;
}

/** FFmpeg's arguments for one frame at `time` seconds, as a JPEG on stdout. */
export function posterArgs(absPath: string, time: number): string[] {
  return [
    "-nostdin",
    "-v",
    "error",
    // Before the input: a seek, not a decode of everything up to the time.
    "-ss",
    String(time),
    ...INPUT_GUARD,
    "-i",
    fileInput(absPath),
    "-map",
    "0:v:0",
    "-frames:v",
    "1",
    "-vf",
    `scale='min(${POSTER_SIDE},iw)':'min(${POSTER_SIDE},ih)':force_original_aspect_ratio=decrease`,
    "-q:v",
    "3",
    "-map_metadata",
    "-1",
    "-f",
    "image2pipe",
    "-c:v",
    "mjpeg",
    "pipe:1",
  ];
}
