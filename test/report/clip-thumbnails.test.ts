/**
 * A clip's thumbnail on the review page: its poster frame, cut with the real FFmpeg from clips made
 * at test time, through the same sharp pipeline as an image's; a clip FFmpeg cannot read is counted
 * unreadable like an undecodable image, and the page is written all the same.
 */
import { mkdir, readdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import sharp from "sharp";
import { describe, expect, it } from "vitest";
import { posterArgs, posterFrame, posterTime } from "../../src/prepare/clip/poster.js";
import { clipLabel, clockOf, reportRowOf } from "../../src/report/report-data.js";
import { THUMB_SIDE, ThumbnailMaker } from "../../src/report/thumbnails.js";
import { thumbnailFolder, writeReport } from "../../src/report/write-report.js";
import { openCaptionWriter } from "../../src/sinks/out-file/writers.js";
import type { ClipRecord, OutputFormat } from "../../src/types.js";
import { captionRecord } from "../helpers/caption-record.js";
import { makeClip } from "../helpers/clips.js";
import { useWorkspace } from "../helpers/workspace.js";

const ws = useWorkspace();

async function makeImage(file: string): Promise<string> {
  await mkdir(path.dirname(file), { recursive: true });
  await sharp({ create: { width: 400, height: 300, channels: 3, background: "#3a7" } })
    .jpeg()
    .toFile(file);
  return file;
}

const VIDEO: ClipRecord = {
  duration: 2,
  mode: "native",
  frames: 20,
  fps: 10,
  seconds: 2,
  segments: 1,
  bytes: 12_345,
};

const record = captionRecord;

/** The rows a page carries, as its script reads them. */
async function pageRows(page: string): Promise<Record<string, unknown>[]> {
  const html = await readFile(page, "utf8");
  const match = /<script type="application\/json" id="rows">([\s\S]*?)<\/script>/.exec(html);
  return JSON.parse(match?.[1] ?? "null") as Record<string, unknown>[];
}

async function expectThumbnail(file: string): Promise<void> {
  const meta = await sharp(file).metadata();
  expect(meta.format).toBe("webp");
  expect(meta.width).toBeGreaterThan(0);
  expect(meta.height).toBeGreaterThan(0);
  expect(Math.max(meta.width ?? 0, meta.height ?? 0)).toBeLessThanOrEqual(THUMB_SIDE);
}

describe("posterFrame", () => {
  it("is taken a little into a clip, no later than a few seconds, and at the start of a short one", () => {
    expect(posterTime(null)).toBe(0);
    expect(posterTime(0.5)).toBe(0);
    expect(posterTime(2)).toBeCloseTo(0.2);
    expect(posterTime(3600)).toBeLessThanOrEqual(5);
    expect(posterTime(3600)).toBeGreaterThan(0);
  });

  it("seeks before the input, reads only a file, and writes one frame to stdout", () => {
    const args = posterArgs("/clips/a:b.mp4", 0.2);
    const input = args.indexOf("-i");
    expect(args.indexOf("-ss")).toBeGreaterThanOrEqual(0);
    expect(args.indexOf("-ss")).toBeLessThan(input);
    expect(args[input + 1]).toBe("file:/clips/a:b.mp4");
    expect(args.slice(0, input)).toContain("-protocol_whitelist");
    expect(args.join(" ")).toMatch(/-frames:v 1 /);
    expect(args.at(-1)).toBe("pipe:1");
  });

  it("gives one JPEG frame of a clip, upright as it plays, and rejects a file that is no clip", async () => {
    const landscape = await makeClip(path.join(ws.dir, "wide.mp4"), {
      width: 320,
      height: 240,
      seconds: 2,
      pattern: "testsrc",
    });
    const frame = await posterFrame(landscape, { timeoutMs: 60_000 });
    const meta = await sharp(frame).metadata();
    expect(meta.format).toBe("jpeg");
    expect([meta.width, meta.height]).toEqual([320, 240]);

    // A clip of a single frame: a tenth of it would fall after its only frame.
    const still = await makeClip(path.join(ws.dir, "still.mp4"), {
      width: 160,
      height: 120,
      seconds: 1,
      rate: 1,
      pattern: "testsrc",
    });
    expect((await sharp(await posterFrame(still, { timeoutMs: 60_000 })).metadata()).width).toBe(
      160,
    );

    const broken = path.join(ws.dir, "broken.mp4");
    await writeFile(broken, "this is text, not a clip\n");
    await expect(posterFrame(broken, { timeoutMs: 60_000 })).rejects.toThrow(/cannot be read/);
  }, 60_000);
});

describe("ThumbnailMaker", () => {
  it("makes a clip's thumbnail from its poster frame, and counts a clip that cannot be read failed", async () => {
    const folder = path.join(ws.dir, "thumbs");
    await mkdir(folder);
    const clip = await makeClip(path.join(ws.dir, "v", "big.mov"), {
      width: 1280,
      height: 720,
      seconds: 1,
      pattern: "testsrc",
    });
    const image = await makeImage(path.join(ws.dir, "v", "photo.jpg"));
    const broken = path.join(ws.dir, "v", "broken.mp4");
    await writeFile(broken, "not a clip at all");
    // One FFmpeg at a time: the clips still all get their turn.
    const maker = new ThumbnailMaker(folder, 1);
    const names = [
      await maker.add(clip, null),
      await maker.add(image, null),
      await maker.add(broken, null),
    ];
    await maker.finish();
    expect({ made: maker.made, failed: maker.failed, reused: maker.reused }).toEqual({
      made: 2,
      failed: 1,
      reused: 0,
    });
    expect((await readdir(folder)).sort()).toEqual([names[0], names[1]].sort());
    await expectThumbnail(path.join(folder, names[0] ?? ""));
    const meta = await sharp(path.join(folder, names[0] ?? "")).metadata();
    // A 16:9 clip keeps its shape: made from the frame, not a placeholder's square.
    expect(meta.width).toBe(THUMB_SIDE);
    expect(meta.height).toBe(135);
  }, 60_000);
});

describe("the page of a run that captioned clips", () => {
  for (const format of ["jsonl", "csv"] as const satisfies readonly OutputFormat[]) {
    it(`shows a clip's poster and length from a ${format.toUpperCase()} OUT, and lists a broken clip as unreadable`, async () => {
      await makeClip(path.join(ws.dir, "media", "walk.mp4"), {
        width: 320,
        height: 240,
        seconds: 2,
        pattern: "testsrc",
      });
      await makeImage(path.join(ws.dir, "media", "photo.jpg"));
      await writeFile(path.join(ws.dir, "media", "broken.mp4"), "text renamed .mp4\n");
      const output = path.join(ws.dir, `out.${format}`);
      const writer = await openCaptionWriter(output, format, { clips: true });
      await writer.write(record("media/walk.mp4", VIDEO));
      await writer.write(record("media/photo.jpg"));
      await writer.write(record("media/broken.mp4", { ...VIDEO, duration: 65, mode: "frames" }));
      await writer.close();
      const page = path.join(ws.dir, "review.html");

      const result = await writeReport({
        output,
        format,
        errorsPath: path.join(ws.dir, "none.errors.jsonl"),
        page,
        cwd: ws.dir,
      });

      expect(result.summary.captioned).toBe(3);
      expect({ made: result.made, unreadable: result.unreadable }).toEqual({
        made: 2,
        unreadable: 1,
      });
      const rows = await pageRows(page);
      expect(rows.map((row) => row.p)).toEqual([
        "media/walk.mp4",
        "media/photo.jpg",
        "media/broken.mp4",
      ]);
      expect(rows.map((row) => row.v)).toEqual([
        "0:02 clip, 20 frames sent as video",
        undefined,
        "1:05 clip, 20 frames sent as images",
      ]);
      const folder = thumbnailFolder(page);
      expect((await readdir(folder)).length).toBe(2);
      for (const row of rows.slice(0, 2)) {
        await expectThumbnail(path.join(folder, path.basename(String(row.t))));
      }

      // A second report keeps the clip's thumbnail rather than running FFmpeg again.
      const again = await writeReport({
        output,
        format,
        errorsPath: path.join(ws.dir, "none.errors.jsonl"),
        page,
        cwd: ws.dir,
      });
      expect({ made: again.made, reused: again.reused, unreadable: again.unreadable }).toEqual({
        made: 0,
        reused: 2,
        unreadable: 1,
      });
    }, 60_000);
  }
});

describe("a clip's row", () => {
  it("is read from a JSONL row's video object and a CSV row's video_ cells alike", () => {
    expect(reportRowOf({ path: "a.mp4", video: VIDEO })?.video).toEqual({
      duration: 2,
      sentAs: "native",
      frames: 20,
    });
    expect(
      reportRowOf({
        path: "a.mp4",
        video_duration: "",
        video_sent_as: "frames",
        video_frames: "8",
        video_fps: "",
      })?.video,
    ).toEqual({ duration: null, sentAs: "frames", frames: 8 });
    // An image's row in a run that captioned clips too: its video cells are empty.
    expect(
      reportRowOf({ path: "a.jpg", video_duration: "", video_sent_as: "", video_frames: "" })
        ?.video,
    ).toBeNull();
    expect(reportRowOf({ path: "a.jpg" })?.video).toBeNull();
  });

  it("says the clip's length as a player does", () => {
    expect(clockOf(5)).toBe("0:05");
    expect(clockOf(0.3)).toBe("0:01");
    expect(clockOf(754.6)).toBe("12:35");
    expect(clockOf(3723)).toBe("1:02:03");
    expect(clockOf(null)).toBe("");
    expect(clipLabel({ duration: null, sentAs: null, frames: null })).toBe("clip");
    expect(clipLabel({ duration: 5, sentAs: "frames", frames: 1 })).toBe(
      "0:05 clip, 1 frame sent as images",
    );
  });
});
