import type { ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import {
  copyFile,
  mkdir,
  mkdtemp,
  readFile,
  rm,
  symlink,
  truncate,
  writeFile,
} from "node:fs/promises";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ffmpeg, makeClip } from "../helpers/clips.js";
import type { RecordedRequest } from "../helpers/fake-endpoint/types.js";
import { useFakeEndpoint } from "../helpers/fake-endpoint/use.js";
import { LLAMA_PEER, startLlamaPeer } from "../helpers/llama-peer.js";
import { runCli, TEST_KEY } from "../helpers/run-cli.js";
import { readCsv, readJsonl, useWorkspace } from "../helpers/workspace.js";

/** Clips made once for the file, copied into each test's folder. */
let made = "";
const clip = (name: string) => path.join(made, name);

beforeAll(async () => {
  made = await mkdtemp(path.join(tmpdir(), "caption-clips-"));
  await Promise.all([
    // A phone's landscape clip with sound, larger than the budget on every count.
    makeClip(clip("beach.mp4"), { width: 1280, height: 720, rate: 25, seconds: 4, audio: true }),
    makeClip(clip("street.webm"), {
      width: 640,
      height: 480,
      rate: 10,
      seconds: 3,
      codec: ["-c:v", "libvpx-vp9", "-b:v", "300k", "-deadline", "realtime"],
    }),
    makeClip(clip("dog.mov"), { width: 320, height: 240, rate: 15, seconds: 2 }),
    // Longer than --video-seconds: what is sent is cut from it.
    makeClip(clip("long.mp4"), { width: 160, height: 120, rate: 10, seconds: 60 }),
    // Sound alone in an MP4: ffprobe reads it, and it has no picture.
    ffmpeg(["-f", "lavfi", "-i", "sine=frequency=440", "-t", "2", "-c:a", "aac", clip("song.mp4")]),
    // Three frames five hours apart: fifteen hours by its header, a few KB on disk.
    ffmpeg([
      "-f",
      "lavfi",
      "-i",
      "color=c=teal:size=64x64:rate=1/18000",
      "-frames:v",
      "3",
      "-c:v",
      "libx264",
      clip("night.mkv"),
    ]),
  ]);
  await copyFile(path.join("fixtures", "images", "photo.jpg"), clip("photo.jpg"));
}, 120_000);

afterAll(async () => {
  if (made) await rm(made, { recursive: true, force: true });
});

const ws = useWorkspace();

/** The clips and a photo copied into `folder` of the test's workspace. */
async function folderOf(folder: string, names: readonly string[]): Promise<string> {
  await mkdir(path.join(ws.dir, folder), { recursive: true });
  for (const name of names) await copyFile(clip(name), path.join(ws.dir, folder, name));
  return folder;
}

/** The video a request carried, checked by the fake with ffprobe. */
function videoOf(request: RecordedRequest | undefined) {
  const video = request?.video;
  if (!video) throw new Error("the request carried no video");
  return video;
}

describe("clips against an endpoint that takes video", () => {
  // A clip over the default budget is refused, as a server with a limit would.
  const fake = useFakeEndpoint({
    apiKey: TEST_KEY,
    videoLimits: { maxShortSide: 448, maxFps: 1, maxSeconds: 60 },
  });
  const run = (args: string[]) => runCli(args, { cwd: ws.dir, baseUrl: fake.baseUrl });

  it("captions a folder of clips beside a photo with --video, each cut to the budget, every output written", async () => {
    await folderOf("media", ["beach.mp4", "street.webm", "dog.mov", "photo.jpg"]);
    const result = await run([
      "media",
      "--video",
      "-o",
      "out.csv",
      "--sidecar",
      "--xmp",
      "--hf-metadata",
    ]);
    expect(result.code, result.stderr).toBe(0);

    const rows = await readCsv(path.join(ws.dir, "out.csv"));
    expect(rows.map((row) => row.path).sort()).toEqual([
      "media/beach.mp4",
      "media/dog.mov",
      "media/photo.jpg",
      "media/street.webm",
    ]);
    const byPath = new Map(rows.map((row) => [row.path, row]));
    const beach = byPath.get("media/beach.mp4");
    expect(beach?.video_sent_as).toBe("native");
    expect(Number(beach?.video_duration)).toBeCloseTo(4, 0);
    expect(Number(beach?.video_fps)).toBe(1);
    expect(Number(beach?.video_frames)).toBe(4);
    expect(Number(beach?.video_segments)).toBe(1);
    expect(Number(beach?.video_bytes)).toBeGreaterThan(0);
    // Shrunk to 448 on its short side, the aspect kept.
    expect([beach?.width, beach?.height]).toEqual(["796", "448"]);
    // A clip already within the budget keeps its size.
    const dog = byPath.get("media/dog.mov");
    expect([dog?.width, dog?.height, dog?.video_sent_as]).toEqual(["320", "240", "native"]);
    expect(byPath.get("media/photo.jpg")?.video_sent_as).toBe("");

    // What the server got: playable H.264 in MP4, silent, within the budget, as the row says.
    const clips = fake.requests.filter((request) => request.video);
    expect(clips).toHaveLength(3);
    for (const request of clips) {
      const video = videoOf(request);
      expect(video.playable).toBe(true);
      expect(video.codec).toBe("h264");
      expect(video.container).toContain("mp4");
      expect(video.audio).toBe(false);
      expect(Math.min(video.width ?? 0, video.height ?? 0)).toBeLessThanOrEqual(448);
      expect(video.fps ?? 99).toBeLessThanOrEqual(1.01);
      expect(video.duration ?? 99).toBeLessThanOrEqual(60);
      expect(request.prompt).toMatch(/video clip/);
    }
    const sentBeach = clips.find(
      (request) => videoOf(request).bytes === Number(beach?.video_bytes),
    );
    expect(sentBeach, "the row's bytes are those sent").toBeDefined();
    expect(videoOf(sentBeach).frames).toBe(4);
    expect([videoOf(sentBeach).width, videoOf(sentBeach).height]).toEqual([796, 448]);

    // Beside each clip: its caption, its XMP sidecar; the dataset's metadata names each clip.
    for (const name of ["beach", "street", "dog"]) {
      expect(existsSync(path.join(ws.dir, "media", `${name}.txt`))).toBe(true);
    }
    expect(await readFile(path.join(ws.dir, "media", "beach.mp4.xmp"), "utf8")).toContain(
      "dc:description",
    );
    const metadata = await readJsonl(path.join(ws.dir, "media", "metadata.jsonl"));
    expect(metadata.map((row) => row.file_name).sort()).toEqual([
      "beach.mp4",
      "dog.mov",
      "photo.jpg",
      "street.webm",
    ]);

    // Resumed: nothing is sent again.
    fake.resetStats();
    const again = await run(["media", "--video", "-o", "out.csv", "--sidecar"]);
    expect(again.code, again.stderr).toBe(0);
    expect(fake.requests).toHaveLength(0);
  });

  it("leaves a folder's clips alone without --video, and takes a clip named as a file", async () => {
    await folderOf("media", ["dog.mov", "photo.jpg"]);
    const folder = await run(["media", "-o", "photos.jsonl"]);
    expect(folder.code, folder.stderr).toBe(0);
    expect((await readJsonl(path.join(ws.dir, "photos.jsonl"))).map((row) => row.path)).toEqual([
      "media/photo.jpg",
    ]);
    expect(fake.requests.every((request) => request.video === null)).toBe(true);

    const named = await run(["media/dog.mov", "-o", "dog.jsonl"]);
    expect(named.code, named.stderr).toBe(0);
    const [row] = await readJsonl(path.join(ws.dir, "dog.jsonl"));
    expect(row?.path).toBe("media/dog.mov");
    expect(row?.video).toMatchObject({ mode: "native", frames: 2, segments: 1 });
  });

  it("cuts a clip longer than --video-seconds into evenly spaced segments, or takes its start", async () => {
    await folderOf("media", ["long.mp4"]);
    const args = ["media/long.mp4", "--video-seconds", "12"];
    const spread = await run([...args, "-o", "spread.jsonl"]);
    expect(spread.code, spread.stderr).toBe(0);
    const [row] = await readJsonl(path.join(ws.dir, "spread.jsonl"));
    expect(row?.video).toEqual({
      duration: 60,
      mode: "native",
      frames: 12,
      fps: 1,
      seconds: 12,
      segments: 2,
      bytes: expect.any(Number),
    });
    const sent = videoOf(fake.requests.at(-1));
    expect(sent.frames).toBe(12);
    expect(sent.duration).toBeCloseTo(12, 0);

    const start = await run([...args, "--video-sample", "start", "-o", "start.jsonl"]);
    expect(start.code, start.stderr).toBe(0);
    const [first] = await readJsonl(path.join(ws.dir, "start.jsonl"));
    expect(first?.video).toMatchObject({ seconds: 12, segments: 1, frames: 12 });
  });

  it("sends --video-frames frames as images in one request under --video-mode frames, the prompt saying what they are", async () => {
    await folderOf("media", ["beach.mp4"]);
    const result = await run([
      "media",
      "--video",
      "--video-mode",
      "frames",
      "--video-frames",
      "5",
      "-o",
      "out.csv",
    ]);
    expect(result.code, result.stderr).toBe(0);
    const [request] = fake.requests;
    expect(request?.video).toBeNull();
    expect(request?.images).toHaveLength(5);
    for (const image of request?.images ?? []) {
      expect(image.mime).toBe("image/jpeg");
      // Each frame one slice of 448²: what the model's guide asks of video.
      expect((image.width ?? 0) * (image.height ?? 0)).toBeLessThanOrEqual(448 * 448);
    }
    expect(request?.prompt).toMatch(
      /The 5 images below are frames of one video clip of 4 seconds, in the order/,
    );
    const [row] = await readCsv(path.join(ws.dir, "out.csv"));
    expect([row?.video_sent_as, row?.video_frames, row?.video_fps]).toEqual(["frames", "5", ""]);
  });

  it("asks several prompts of a clip, each its own request, one row with every answer", async () => {
    await folderOf("media", ["dog.mov"]);
    await writeFile(
      path.join(ws.dir, "prompts.json"),
      JSON.stringify({
        short: "One sentence about this clip.",
        motion: "How does the camera move?",
      }),
    );
    const result = await run(["media", "--video", "--prompts", "prompts.json", "-o", "out.csv"]);
    expect(result.code, result.stderr).toBe(0);
    const [row] = await readCsv(path.join(ws.dir, "out.csv"));
    expect(row?.caption_short).not.toBe("");
    expect(row?.caption_motion).not.toBe("");
    expect([row?.video_sent_as, row?.video_frames]).toEqual(["native", "2"]);
    expect(fake.requests.map((request) => request.prompt)).toEqual([
      "One sentence about this clip.",
      "How does the camera move?",
    ]);
    expect(new Set(fake.requests.map((request) => videoOf(request).sha256)).size).toBe(1);
  });

  it("estimates a folder of clips from a sample, their tokens following the frames each would send", async () => {
    await folderOf("media", ["beach.mp4", "street.webm", "dog.mov", "long.mp4", "night.mkv"]);
    const settings = ["--video", "-o", "out.jsonl"];
    const estimate = await run(["estimate", "media", ...settings, "--sample", "3", "--json"]);
    expect(estimate.code, estimate.stderr).toBe(0);
    const forecast = JSON.parse(estimate.stdout) as {
      images: Record<string, number>;
      prompt_tokens: { expected: number };
    };
    expect(forecast.images).toMatchObject({ found: 5, sampled: 3, left: 2, unreadable: 0 });
    const rest = await run(["media", ...settings]);
    expect(rest.code, rest.stderr).toBe(0);
    const rows = await readJsonl(path.join(ws.dir, "out.jsonl"));
    expect(rows).toHaveLength(5);
    const actual = rows.reduce((sum, row) => sum + Number(row.prompt_tokens), 0);
    expect(Math.abs(forecast.prompt_tokens.expected - actual) / actual).toBeLessThan(0.1);
  });

  it("stops at a token budget between clips, and a fresh budget goes on where it stopped", async () => {
    await folderOf("media", ["beach.mp4", "street.webm", "dog.mov", "long.mp4"]);
    const first = await run([
      "media",
      "--video",
      "-o",
      "out.csv",
      "-c",
      "1",
      "--budget-tokens",
      "50",
    ]);
    expect(first.code, first.stderr).toBe(4);
    const held = await readCsv(path.join(ws.dir, "out.csv"));
    expect(held).toHaveLength(1);
    const rest = await run(["media", "--video", "-o", "out.csv", "--budget-tokens", "1000000"]);
    expect(rest.code, rest.stderr).toBe(0);
    expect(await readCsv(path.join(ws.dir, "out.csv"))).toHaveLength(4);
    expect(fake.requests.filter((request) => request.video)).toHaveLength(4);
  });

  it("sends a copy of a clip under another name once, and gives both their row", async () => {
    await folderOf("media", ["dog.mov"]);
    await copyFile(
      path.join(ws.dir, "media", "dog.mov"),
      path.join(ws.dir, "media", "dog-copy.mov"),
    );
    const result = await run(["media", "--video", "-o", "out.csv", "-c", "1"]);
    expect(result.code, result.stderr).toBe(0);
    const rows = await readCsv(path.join(ws.dir, "out.csv"));
    expect(rows.map((row) => row.path).sort()).toEqual(["media/dog-copy.mov", "media/dog.mov"]);
    expect(new Set(rows.map((row) => row.sha256)).size).toBe(1);
    expect(fake.requests).toHaveLength(1);
    // A copy made since: its caption read back from OUT, with what was sent of the first.
    await copyFile(path.join(ws.dir, "media", "dog.mov"), path.join(ws.dir, "media", "dog-3.mov"));
    const later = await run(["media", "--video", "-o", "out.csv"]);
    expect(later.code, later.stderr).toBe(0);
    expect(fake.requests).toHaveLength(1);
    const all = await readCsv(path.join(ws.dir, "out.csv"));
    expect(all).toHaveLength(3);
    for (const row of all) {
      expect([row.video_sent_as, row.video_frames, row.video_duration]).toEqual([
        "native",
        "2",
        "2",
      ]);
    }
  });

  it("gives each bad clip a clear row and goes on: empty, text, truncated, sound only, and a clip longer than a day", async () => {
    await folderOf("media", ["dog.mov", "song.mp4", "night.mkv"]);
    const dir = path.join(ws.dir, "media");
    await writeFile(path.join(dir, "empty.mp4"), "");
    await writeFile(path.join(dir, "notes.mp4"), "these are my notes, not a video\n".repeat(50));
    // An MP4 cut off in the middle, before its index (written last) ever arrived.
    await copyFile(clip("beach.mp4"), path.join(dir, "cut.mp4"));
    await truncate(path.join(dir, "cut.mp4"), 20_000);
    const result = await run(["media", "--video", "-o", "out.csv"]);
    expect(result.code, result.stderr).toBe(3);
    const rows = await readCsv(path.join(ws.dir, "out.csv"));
    expect(rows.map((row) => row.path).sort()).toEqual(["media/dog.mov", "media/night.mkv"]);
    // Fifteen hours by its header: only the cap is cut from it.
    const night = rows.find((row) => row.path === "media/night.mkv");
    expect(Number(night?.video_duration)).toBeGreaterThan(36_000);
    expect(Number(night?.video_seconds)).toBeLessThanOrEqual(60);
    const failures = await readJsonl(path.join(ws.dir, "out.errors.jsonl"));
    const codes = Object.fromEntries(failures.map((failure) => [failure.path, failure.code]));
    expect(codes).toEqual({
      "media/empty.mp4": "empty_file",
      "media/notes.mp4": "video_unreadable",
      "media/cut.mp4": "video_unreadable",
      "media/song.mp4": "no_video_stream",
    });
    for (const failure of failures) expect(String(failure.message)).not.toMatch(/^\s*at /m);
    expect(fake.requests.filter((request) => request.video)).toHaveLength(2);
  });

  it("never lets a playlist or a concat list named .mp4 make FFmpeg open an address or another file", async () => {
    // Someone else's folder: an HLS playlist pointing at a server, a concat list at a clip outside.
    let hits = 0;
    const server = createServer((_request, response) => {
      hits += 1;
      response.end();
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const port = (server.address() as AddressInfo).port;
    try {
      await folderOf("media", ["dog.mov"]);
      const outside = clip("beach.mp4");
      await writeFile(
        path.join(ws.dir, "media", "playlist.mp4"),
        `#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXTINF:4,\nhttp://127.0.0.1:${port}/segment.ts\n#EXT-X-ENDLIST\n`,
      );
      // FFmpeg's own defaults would read this one: a playlist whose segment is a file outside.
      await writeFile(
        path.join(ws.dir, "media", "local.mp4"),
        `#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXTINF:4,\n${outside}\n#EXT-X-ENDLIST\n`,
      );
      await writeFile(
        path.join(ws.dir, "media", "list.mp4"),
        `ffconcat version 1.0\nfile ${outside}\n`,
      );
      const result = await run(["media", "--video", "-o", "out.csv"]);
      expect(result.code, result.stderr).toBe(3);
      expect(hits).toBe(0);
      const failures = await readJsonl(path.join(ws.dir, "out.errors.jsonl"));
      expect(failures.map((failure) => [failure.path, failure.code]).sort()).toEqual([
        ["media/list.mp4", "video_unreadable"],
        ["media/local.mp4", "video_unreadable"],
        ["media/playlist.mp4", "video_unreadable"],
      ]);
      // Only the one real clip was sent: nothing of the clip outside the folder.
      expect(fake.requests.filter((request) => request.video)).toHaveLength(1);
    } finally {
      server.close();
    }
  });

  it("fails a clip FFmpeg takes longer than --video-timeout over, and the run ends", async () => {
    await folderOf("media", ["beach.mp4", "photo.jpg"]);
    const result = await run(["media", "--video", "--video-timeout", "0.001", "-o", "out.csv"]);
    expect(result.code, result.stderr).toBe(3);
    const [failure] = await readJsonl(path.join(ws.dir, "out.errors.jsonl"));
    expect(failure).toMatchObject({ path: "media/beach.mp4", code: "video_timeout" });
    expect(String(failure?.message)).toMatch(/--video-timeout/);
    expect((await readCsv(path.join(ws.dir, "out.csv"))).map((row) => row.path)).toEqual([
      "media/photo.jpg",
    ]);
  });

  it("says how to install FFmpeg, before sending anything, when it is not on PATH", async () => {
    await folderOf("media", ["dog.mov", "photo.jpg"]);
    // A PATH that has node and nothing else.
    const bin = path.join(ws.dir, "bin");
    await mkdir(bin);
    await symlink(process.execPath, path.join(bin, "node"));
    const result = await runCli(["media", "--video", "-o", "out.csv"], {
      cwd: ws.dir,
      baseUrl: fake.baseUrl,
      env: { PATH: bin },
    });
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/ffprobe was not found on PATH.*apt-get install ffmpeg/);
    expect(result.stderr).not.toMatch(/^\s*at /m);
    expect(fake.requests).toHaveLength(0);
  });
});

describe("clips against an endpoint that takes video but answers 400 for another reason", () => {
  const fake = useFakeEndpoint("manual");
  const run = (args: string[]) => runCli(args, { cwd: ws.dir, baseUrl: fake.baseUrl });

  it("takes a refusal of response_format for what it is: clips still go as video", async () => {
    await fake.start({ apiKey: TEST_KEY, responseFormat: "reject" });
    await folderOf("media", ["beach.mp4", "dog.mov", "street.webm"]);
    await writeFile(
      path.join(ws.dir, "schema.json"),
      JSON.stringify({
        type: "object",
        properties: { caption: { type: "string" } },
        required: ["caption"],
      }),
    );
    const result = await run([
      "media",
      "--video",
      "--json-schema",
      "schema.json",
      "-o",
      "out.csv",
      "-c",
      "1",
    ]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr).toMatch(/refused response_format/);
    expect(result.stderr).not.toMatch(/refused a clip sent as video/);
    const rows = await readCsv(path.join(ws.dir, "out.csv"));
    // The first clip went as frames while the cause was unknown; the rest as video.
    expect(rows.filter((row) => row.video_sent_as === "native")).toHaveLength(2);
  });

  it("sends a clip again at half its short side after a 413", async () => {
    await fake.start({ apiKey: TEST_KEY, script: [{ kind: "status", status: 413 }] });
    await folderOf("media", ["beach.mp4"]);
    const result = await run(["media", "--video", "-o", "out.csv"]);
    expect(result.code, result.stderr).toBe(0);
    const [row] = await readCsv(path.join(ws.dir, "out.csv"));
    expect([row?.width, row?.height, row?.video_sent_as]).toEqual(["398", "224", "native"]);
    const sent = videoOf(fake.requests.at(-1));
    expect([sent.width, sent.height]).toEqual([398, 224]);
  });
});

describe("clips against an endpoint that refuses video", () => {
  const fake = useFakeEndpoint({ apiKey: TEST_KEY, video: false });
  const run = (args: string[]) => runCli(args, { cwd: ws.dir, baseUrl: fake.baseUrl });

  it("falls back to frames under --video-mode auto, once for the endpoint, and says so", async () => {
    await folderOf("media", ["beach.mp4", "dog.mov", "street.webm"]);
    const result = await run(["media", "--video", "-o", "out.csv", "-c", "1"]);
    expect(result.code, result.stderr).toBe(0);
    expect(
      result.stderr.match(
        /refused a clip sent as video \(HTTP 400: unsupported content\[\]\.type\)/g,
      ),
    ).toHaveLength(1);
    const rows = await readCsv(path.join(ws.dir, "out.csv"));
    expect(rows.map((row) => row.video_sent_as)).toEqual(["frames", "frames", "frames"]);
    expect(rows.map((row) => row.video_frames)).toEqual(["8", "8", "8"]);
    // One clip tried natively; every other went as frames from the start.
    const natively = fake.requests.filter((request) =>
      JSON.stringify(request.body).includes('"video_url"'),
    );
    expect(natively).toHaveLength(1);
    expect(fake.requests.filter((request) => request.images.length === 8)).toHaveLength(3);
  });

  it("fails each clip under --video-mode native with the server's words, and captions the rest", async () => {
    await folderOf("media", ["dog.mov", "photo.jpg"]);
    const result = await run(["media", "--video", "--video-mode", "native", "-o", "out.csv"]);
    expect(result.code, result.stderr).toBe(3);
    const [failure] = await readJsonl(path.join(ws.dir, "out.errors.jsonl"));
    expect(failure).toMatchObject({ path: "media/dog.mov", status: 400 });
    expect(String(failure?.message)).toMatch(/unsupported content\[\]\.type/);
    expect((await readCsv(path.join(ws.dir, "out.csv"))).map((row) => row.path)).toEqual([
      "media/photo.jpg",
    ]);
  });
});

describe("clips over two endpoints, one that takes video and one that does not", () => {
  const fakes = useFakeEndpoint("manual");

  it("sends video to the one that takes it and frames to the one that refuses it, saying so once", async () => {
    const takes = await fakes.startAnother({ apiKey: TEST_KEY, latencyMs: 50 });
    const refuses = await fakes.startAnother({ apiKey: TEST_KEY, latencyMs: 50, video: false });
    await folderOf("media", ["beach.mp4", "street.webm", "dog.mov", "long.mp4", "night.mkv"]);
    const result = await runCli(
      [
        "media",
        "--video",
        "-o",
        "out.csv",
        "--base-url",
        takes.baseUrl,
        "--base-url",
        refuses.baseUrl,
        "-c",
        "1",
      ],
      { cwd: ws.dir },
    );
    expect(result.code, result.stderr).toBe(0);
    const label = (fake: { port: number }) => `127.0.0.1:${fake.port}`;
    // Said once, however the clip it refused came to be answered.
    const warnings = result.stderr.match(/(\S+) refused a clip sent as video/g) ?? [];
    expect(warnings).toEqual([`${label(refuses)} refused a clip sent as video`]);
    const rows = await readCsv(path.join(ws.dir, "out.csv"));
    expect(rows).toHaveLength(5);
    for (const row of rows) {
      // Whichever endpoint answered a clip, it got the form it takes.
      expect(row.video_sent_as).toBe(row.endpoint === label(takes) ? "native" : "frames");
    }
    expect(takes.requests.every((request) => request.video !== null)).toBe(true);
    expect(refuses.requests.filter((request) => request.images.length > 0).length).toBe(
      rows.filter((row) => row.endpoint === label(refuses)).length,
    );
    // Tried natively until the verdict: once, or twice where a second clip reached it before the
    // first was answered; every later clip it took went as frames from the start.
    const natively = refuses.requests.filter((request) =>
      JSON.stringify(request.body).includes('"video_url"'),
    );
    expect(natively.length).toBeGreaterThanOrEqual(1);
    expect(natively.length).toBeLessThanOrEqual(2);
  });
});

const havePeer = existsSync(LLAMA_PEER);
if (!havePeer && process.env.CI) {
  throw new Error(`CI: the llama.cpp peer is not at ${LLAMA_PEER}; CI must run beside ../shared`);
}

describe.skipIf(!havePeer)("clips against the real llama.cpp server (MiniCPM-V pair)", () => {
  let server: ChildProcess | null = null;
  let baseUrl = "";

  beforeAll(async () => {
    const log = path.join(made, "llama.log");
    ({ server, baseUrl } = await startLlamaPeer(log));
  }, 120_000);

  afterAll(() => {
    server?.kill("SIGTERM");
  });

  it("captions clips at the defaults: refused as video, sent as frames, as many as its context holds", async () => {
    await folderOf("media", ["beach.mp4", "street.webm", "photo.jpg"]);
    const result = await runCli(["media", "--video", "-o", "out.csv", "--max-tokens", "8"], {
      cwd: ws.dir,
      baseUrl,
      env: { MINICPM_API_KEY: "k-peer" },
    });
    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr).toMatch(
      /refused a clip sent as video \(HTTP 400: unsupported content\[\]\.type\)/,
    );
    // Eight frames are more than its 4096 tokens: each clip is cut again to fit, and that is said.
    expect(result.stderr).toMatch(
      /too little context for one clip at a time.*fewer --video-frames/,
    );
    const rows = await readCsv(path.join(ws.dir, "out.csv"));
    expect(rows).toHaveLength(3);
    for (const row of rows.filter((each) => each.path !== "media/photo.jpg")) {
      expect(row.video_sent_as).toBe("frames");
      expect(Number(row.video_frames)).toBeGreaterThanOrEqual(1);
      expect(Number(row.prompt_tokens)).toBeLessThanOrEqual(4096);
      expect(row.caption).not.toBe("");
    }
  });
});
