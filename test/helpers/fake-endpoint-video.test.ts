import { type ChildProcess, execFile, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import sharp from "sharp";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { minicpmPromptTokens, minicpmRequestTokens } from "./fake-endpoint/context.js";
import { useFakeEndpoint } from "./fake-endpoint/use.js";
import { type FakeEndpoint, type RecordedVideo, startFakeEndpoint } from "./fake-endpoint.js";

const run = promisify(execFile);
const fakes = useFakeEndpoint("manual");

const PROMPT = "Describe this clip.";
/** The fake counts a prompt's words, and its context model 16 + 1.3 a word. */
const PROMPT_WORDS = 3;
const LLAMA_NO_VIDEO =
  '{"error":{"code":400,"message":"unsupported content[].type","type":"invalid_request_error"}}';

let dir = "";
/** 320×240, 10 fps, 2 s of H.264 and nothing else. */
let silent: Buffer;
/** The same picture with an AAC tone. */
let withAudio: Buffer;
/** AAC alone: ffprobe reads it, but it has no video stream. */
let audioOnly: Buffer;

async function ffmpeg(name: string, ...args: string[]): Promise<Buffer> {
  const out = join(dir, name);
  await run("ffmpeg", ["-v", "error", "-y", ...args, out], { timeout: 20_000 });
  return readFile(out);
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "fake-endpoint-video-test-"));
  const picture = ["-f", "lavfi", "-i", "testsrc=size=320x240:rate=10"];
  const tone = ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100"];
  [silent, withAudio, audioOnly] = await Promise.all([
    ffmpeg("silent.mp4", ...picture, "-t", "2", "-pix_fmt", "yuv420p", "-c:v", "libx264"),
    ffmpeg(
      "with-audio.mp4",
      ...picture,
      ...tone,
      "-t",
      "2",
      "-pix_fmt",
      "yuv420p",
      "-c:v",
      "libx264",
      "-c:a",
      "aac",
    ),
    ffmpeg("tone.m4a", ...tone, "-t", "1", "-c:a", "aac"),
  ]);
});

afterAll(async () => {
  if (dir !== "") await rm(dir, { recursive: true, force: true });
});

const videoUrl = (bytes: Buffer, mime = "video/mp4") =>
  `data:${mime};base64,${bytes.toString("base64")}`;
const videoPart = (url: string) => ({ type: "video_url", video_url: { url } });
const imagePart = (bytes: Buffer) => ({
  type: "image_url",
  image_url: { url: `data:image/jpeg;base64,${bytes.toString("base64")}` },
});
const sha256 = (bytes: Buffer) => createHash("sha256").update(bytes).digest("hex");

function post(endpoint: FakeEndpoint, parts: object[]): Promise<Response> {
  return fetch(`${endpoint.baseUrl}/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      model: "test-model",
      messages: [{ role: "user", content: [{ type: "text", text: PROMPT }, ...parts] }],
    }),
  });
}

interface Completion {
  choices: { message: { content: string | null } }[];
  usage: { prompt_tokens: number; completion_tokens: number; total_tokens: number };
}

interface ErrorBody {
  error: { message: string; type: string; code?: unknown; n_prompt_tokens?: number };
}

function onlyRecord(endpoint: FakeEndpoint) {
  expect(endpoint.requests).toHaveLength(1);
  const [record] = endpoint.requests;
  if (record === undefined) throw new Error("no request recorded");
  return record;
}

describe("fake endpoint: video_url parts", () => {
  it("answers a good H.264 clip 200 and records it as ffprobe reads it", async () => {
    const endpoint = await fakes.start();
    const res = await post(endpoint, [videoPart(videoUrl(silent))]);
    expect(res.status).toBe(200);

    const expected: RecordedVideo = {
      mime: "video/mp4",
      bytes: silent.length,
      sha256: sha256(silent),
      playable: true,
      codec: "h264",
      container: "mov,mp4,m4a,3gp,3g2,mj2",
      width: 320,
      height: 240,
      fps: 10,
      frames: 20,
      duration: 2,
      audio: false,
    };
    const record = onlyRecord(endpoint);
    expect(record.video).toEqual(expected);
    expect(record.image).toBeNull();
    expect(record.images).toEqual([]);

    const json = (await res.json()) as Completion;
    expect(json.choices[0]?.message.content).toBe(
      `A test caption for ${expected.sha256.slice(0, 12)}.`,
    );
    // 64 tokens a frame, and the prompt's words.
    expect(json.usage.prompt_tokens).toBe(PROMPT_WORDS + 64 * 20);
  });

  it("records whether a clip has audio", async () => {
    const endpoint = await fakes.start();
    expect((await post(endpoint, [videoPart(videoUrl(withAudio))])).status).toBe(200);
    expect(onlyRecord(endpoint).video).toMatchObject({
      playable: true,
      codec: "h264",
      audio: true,
    });
  });

  it("answers 400 invalid video for what is not a readable video, and records none", async () => {
    const endpoint = await fakes.start();
    const text = Buffer.from("This is a text file, renamed notes.mp4.\n");
    await writeFile(join(dir, "notes.mp4"), text);
    const renamed = await readFile(join(dir, "notes.mp4"));
    const good = silent.toString("base64");
    const cases: [string, string | RegExp][] = [
      [videoUrl(renamed), /^invalid video: ffprobe could not read it \(.*\)$/],
      [videoUrl(audioOnly, "video/mp4"), "invalid video: no video stream"],
      [`data:image/jpeg;base64,${good}`, "invalid video: not a data:video/…;base64, URL"],
      [`data:video/mp4;base64,${good.slice(0, 76)}\n${good.slice(76)}`, /^invalid video: not a/],
      ["data:video/mp4;base64,***", "invalid video: bad base64"],
      ["data:video/mp4;base64,", "invalid video: bad base64"],
    ];
    for (const [url, message] of cases) {
      const res = await post(endpoint, [videoPart(url)]);
      expect(res.status, url.slice(0, 40)).toBe(400);
      const body = (await res.json()) as ErrorBody;
      expect(body.error.type).toBe("invalid_request_error");
      expect(body.error.message).toMatch(message);
    }
    expect(endpoint.requests.map((r) => r.video)).toEqual(cases.map(() => null));
  });

  it("refuses any video_url with llama-server's own 400 when video is false", async () => {
    const endpoint = await fakes.start({ video: false });
    const res = await post(endpoint, [videoPart(videoUrl(silent))]);
    expect(res.status).toBe(400);
    expect(await res.text()).toBe(LLAMA_NO_VIDEO);
    // Refused unread: not even a broken URL gets further.
    const broken = await post(endpoint, [videoPart("not a url")]);
    expect(await broken.text()).toBe(LLAMA_NO_VIDEO);
    expect(endpoint.requests.map((r) => r.video)).toEqual([null, null]);

    const jpeg = await sharp({
      create: { width: 16, height: 16, channels: 3, background: "#808080" },
    })
      .jpeg()
      .toBuffer();
    expect((await post(endpoint, [imagePart(jpeg)])).status).toBe(200);
  });

  it("answers a video over its limits 400 video over budget, naming each", async () => {
    const tight = await fakes.start({ videoLimits: { maxFps: 5, maxSeconds: 1 } });
    const res = await post(tight, [videoPart(videoUrl(silent))]);
    expect(res.status).toBe(400);
    expect(((await res.json()) as ErrorBody).error.message).toBe(
      "video over budget: maxFps (10 > 5), maxSeconds (2 > 1)",
    );
    // The record still says what was sent, so a test can see by how much it was over.
    expect(onlyRecord(tight).video).toMatchObject({ fps: 10, duration: 2 });

    const small = await fakes.startAnother({ videoLimits: { maxShortSide: 200, maxBytes: 10 } });
    const over = (await (await post(small, [videoPart(videoUrl(silent))])).json()) as ErrorBody;
    expect(over.error.message).toBe(
      `video over budget: maxShortSide (240 > 200), maxBytes (${silent.length} > 10)`,
    );

    const roomy = await fakes.startAnother({
      videoLimits: { maxShortSide: 240, maxFps: 10, maxSeconds: 2, maxBytes: silent.length },
    });
    expect((await post(roomy, [videoPart(videoUrl(silent))])).status).toBe(200);
  });

  it("holds a video's frames against the context budget", async () => {
    const endpoint = await fakes.start({ context: { tokens: 1000 } });
    const res = await post(endpoint, [videoPart(videoUrl(silent))]);
    expect(res.status).toBe(400);
    const body = (await res.json()) as ErrorBody;
    expect(body.error.type).toBe("exceed_context_size_error");
    expect(body.error.n_prompt_tokens).toBe(64 * 20 + 16 + Math.ceil(PROMPT_WORDS * 1.3));
  });

  it("refuses video limits no server could have", async () => {
    await expect(startFakeEndpoint({ videoLimits: { maxFps: 0 } })).rejects.toThrow(
      "videoLimits.maxFps must be > 0",
    );
  });
});

describe("fake endpoint: several image_url parts", () => {
  const frames: Buffer[] = [];

  beforeAll(async () => {
    for (const [width, height] of [
      [32, 24],
      [64, 48],
      [56, 56],
    ] as const) {
      frames.push(
        await sharp({ create: { width, height, channels: 3, background: "#336699" } })
          .jpeg()
          .toBuffer(),
      );
    }
  });

  it("records every image in order, and the first as `image`", async () => {
    const endpoint = await fakes.start();
    const res = await post(endpoint, frames.map(imagePart));
    expect(res.status).toBe(200);
    const record = onlyRecord(endpoint);
    expect(record.images).toEqual(
      frames.map((frame, i) => ({
        mime: "image/jpeg",
        bytes: frame.length,
        width: [32, 64, 56][i],
        height: [24, 48, 56][i],
        sha256: sha256(frame),
      })),
    );
    expect(record.image).toEqual(record.images[0]);
    expect(record.video).toBeNull();
    // Each image in 28-pixel patches, as one image is counted: 1 + 4 + 4.
    expect(((await res.json()) as Completion).usage.prompt_tokens).toBe(PROMPT_WORDS + 9);
  });

  it("skips decoding when told not to inspect, as benchmarks do", async () => {
    const endpoint = await fakes.start({ inspectImages: false });
    expect((await post(endpoint, frames.map(imagePart))).status).toBe(200);
    // Benchmarks keep no body, so nothing of the images is read at all.
    expect(onlyRecord(endpoint)).toMatchObject({ image: null, images: [], video: null });
  });

  it("refuses a bad image after good ones, keeping those read before it", async () => {
    const endpoint = await fakes.start();
    const [first] = frames;
    if (first === undefined) throw new Error("no frames");
    const bad = { type: "image_url", image_url: { url: "data:image/jpeg;base64,AA AA" } };
    const res = await post(endpoint, [imagePart(first), bad, imagePart(first)]);
    expect(res.status).toBe(400);
    expect(((await res.json()) as ErrorBody).error.message).toBe("invalid image data URL");
    const record = onlyRecord(endpoint);
    expect(record.images).toHaveLength(1);
    expect(record.image?.sha256).toBe(sha256(first));
  });
});

describe("fake endpoint: prompt tokens", () => {
  it("costs a text-only or one-image request what it always did", async () => {
    for (const prompt of [null, "", PROMPT]) {
      expect(minicpmRequestTokens([], null, prompt)).toBe(minicpmPromptTokens(null, null, prompt));
      for (const [width, height] of [
        [32, 24],
        [1600, 1200],
        [null, null],
      ] as const) {
        expect(minicpmRequestTokens([{ width, height }], null, prompt)).toBe(
          minicpmPromptTokens(width, height, prompt),
        );
      }
    }
    // The usage one image is answered with, as test/helpers/fake-endpoint.test.ts pins it.
    const endpoint = await fakes.start();
    const jpeg = await sharp({
      create: { width: 32, height: 24, channels: 3, background: "#c85028" },
    })
      .jpeg()
      .toBuffer();
    const res = await post(endpoint, [imagePart(jpeg)]);
    expect(((await res.json()) as Completion).usage.prompt_tokens).toBe(PROMPT_WORDS + 1);
  });
});

describe("fake endpoint CLI", () => {
  let child: ChildProcess | null = null;
  afterEach(() => {
    child?.kill("SIGTERM");
    child = null;
  });

  it("--no-video refuses video as llama-server does", async () => {
    const tsx = fileURLToPath(new URL("../../node_modules/.bin/tsx", import.meta.url));
    const script = fileURLToPath(new URL("./fake-endpoint.ts", import.meta.url));
    const started = spawn(tsx, [script, "--port", "0", "--no-video"], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    child = started;
    const baseUrl = await new Promise<string>((resolve, reject) => {
      let out = "";
      started.stdout?.on("data", (chunk: Buffer) => {
        out += chunk.toString("utf8");
        const line = /^(http:\/\/127\.0\.0\.1:\d+\/v1)\n/.exec(out);
        if (line?.[1] !== undefined) resolve(line[1]);
      });
      started.once("exit", (code) => reject(new Error(`fake exited with ${code}`)));
    });
    const res = await fetch(`${baseUrl}/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        messages: [{ role: "user", content: [videoPart(videoUrl(silent))] }],
      }),
    });
    expect(res.status).toBe(400);
    expect(await res.text()).toBe(LLAMA_NO_VIDEO);
  });
});
