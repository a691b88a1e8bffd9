/**
 * `caption report` through the real CLI over an OUT that holds clips: each clip's thumbnail is its
 * poster frame (cut with the real FFmpeg from a clip made at test time), and a clip FFmpeg cannot
 * read is counted unreadable without stopping the page.
 */
import { mkdir, readdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import sharp from "sharp";
import { describe, expect, it } from "vitest";
import { THUMB_SIDE } from "../../src/report/thumbnails.js";
import type { ClipRecord } from "../../src/types.js";
import { captionRecord } from "../helpers/caption-record.js";
import { makeClip } from "../helpers/clips.js";
import { runCli } from "../helpers/run-cli.js";
import { useWorkspace } from "../helpers/workspace.js";

const ws = useWorkspace();

function row(file: string, video?: ClipRecord): string {
  return JSON.stringify(captionRecord(file, video));
}

describe("caption report over clips", () => {
  it("shows each clip's poster frame, and counts a clip that is no video unreadable", async () => {
    const media = path.join(ws.dir, "media");
    await mkdir(media);
    await makeClip(path.join(media, "clip.mp4"), { seconds: 2, pattern: "testsrc" });
    await writeFile(path.join(media, "broken.mp4"), "a text file renamed .mp4\n");
    const video: ClipRecord = {
      duration: 2,
      mode: "native",
      frames: 20,
      fps: 10,
      seconds: 2,
      segments: 1,
      bytes: 9000,
    };
    await writeFile(
      path.join(ws.dir, "out.jsonl"),
      `${row("media/clip.mp4", video)}\n${row("media/broken.mp4", video)}\n`,
    );

    const report = await runCli(["report", "out.jsonl"], { cwd: ws.dir });

    expect(report.code, report.stderr).toBe(0);
    expect(report.stderr).toMatch(/report: 2 captioned, 0 failed, 0 flagged → out\.report\.html/);
    expect(report.stderr).toMatch(/1 made, 0 kept, 1 unreadable/);
    const folder = path.join(ws.dir, "out.report_files");
    const thumbs = await readdir(folder);
    expect(thumbs).toHaveLength(1);
    const meta = await sharp(path.join(folder, thumbs[0] ?? "")).metadata();
    expect(meta.format).toBe("webp");
    expect(meta.width).toBeGreaterThan(0);
    expect(meta.height).toBeGreaterThan(0);
    expect(Math.max(meta.width ?? 0, meta.height ?? 0)).toBeLessThanOrEqual(THUMB_SIDE);
    const html = await readFile(path.join(ws.dir, "out.report.html"), "utf8");
    expect(html).toContain("0:02 clip, 20 frames sent as video");
  }, 90_000);
});
