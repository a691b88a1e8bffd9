import { spawn } from "node:child_process";
import { ImageError, UsageError } from "../../errors.js";

export type Tool = "ffmpeg" | "ffprobe";

/** What a clip's tools print that is kept: ffprobe's JSON is a few KB, a frame's JPEG less than 1 MB. */
const STDOUT_CAP = 8 * 1024 * 1024;
/** The end of what FFmpeg says on stderr, for the message of a clip it cannot read. */
const STDERR_TAIL = 4096;

export interface ToolRun {
  timeoutMs: number;
  /** Kills the tool when the run is aborted (a second Ctrl-C). */
  signal?: AbortSignal | undefined;
}

/**
 * Runs FFmpeg or ffprobe from PATH (never through a shell: a clip's name is an argument, not
 * code) and gives its stdout. A tool that outlasts `timeoutMs` is killed, and its clip fails
 * (`video_timeout`) rather than holding a decoder slot for ever; one that exits with an error
 * fails its clip (`video_unreadable`) with the last thing it said.
 */
export function runTool(tool: Tool, args: readonly string[], run: ToolRun): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    // Aborted before it began (a clip waiting for a slot at a second Ctrl-C): nothing to kill later.
    if (run.signal?.aborted) {
      reject(new ImageError("video_stopped", `${tool} was not started: the run was aborted`));
      return;
    }
    const child = spawn(tool, args, { stdio: ["ignore", "pipe", "pipe"] });
    const out: Buffer[] = [];
    let outBytes = 0;
    let err = "";
    let over = false;
    let timedOut = false;
    const kill = () => child.kill("SIGKILL");
    const timer = setTimeout(() => {
      timedOut = true;
      kill();
    }, run.timeoutMs);
    run.signal?.addEventListener("abort", kill, { once: true });
    child.stdout.on("data", (chunk: Buffer) => {
      outBytes += chunk.length;
      if (outBytes > STDOUT_CAP) {
        over = true;
        kill();
        return;
      }
      out.push(chunk);
    });
    child.stderr.on("data", (chunk: Buffer) => {
      err = (err + chunk.toString("utf8")).slice(-STDERR_TAIL);
    });
    const done = () => {
      clearTimeout(timer);
      run.signal?.removeEventListener("abort", kill);
    };
    child.on("error", (error: NodeJS.ErrnoException) => {
      done();
      reject(error.code === "ENOENT" ? missingTool(tool) : error);
    });
    child.on("close", (code, signal) => {
      done();
      if (timedOut) {
        reject(
          new ImageError(
            "video_timeout",
            `${tool} took more than ${run.timeoutMs / 1000} s over the clip and was stopped; raise --video-timeout for long or high-resolution clips, or cut the clip shorter first`,
          ),
        );
      } else if (over) {
        reject(
          new ImageError(
            "video_unreadable",
            `${tool} printed more than expected; the clip was left out`,
          ),
        );
      } else if (code !== 0) {
        reject(
          new ImageError(
            "video_unreadable",
            `the clip cannot be read as video (${tool} said: ${lastLine(err) || (signal ? `stopped by ${signal}` : `exit ${code}`)}); play it to check, then replace it with a good copy or remove it`,
          ),
        );
      } else {
        resolve(Buffer.concat(out));
      }
    });
  });
}

/** Said once before a run that has clips to cut, rather than once per clip. */
function missingTool(tool: Tool): UsageError {
  return new UsageError([
    `${tool} was not found on PATH, and clips are cut with FFmpeg before they are sent: install it (Debian or Ubuntu: apt-get install ffmpeg; macOS: brew install ffmpeg; Windows: winget install ffmpeg), or leave the clips out of the inputs`,
  ]);
}

/** Throws the message that says how to install FFmpeg when either tool is missing. */
export async function requireTools(timeoutMs: number): Promise<void> {
  for (const tool of ["ffprobe", "ffmpeg"] as const) {
    await runTool(tool, ["-version"], { timeoutMs }).catch((error: unknown) => {
      if (error instanceof UsageError) throw error;
      // Present but failing to say its version: each clip's own message will tell why.
    });
  }
}

function lastLine(text: string): string {
  const lines = text
    .split("\n")
    .map((line) => line.trim())
    .filter((line) => line !== "");
  return lines.at(-1) ?? "";
}
