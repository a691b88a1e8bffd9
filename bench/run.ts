/**
 * `npm run bench`: measures caption against the limits that bind a captioning run, each figure as
 * a ratio to a baseline measured in the same run on the same machine. Writes bench/results.json
 * and prints a table. BENCH_QUICK=1 runs smaller sets (for trying the bench, not for figures).
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import {
  appendFile,
  copyFile,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  rm,
  writeFile,
} from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parse } from "csv-parse/sync";
import { stringify } from "csv-stringify/sync";
import { Redis } from "ioredis";
import sharp from "sharp";
import { compiledIsFresh } from "../bin/compiled.js";
import { discoverImages } from "../src/discover/discover.js";
import { prepareClip } from "../src/prepare/clip/prepare-clip.js";
import { FileReader } from "../src/prepare/hash.js";
import { prepareImage, targetSize } from "../src/prepare/prepare.js";
import { AUTO_MAX } from "../src/send/auto-concurrency.js";
import { buildCaptionRequest } from "../src/send/request.js";
import { DEFAULT_JPEG_QUALITY, DEFAULT_MAX_PIXELS } from "../src/settings/defaults.js";
import { CAPTION_COLUMNS } from "../src/sinks/out-file/writers.js";
import {
  type FakeEndpoint,
  type FakeEndpointOptions,
  startFakeEndpoint,
} from "../test/helpers/fake-endpoint.js";
import { LLAMA_PEER, startLlamaPeer } from "../test/helpers/llama-peer.js";
import { redisAnswers } from "../test/helpers/redis.js";
import { type ShardMember, writeShard } from "../test/helpers/shards.js";
import {
  bareCut,
  CLIP_DEFAULTS,
  cameraClips,
  cpuSeconds,
  ffmpegAnswers,
  pool,
  runBare,
  sourceFacts,
  tool,
} from "./clips.js";
import { CONTROLLERS } from "./controllers.js";
import { drive } from "./drive.js";
import { photoLike, writeVariants } from "./images.js";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
/** P13's servers: the ceiling is what the server gives at best, in answers a second. */
const RACE_LATENCY = 500;
const RACE_SERVERS: {
  id: string;
  label: string;
  batch: number;
  slowdown?: number;
  ceiling: number;
  seconds: number;
  unbounded?: boolean;
  controllers?: string[];
}[] = [
  { id: "B=24", label: "batch 24", batch: 24, ceiling: 48, seconds: 30 },
  {
    id: "B=24 slowing",
    label:
      "batch 24, each request in it slowing every answer by 3 % (vLLM-like; the 3 % is assumed)",
    batch: 24,
    slowdown: 0.03,
    ceiling: 24 / ((RACE_LATENCY / 1000) * (1 + 0.03 * 23)),
    seconds: 30,
  },
  { id: "B=4", label: "batch 4", batch: 4, ceiling: 8, seconds: 30 },
  {
    id: "B=1",
    label: "one slot, as llama.cpp's server by default",
    batch: 1,
    ceiling: 2,
    seconds: 60,
  },
  {
    // A hosted API seen from one client: no batch limit within reach. Only the default's
    // question is asked here, and five controllers at 512/s would share one core.
    id: "unbounded",
    label: "no batch limit, as a hosted API looks from one client",
    batch: 1_000_000,
    ceiling: AUTO_MAX / (RACE_LATENCY / 1000),
    seconds: 30,
    unbounded: true,
    controllers: ["fixed -c 8", "hill-climb (-c auto)"],
  },
];
const CLI = path.join(ROOT, "bin", "caption.cjs");
const QUICK = process.env.BENCH_QUICK === "1";
const scale = (full: number, quick: number) => (QUICK ? quick : full);
/** BENCH_ONLY=P3,P11 measures only those figures (for trying one, not for the README's table). */
const ONLY = process.env.BENCH_ONLY?.split(",").map((id) => id.trim());
const wanted = (id: string) => !ONLY || ONLY.includes(id);

interface Figure {
  id: string;
  name: string;
  value: number;
  target: string;
  met: boolean;
  detail: string;
}

interface Measured {
  code: number | null;
  wallMs: number;
  peakRssMb: number;
  stdout: string;
  stderr: string;
}

const figures: Figure[] = [];
/** The process most recently started by measure(), for measureCapped to stop. */
const lastPids = new Set<number>();
const log = (text: string) => process.stderr.write(`bench: ${text}\n`);

/**
 * Peak resident memory of a process and all its descendants, from /proc: each one's high-water
 * mark (VmHWM), which the kernel keeps, so a peak between two samples is not missed. Summed over
 * the tree, it errs high when the processes peak at different times.
 */
async function treeRss(pid: number): Promise<number> {
  let total = 0;
  const pending = [pid];
  while (pending.length > 0) {
    const current = pending.pop() as number;
    try {
      const status = await readFile(`/proc/${current}/status`, "utf8");
      total += Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0) * 1024;
      const tasks = await readFile(`/proc/${current}/task/${current}/children`, "utf8");
      for (const child of tasks.trim().split(/\s+/).filter(Boolean)) pending.push(Number(child));
    } catch {
      // The process ended between two reads.
    }
  }
  return total;
}

/** Runs a command to completion, timing it and sampling its process tree's memory. */
function measure(
  command: string,
  args: string[],
  options: { cwd: string; env?: NodeJS.ProcessEnv; shell?: boolean },
): Promise<Measured> {
  const started = performance.now();
  const child: ChildProcess = spawn(command, args, {
    cwd: options.cwd,
    env: options.env ?? process.env,
    stdio: ["ignore", "pipe", "pipe"],
    shell: options.shell ?? false,
  });
  let stdout = "";
  let stderr = "";
  let peak = 0;
  lastPids.clear();
  if (child.pid) lastPids.add(child.pid);
  child.stdout?.on("data", (chunk: Buffer) => {
    stdout += chunk.toString();
  });
  child.stderr?.on("data", (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const sampler = setInterval(() => {
    if (child.pid) void treeRss(child.pid).then((rss) => (peak = Math.max(peak, rss)));
  }, 20);
  return new Promise((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (code) => {
      clearInterval(sampler);
      resolve({
        code,
        wallMs: performance.now() - started,
        peakRssMb: peak / 2 ** 20,
        stdout,
        stderr,
      });
    });
  });
}

function cliEnv(baseUrl: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env))
    if (!key.startsWith("MINICPM_")) env[key] = value;
  return { ...env, MINICPM_API_KEY: "bench-key", MINICPM_BASE_URL: baseUrl };
}

/** Runs the CLI, sending it SIGINT after `capSeconds` if it is still going (a graceful stop). */
async function measureCapped(
  args: string[],
  cwd: string,
  baseUrl: string,
  capSeconds: number,
  env: NodeJS.ProcessEnv = {},
): Promise<Measured> {
  const running = measure(process.execPath, [CLI, ...args, "--quiet"], {
    cwd,
    env: { ...cliEnv(baseUrl), ...env },
  });
  const timer = setTimeout(() => {
    for (const pid of lastPids) process.kill(pid, "SIGINT");
  }, capSeconds * 1000);
  const result = await running;
  clearTimeout(timer);
  if (result.code !== 0 && result.code !== 130)
    throw new Error(`caption exited ${result.code}: ${result.stderr}`);
  return result;
}

async function runCli(
  args: string[],
  cwd: string,
  baseUrl: string,
  quiet = true,
): Promise<Measured> {
  const result = await measure(process.execPath, [CLI, ...args, ...(quiet ? ["--quiet"] : [])], {
    cwd,
    env: cliEnv(baseUrl),
  });
  if (result.code !== 0)
    throw new Error(`caption ${args.join(" ")} exited ${result.code}: ${result.stderr}`);
  return result;
}

/** The bare sharp loop (bench/baseline.ts) as its own process, like the CLI; `decode`: decoding only. */
function runBaseline(folder: string, concurrency: number, mode?: "decode"): Promise<Measured> {
  const args = [path.join(ROOT, "bench", "baseline.ts"), folder, String(concurrency)];
  args.push(String(DEFAULT_MAX_PIXELS), ...(mode ? [mode] : []));
  return measure(process.execPath, ["--import", "tsx", ...args], { cwd: ROOT });
}

/** P1's loops (bench/loop.mjs), plain JavaScript as its own process: "same" settings or "plain". */
function runLoop(
  folder: string,
  concurrency: number,
  mode: "same" | "plain",
  maxSide: number,
): Promise<Measured> {
  const args = [path.join(ROOT, "bench", "loop.mjs"), folder, String(concurrency), mode];
  // The CLI's own quality; the run writes a sha256 column, so the loop hashes every file too.
  args.push(String(DEFAULT_MAX_PIXELS), String(maxSide), String(DEFAULT_JPEG_QUALITY), "1");
  return measure(process.execPath, args, { cwd: ROOT });
}

/** Every key of a bench queue, BullMQ's and caption's. */
async function dropQueue(queue: string): Promise<void> {
  const redis = new Redis("redis://127.0.0.1:6379");
  try {
    for (const pattern of [`bull:${queue}:*`, `caption:${queue}:*`]) {
      const keys = await redis.keys(pattern);
      if (keys.length > 0) await redis.del(...keys);
    }
  } finally {
    redis.disconnect();
  }
}

/** An endpoint that records when each request it lets through arrived. */
async function endpoint(
  options: FakeEndpointOptions,
): Promise<{ fake: FakeEndpoint; arrivals: number[] }> {
  const arrivals: number[] = [];
  const fake = await startFakeEndpoint({
    inspectImages: false,
    keepBodies: false,
    ...options,
    respond: () => {
      arrivals.push(performance.now());
      return undefined;
    },
  });
  return { fake, arrivals };
}

function record(figure: Omit<Figure, "met">, met: boolean): void {
  figures.push({ ...figure, met });
  log(
    `${figure.id} ${figure.name}: ${figure.value.toFixed(3)} (target ${figure.target}) ${met ? "met" : "NOT met"} — ${figure.detail}`,
  );
}

function best<T extends { wallMs: number }>(runs: T[]): T {
  return runs.reduce((a, b) => (b.wallMs < a.wallMs ? b : a));
}

/** The upper median (of an even count, the later of the two middle values); none of nothing. */
function median(values: readonly number[]): number | undefined {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

/** Installs the peers' tools from Debian if missing: ImageMagick and Pillow. */
function ensurePeerTools(): boolean {
  const has = (command: string, args: string[], expect: RegExp) => {
    try {
      return expect.test(
        execFileSync(command, args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] }),
      );
    } catch {
      return false;
    }
  };
  const ready = () =>
    has("convert", ["-version"], /ImageMagick/) &&
    has("/usr/bin/python3", ["-c", "import PIL; print('pil')"], /pil/) &&
    has("curl", ["--version"], /curl/);
  if (ready()) return true;
  log("installing imagemagick, python3-pil and curl from Debian for P7…");
  try {
    execFileSync("apt-get", ["update", "-qq"], { stdio: "ignore" });
    execFileSync("apt-get", ["install", "-y", "-qq", "imagemagick", "python3-pil", "curl"], {
      stdio: "ignore",
      env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" },
    });
  } catch (error) {
    log(`could not install the peers' tools (${(error as Error).message}); P7 is skipped`);
  }
  return ready();
}

// The CLI runs src/ through tsx when dist/ is older (bin/caption.js): slower, and 50 MB more.
// Build first, so what is measured is what users run, and say so if src/ changes meanwhile.
log("building dist/ (npm run build) so the CLI measured is the compiled one…");
execFileSync("npm", ["run", "build"], { cwd: ROOT, stdio: ["ignore", "ignore", "inherit"] });
const work = await mkdtemp(path.join(os.tmpdir(), "caption-bench-"));
const benchStarted = performance.now();
try {
  log(`working in ${work}${QUICK ? " (quick mode: small sets)" : ""}`);
  const photo = await photoLike(4000, 3000);
  const small = await photoLike(320, 240);
  // P2 is about hiding latency, not decoding: 200×150 JPEGs, as the issue measured at -c 128.
  const thumb = await photoLike(200, 150);

  // P6 first: it needs nothing but the photo.
  if (wanted("P6")) {
    const file = path.join(work, "photo.jpg");
    await writeFile(file, photo);
    const image = await prepareImage(file, { maxPixels: DEFAULT_MAX_PIXELS, imageFormat: "jpeg" });
    const body = JSON.stringify(
      buildCaptionRequest(image.dataUrl, {
        model: "MiniCPM-V-4.6-Instruct",
        prompt: "Describe this image.",
        maxTokens: 512,
      }),
    );
    const uploaded = Buffer.byteLength(body);
    const ratio = uploaded / photo.length;
    record(
      {
        id: "P6",
        name: "payload: bytes uploaded per 12 MP photo ÷ its file size",
        value: ratio,
        target: "≤ 0.125",
        detail: `${(photo.length / 2 ** 20).toFixed(2)} MiB photo → ${(uploaded / 2 ** 20).toFixed(2)} MiB request (${image.width}×${image.height} JPEG q90, base64)`,
      },
      ratio <= 1 / 8,
    );
  }

  // P10: the resampling kernel and encoder settings, judged by the pixels the model sees: each
  // candidate's decoded image against an ideal resize (Lanczos-3 from the full decode, no JPEG
  // loss), at the size sent and at half that (a model's slices); time is one image at a time.
  if (wanted("P10")) {
    const { width, height } = targetSize(4000, 3000, DEFAULT_MAX_PIXELS);
    const ideal = await sharp(photo)
      .resize({ width, height, fit: "fill", kernel: "lanczos3", fastShrinkOnLoad: false })
      .raw()
      .toBuffer();
    const halve = (raw: Buffer) =>
      sharp(raw, { raw: { width, height, channels: 3 } })
        .resize(Math.round(width / 2), Math.round(height / 2))
        .raw()
        .toBuffer();
    const idealHalf = await halve(ideal);
    const psnr = (a: Buffer, b: Buffer) => {
      let squares = 0;
      for (let i = 0; i < a.length; i += 1) squares += ((a[i] ?? 0) - (b[i] ?? 0)) ** 2;
      return 10 * Math.log10((255 * 255) / (squares / a.length));
    };
    const candidates = [
      ["lanczos3", true],
      ["lanczos3", false],
      ["mks2013", false],
      ["cubic", false],
      ["linear", false],
    ] as const;
    const encode = (kernel: (typeof candidates)[number][0], optimiseCoding: boolean) =>
      sharp(photo)
        .resize({ width, height, fit: "fill", kernel })
        .toColourspace("srgb")
        .jpeg({ quality: 90, optimiseCoding })
        .toBuffer();
    // Round by round, each candidate in turn, so a drift of the machine's speed (another
    // process, the clock) falls on all of them alike rather than on whichever ran then.
    const times: number[][] = candidates.map(() => []);
    for (let round = 0; round < 9; round += 1) {
      for (const [index, [kernel, optimiseCoding]] of candidates.entries()) {
        const started = performance.now();
        await encode(kernel, optimiseCoding);
        times[index]?.push(performance.now() - started);
      }
    }
    const rows: { name: string; ms: number; full: number; half: number; bytes: number }[] = [];
    for (const [index, [kernel, optimiseCoding]] of candidates.entries()) {
      const encoded = await encode(kernel, optimiseCoding);
      const decoded = await sharp(encoded).raw().toBuffer();
      rows.push({
        name: `${kernel}${optimiseCoding ? " optimised" : ""}`,
        ms: median(times[index] ?? []) ?? 0,
        full: psnr(decoded, ideal),
        half: psnr(await halve(decoded), idealHalf),
        bytes: encoded.length,
      });
    }
    const before = rows[0];
    const chosen = rows.find((row) => row.name === "cubic");
    if (before && chosen) {
      record(
        {
          id: "P10 resampling",
          name: "prepare: time per 12 MP photo with bicubic and plain Huffman tables ÷ with sharp's defaults (Lanczos-3, optimised tables)",
          value: chosen.ms / before.ms,
          target: "< 1, within 0.1 dB of the defaults' PSNR",
          detail: rows
            .map(
              (row) =>
                `${row.name}: ${row.ms.toFixed(0)} ms, ${row.full.toFixed(2)} dB (${row.half.toFixed(2)} at half size), ${(row.bytes / 1024).toFixed(0)} KiB`,
            )
            .join("; "),
        },
        chosen.ms < before.ms &&
          chosen.full >= before.full - 0.1 &&
          chosen.half >= before.half - 0.1,
      );
    }
  }

  // P1: the CLI as a user runs it on a photo archive (JSONL, longest side 1344, -c 16, its
  // progress on stderr, as under cron) against an instant endpoint, held against a hand-written
  // loop that does exactly the least work the same settings ask for (bench/loop.mjs "same"), and
  // against the loop most people would write with sharp's defaults at q85 and no hash ("plain").
  // Same files, same parallelism, fresh processes; 300 photos, as issue 24 measured. What a run
  // costs before its first image, which a short run feels most, is reported apart (P1 start-up).
  if (wanted("P1")) {
    const count = scale(300, 24);
    const side = 1344;
    const folder = await writeVariants(path.join(work, "p1"), photo, count);
    const { fake } = await endpoint({});
    const same: Measured[] = [];
    const plain: Measured[] = [];
    const ours: Measured[] = [];
    // Best of three each, interleaved: run to run, this machine varies by up to a tenth.
    for (let round = 0; round < 3; round += 1) {
      same.push(await runLoop(folder, 16, "same", side));
      plain.push(await runLoop(folder, 16, "plain", side));
      ours.push(
        await runCli(
          [
            folder,
            "-o",
            path.join(work, `p1-${round}.jsonl`),
            "--max-side",
            String(side),
            "-c",
            "16",
          ],
          work,
          fake.baseUrl,
          false,
        ),
      );
      await rm(path.join(work, `p1-${round}.jsonl`), { force: true });
    }
    // The fixed cost of a run: one photo, from the command to its exit, best of five each.
    const one = path.join(work, "p1-one");
    await mkdir(one, { recursive: true });
    await copyFile(path.join(folder, (await readdir(folder))[0] ?? ""), path.join(one, "a.jpg"));
    const oneLoop: Measured[] = [];
    const oneCli: Measured[] = [];
    for (let round = 0; round < 5; round += 1) {
      oneLoop.push(await runLoop(one, 16, "same", side));
      const out = path.join(work, "p1-one.jsonl");
      oneCli.push(await runCli([one, "-o", out, "--max-side", String(side)], work, fake.baseUrl));
      await rm(out, { force: true });
    }
    await fake.close();
    const startCli = best(oneCli).wallMs;
    const startLoop = best(oneLoop).wallMs;
    record(
      {
        id: "P1 start-up",
        name: "a run of one photo, command to exit: CLI ÷ the same loop (loading yargs, fast-glob and the CLI's modules, reading its settings, the model list, OUT's lock)",
        value: startCli / startLoop,
        target: "reported",
        detail: `${startCli.toFixed(0)} ms vs ${startLoop.toFixed(0)} ms, best of 5 each; a fixed cost, a tenth of a second or two, that the per-image figure above amortises over ${count} photos`,
      },
      true,
    );
    const rate = (runs: Measured[]) => count / (best(runs).wallMs / 1000);
    const cli = rate(ours);
    const least = rate(same);
    record(
      {
        id: "P1",
        name: `overhead: CLI images/s ÷ a loop doing the least work the same settings ask for (12 MP JPEGs, --max-side ${side}, -c 16, JSONL, instant endpoint)`,
        value: cli / least,
        target: "≥ 0.95",
        detail: `${cli.toFixed(1)} vs ${least.toFixed(1)} images/s over ${count} images, best of 3 each, all fresh processes; the loop: same size rule, bicubic, q90, plain Huffman tables, from the path, a SHA-256 of each file (the run writes the sha256 column)`,
      },
      cli / least >= 0.95,
    );
    const byHand = rate(plain);
    record(
      {
        id: "P1 plain",
        name: `overhead: CLI images/s ÷ the loop people write by hand (sharp's defaults: Lanczos-3, optimised tables, q85, no hash; --max-side ${side}, -c 16)`,
        value: cli / byHand,
        target: "reported",
        detail: `${cli.toFixed(1)} vs ${byHand.toFixed(1)} images/s over ${count} images, best of 3 each`,
      },
      true,
    );
  }

  // P2: a slow endpoint and small images: does the CLI keep -c requests in flight all the time?
  if (wanted("P2"))
    for (const concurrency of [8, 32, 128]) {
      const waves = 10;
      const count = concurrency * waves;
      const latency = 500;
      const folder = await writeVariants(path.join(work, `p2-${concurrency}`), thumb, count);
      const { fake, arrivals } = await endpoint({ latencyMs: latency });
      await runCli(
        [folder, "-o", path.join(work, `p2-${concurrency}.csv`), "-c", String(concurrency)],
        work,
        fake.baseUrl,
      );
      await fake.close();
      const ideal = concurrency / (latency / 1000);
      const first = arrivals[0] ?? 0;
      const whole = count / (((arrivals.at(-1) ?? 0) + latency - first) / 1000);
      // Steady state: requests started between the end of the first wave and the start of the
      // last, which leaves out filling the pipeline at the start and draining it at the end.
      const from = first + latency;
      const to = first + (waves - 1) * latency;
      const steady = arrivals.filter((t) => t >= from && t < to).length / ((to - from) / 1000);
      record(
        {
          id: `P2 c=${concurrency}`,
          name: `latency hiding: steady throughput ÷ (concurrency ÷ latency), 500 ms endpoint, -c ${concurrency}`,
          value: steady / ideal,
          target: "≥ 0.95",
          detail: `${steady.toFixed(1)}/s steady, ideal ${ideal.toFixed(0)}/s; the whole run of ${count} images including start and drain: ${(whole / ideal).toFixed(3)}`,
        },
        steady / ideal >= 0.95,
      );
    }

  // P3: a rate-limited endpoint, the CLI started far above what it allows.
  if (wanted("P3")) {
    const rate = 40;
    const count = scale(1000, 200);
    const folder = await writeVariants(path.join(work, "p3"), small, count);
    const { fake, arrivals } = await endpoint({
      latencyMs: 20,
      rateLimit: { perSecond: rate, retryAfter: "1" },
    });
    await runCli(
      [folder, "-o", path.join(work, "p3.csv"), "-c", "64", "--retries", "30"],
      work,
      fake.baseUrl,
    );
    const limited = fake.requests.filter((r) => r.behavior === "rate-limit").length;
    const total = fake.requests.length;
    await fake.close();
    const span = ((arrivals.at(-1) ?? 0) - (arrivals[0] ?? 0)) / 1000;
    const goodput = (count - 1) / span;
    record(
      {
        id: "P3 goodput",
        name: `rate limit: goodput ÷ allowed rate (${rate}/s, Retry-After 1 s, -c 64)`,
        value: goodput / rate,
        target: "≥ 0.9",
        detail: `${count} captions in ${span.toFixed(1)} s = ${goodput.toFixed(1)}/s`,
      },
      goodput / rate >= 0.9,
    );
    record(
      {
        id: "P3 429s",
        name: "rate limit: share of requests answered 429",
        value: limited / total,
        target: "≤ 0.05",
        detail: `${limited} of ${total} requests`,
      },
      limited / total <= 0.05,
    );
  }

  // P3 gateway: a token bucket refusing with 429 before any work, as API gateways do; the CLI
  // starts at -c 64 with no idea of the rate. The issue's case is the fake's default bucket (a
  // second's worth saved up); a bucket with no burst allowance at all is the stress case.
  if (wanted("P3"))
    for (const [burst, headers] of [
      [20, undefined],
      [20, "ietf"],
      [20, "openai"],
      [1, undefined],
      [1, "ietf"],
    ] as const) {
      const rate = 20;
      const latency = 100;
      const count = scale(400, 100);
      const name = `p3g${burst}${headers ?? ""}`;
      const folder = await writeVariants(path.join(work, name), small, count);
      const { fake, arrivals } = await endpoint({
        latencyMs: latency,
        rateLimit: { perSecond: rate, retryAfter: "1", burst, ...(headers ? { headers } : {}) },
      });
      const out = path.join(work, `${name}.csv`);
      await runCli([folder, "-o", out, "-c", "64", "--retries", "30"], work, fake.baseUrl);
      const requests = [...fake.requests];
      await fake.close();
      const limited = requests.filter((r) => r.behavior === "rate-limit");
      // A 429 leaves as soon as it is decided, a caption after the latency. Requests reaching the
      // server within 20 ms of the first reply were already on their way: the client could not
      // have known.
      const firstReply = Math.min(
        ...requests.map((r) => r.decidedAt + (r.behavior === "rate-limit" ? 0 : latency)),
      );
      const after = requests.filter((r) => r.decidedAt > firstReply + 20);
      const lateLimited = after.filter((r) => r.behavior === "rate-limit").length;
      const span = ((arrivals.at(-1) ?? 0) - (arrivals[0] ?? 0)) / 1000;
      const goodput = (count - 1) / span;
      const label = `burst ${burst}${headers ? ` ${headers} headers` : ""}`;
      let baseline = "";
      if (burst === 1 && !headers) {
        // What pacing alone reaches against this bucket on this machine: the CLI told a pace of
        // 18/s (--rpm 1080), under the limit, on a fresh fake.
        const paced = await endpoint({
          latencyMs: latency,
          rateLimit: { perSecond: rate, retryAfter: "1", burst },
        });
        await runCli(
          [folder, "-o", path.join(work, `${name}-paced.csv`), "-c", "64", "--rpm", "1080"],
          work,
          paced.fake.baseUrl,
        );
        const pacedLimited = paced.fake.requests.filter((r) => r.behavior === "rate-limit").length;
        await paced.fake.close();
        const pacedSpan = ((paced.arrivals.at(-1) ?? 0) - (paced.arrivals[0] ?? 0)) / 1000;
        baseline = `; paced at 18/s instead (--rpm 1080): ${((count - 1) / pacedSpan / rate).toFixed(3)} of the rate, ${pacedLimited} 429s`;
      }
      record(
        {
          id: `P3 gateway ${label}`,
          name: `rate limit before work: goodput ÷ allowed rate (${rate}/s, burst ${burst}, ${headers ? `${headers} rate-limit headers, ` : ""}Retry-After 1 s, ${latency} ms, -c 64)`,
          value: goodput / rate,
          target: "≥ 0.9",
          detail: `${count} captions in ${span.toFixed(1)} s = ${goodput.toFixed(1)}/s; ${limited.length} of ${requests.length} requests answered 429${baseline}`,
        },
        goodput / rate >= 0.9,
      );
      const share = lateLimited / Math.max(1, after.length);
      record(
        headers
          ? {
              id: `P3 gateway ${label} 429s`,
              name: "rate-limit headers: 429s after the first reply",
              value: lateLimited,
              target: "0",
              detail: `${lateLimited} of the ${after.length} requests that reached the server more than 20 ms after its first reply; ${limited.length} in all`,
            }
          : {
              id: `P3 gateway ${label} 429s`,
              name: "share of the requests after the first Retry-After answered 429",
              value: share,
              target: "≤ 0.10",
              detail: `${lateLimited} of the ${after.length} requests that reached the server more than 20 ms after its first 429`,
            },
        headers ? lateLimited === 0 : share <= 0.1,
      );
    }

  // P8: two endpoints, one with twice the latency of the other: the faster should take two thirds.
  if (wanted("P8")) {
    const count = scale(600, 120);
    const folder = await writeVariants(path.join(work, "p8"), thumb, count);
    const fast = await endpoint({ latencyMs: 250 });
    const slow = await endpoint({ latencyMs: 500 });
    const out = path.join(work, "p8.csv");
    await runCli(
      [
        folder,
        "-o",
        out,
        "-c",
        "8",
        "--base-url",
        fast.fake.baseUrl,
        "--base-url",
        slow.fake.baseUrl,
      ],
      work,
      fast.fake.baseUrl,
    );
    await fast.fake.close();
    await slow.fake.close();
    const rows = parse(await readFile(out), { columns: true }) as Record<string, string>[];
    const paths = new Set(rows.map((row) => row.path));
    const byFast = rows.filter((row) => row.endpoint === `127.0.0.1:${fast.fake.port}`).length;
    const share = byFast / rows.length;
    const once = rows.length === count && paths.size === count;
    record(
      {
        id: "P8 two endpoints",
        name: "several endpoints: share of images the server with half the latency answered (250 ms and 500 ms, -c 8 each)",
        value: share,
        target: "≈ 0.667 (0.6 to 0.73), every image once",
        detail: `${byFast} of ${rows.length} rows by the faster, ${rows.length - byFast} by the slower; ${once ? "every image once" : `${paths.size} distinct paths of ${count}`}; ${fast.arrivals.length + slow.arrivals.length} requests`,
      },
      once && share >= 0.6 && share <= 0.73,
    );
  }

  // P9: -c auto against batching servers (B requests at full speed, time shared beyond), against
  // the fixed default of 8 on the same server: the evidence for what the default should be.
  if (wanted("P9"))
    for (const [batch, count] of [
      [24, scale(1000, 200)],
      [4, scale(240, 60)],
    ] as const) {
      const latency = 500;
      const ceiling = batch / (latency / 1000);
      const folder = await writeVariants(path.join(work, `p9-${batch}`), thumb, count);
      const runs: Record<string, { goodput: number; median: number; timeouts: number }> = {};
      for (const concurrency of ["auto", "8"]) {
        const { fake, arrivals } = await endpoint({ latencyMs: latency, batch });
        const out = path.join(work, `p9-${batch}-${concurrency}.csv`);
        await runCli([folder, "-o", out, "-c", concurrency], work, fake.baseUrl);
        await fake.close();
        const rows = parse(await readFile(out), { columns: true }) as Record<string, string>[];
        const busy = ((arrivals.at(-1) ?? 0) - (arrivals[0] ?? 0) + latency) / 1000;
        const timeouts = arrivals.length - rows.length;
        runs[concurrency] = {
          goodput: rows.length / busy,
          median: median(rows.map((row) => Number(row.latency_ms))) ?? 0,
          timeouts,
        };
      }
      const auto = runs.auto ?? { goodput: 0, median: 0, timeouts: 0 };
      const fixed = runs["8"] ?? { goodput: 0, median: 0, timeouts: 0 };
      record(
        {
          id: `P9 auto B=${batch}`,
          name: `-c auto: goodput ÷ the server's ${ceiling}/s (batch ${batch}, 500 ms, ${count} images)`,
          value: auto.goodput / ceiling,
          target: `≥ 0.85, median latency ≤ 2 × 500 ms${batch === 4 ? ", no timeouts" : ""}`,
          detail: `${auto.goodput.toFixed(1)}/s, median latency ${auto.median} ms, ${auto.timeouts} requests re-sent; fixed -c 8 on the same server: ${fixed.goodput.toFixed(1)}/s (${(fixed.goodput / ceiling).toFixed(3)}), median ${fixed.median} ms`,
        },
        auto.goodput / ceiling >= 0.85 &&
          auto.median <= 2 * latency &&
          (batch !== 4 || auto.timeouts === 0),
      );
    }

  // P13: the controllers `-c auto` was chosen from, raced on the same servers: each keeps as many
  // tiny requests in flight as it allows against its own fake, all five at once, so what is
  // measured is how each finds the server's figure, not image preparation (P9 has the CLI).
  if (wanted("P13"))
    for (const server of RACE_SERVERS) {
      const seconds = scale(server.seconds, 8);
      const results = await Promise.all(
        Object.entries(CONTROLLERS)
          .filter(([name]) => server.controllers === undefined || server.controllers.includes(name))
          .map(async ([name, make]) => {
            const fake = await startFakeEndpoint({
              latencyMs: RACE_LATENCY,
              batch: server.batch,
              slowdown: server.slowdown ?? 0,
              inspectImages: false,
              keepBodies: false,
            });
            try {
              const run = await drive(fake.baseUrl, make(AUTO_MAX, performance.now()), seconds);
              return {
                name,
                goodput: run.answers / seconds / server.ceiling,
                median: median(run.lateLatencies) ?? Number.POSITIVE_INFINITY,
                final: run.finalLimit,
                highest: run.highestLimit,
              };
            } finally {
              await fake.close();
            }
          }),
      );
      const climb = results.find((result) => result.name.startsWith("hill-climb"));
      if (!climb) continue;
      const full =
        RACE_LATENCY * (1 + (server.slowdown ?? 0) * (Math.min(server.batch, AUTO_MAX) - 1));
      const met = server.unbounded
        ? climb.highest >= AUTO_MAX
        : climb.goodput >= 0.85 && climb.median <= 2 * full;
      record(
        {
          id: `P13 ${server.id}`,
          name: `controllers: -c auto's hill-climb goodput ÷ the server's ${server.ceiling.toFixed(1)}/s (${server.label}, ${RACE_LATENCY} ms, ${seconds} s)`,
          value: climb.goodput,
          target: server.unbounded
            ? `reaches --max-concurrency (${AUTO_MAX})`
            : `≥ 0.85, median latency ≤ 2 × ${full.toFixed(0)} ms`,
          detail: results
            .map(
              (result) =>
                `${result.name}: ${result.goodput.toFixed(2)}, median ${result.median.toFixed(0)} ms, ended at ${result.final} (highest ${result.highest})`,
            )
            .join("; "),
        },
        met,
      );
    }

  // P13 shared: four climbs on one server at once, as four workers of a queue (or one worker's
  // --shards-at-once 4) run them: each measures only its own share of the server's answers.
  if (wanted("P13")) {
    const seconds = scale(30, 8);
    const climbers = 4;
    const make = CONTROLLERS["hill-climb (-c auto)"];
    const fake = await startFakeEndpoint({
      latencyMs: RACE_LATENCY,
      batch: 24,
      inspectImages: false,
      keepBodies: false,
    });
    try {
      const runs = make
        ? await Promise.all(
            Array.from({ length: climbers }, () =>
              drive(fake.baseUrl, make(AUTO_MAX, performance.now()), seconds),
            ),
          )
        : [];
      const middle = median(runs.flatMap((run) => run.lateLatencies)) ?? Number.POSITIVE_INFINITY;
      const goodput = runs.reduce((sum, run) => sum + run.answers, 0) / seconds / 48;
      record(
        {
          id: "P13 shared",
          name: `controllers: ${climbers} hill-climbs (-c auto) on one server at once, their goodput together ÷ its 48/s (batch 24, ${RACE_LATENCY} ms, ${seconds} s)`,
          value: goodput,
          target: "≥ 0.85; latency reported",
          detail: `median latency ${middle.toFixed(0)} ms; each ended at ${runs.map((run) => run.finalLimit).join(", ")} (highest ${runs.map((run) => run.highestLimit).join(", ")}), ${runs.map((run) => (run.answers / seconds).toFixed(1)).join(", ")} answers/s`,
        },
        runs.length === climbers && goodput >= 0.85,
      );
    } finally {
      await fake.close();
    }
  }

  // P4: peak memory of the CLI at -c 32 on 12 MP JPEGs, for a small and a ten times larger folder.
  if (wanted("P4")) {
    const { fake } = await endpoint({});
    const peaks: number[] = [];
    // The decode cost is what P1 measures; here a plainer 4000×3000 JPEG keeps 10k files on disk small.
    const plain = await sharp({
      create: { width: 4000, height: 3000, channels: 3, background: { r: 120, g: 140, b: 90 } },
    })
      .composite([{ input: small, left: 1200, top: 900 }])
      .jpeg({ quality: 90 })
      .toBuffer();
    const sizes = [scale(1000, 100), scale(10_000, 1000)];
    // Decoding 10k 12 MP files takes about six minutes here. Everything that grows with the folder
    // (the file list, OUT's done set, the hashes) is built before the first image is decoded, and
    // glibc's arenas grow with running time whatever the folder, so both runs get the same time:
    // the larger is stopped with Ctrl-C when the smaller ended (or was stopped itself), so what
    // differs between them is the folder size alone.
    let capSeconds = scale(30, 15);
    const notes: string[] = [];
    for (const count of sizes) {
      const folder = await writeVariants(path.join(work, `p4-${count}`), plain, count);
      const out = path.join(work, `p4-${count}.csv`);
      const result = await measureCapped(
        [folder, "-o", out, "-c", "32"],
        work,
        fake.baseUrl,
        capSeconds,
      );
      const done = (await readFile(out, "utf8")).split("\n").length - 2;
      peaks.push(result.peakRssMb);
      capSeconds = Math.min(capSeconds, result.wallMs / 1000);
      notes.push(
        `${result.peakRssMb.toFixed(0)} MiB for ${count} files (${done} captioned in ${(result.wallMs / 1000).toFixed(0)} s${done < count ? ", then stopped" : ""})`,
      );
      log(
        `P4 ${count} files: peak ${result.peakRssMb.toFixed(0)} MiB, ${done} captioned in ${(result.wallMs / 1000).toFixed(1)} s`,
      );
      await rm(folder, { recursive: true, force: true });
    }
    // The floor under the CLI: the bare sharp loop on the same kind of files, same decoders.
    const floorFolder = await writeVariants(path.join(work, "p4-floor"), plain, scale(300, 60));
    const floor = await runBaseline(floorFolder, os.availableParallelism() + 1);
    const arena = await measureCapped(
      [floorFolder, "-o", path.join(work, "p4-arena.csv"), "-c", "32"],
      work,
      fake.baseUrl,
      capSeconds,
      // glibc's own limit, eight arenas a core: the CLI leaves a limit the user set alone, so
      // this is the run without the cap it sets itself (bin/malloc-arenas.cjs).
      { MALLOC_ARENA_MAX: String(8 * os.availableParallelism()) },
    );
    await rm(floorFolder, { recursive: true, force: true });
    await fake.close();
    const [few = 0, many = 0] = peaks;
    record(
      {
        id: "P4 memory",
        name: `memory: peak RSS at -c 32 on 4000×3000 JPEGs, ${sizes[1]} files`,
        value: many,
        target: "≤ 300 MiB",
        detail: `${notes.join("; ")}. Floor: the bare sharp loop alone peaks at ${floor.peakRssMb.toFixed(0)} MiB; without its cap on malloc arenas the CLI peaks at ${arena.peakRssMb.toFixed(0)} MiB`,
      },
      many <= 300,
    );
    record(
      {
        id: "P4 flat",
        name: `memory: peak RSS for ${sizes[1]} files ÷ for ${sizes[0]}`,
        value: many / few,
        target: "≤ 1.1 (flat)",
        detail: "the same run as above",
      },
      many / few <= 1.1,
    );
    // The flat file above keeps 10,000 on disk small; camera-like photos cost more to hold while
    // they are read and decoded, so the issue's "on 12 MP photos" is measured on those too.
    const photos = await writeVariants(path.join(work, "p4-photos"), photo, scale(200, 24));
    const { fake: photoFake } = await endpoint({});
    const onPhotos = await runCli(
      [photos, "-o", path.join(work, "p4-photos.csv"), "-c", "32"],
      work,
      photoFake.baseUrl,
    );
    await photoFake.close();
    // The default, -c auto, against a server slower than the decoders: its allowance climbs far
    // above what is in flight, so up to --max-concurrency senders wait for images at once.
    const { fake: slowFake } = await endpoint({ latencyMs: 500 });
    const onAuto = await runCli(
      [photos, "-o", path.join(work, "p4-auto.csv")],
      work,
      slowFake.baseUrl,
    );
    await slowFake.close();
    await rm(photos, { recursive: true, force: true });
    for (const [id, what, run] of [
      ["P4 photos", "at -c 32 on 4000×3000 photo-like JPEGs (5 MB each)", onPhotos],
      ["P4 photos auto", "with the default -c (auto) on the same photos, 500 ms endpoint", onAuto],
    ] as const) {
      record(
        {
          id,
          name: `memory: peak RSS ${what}`,
          value: run.peakRssMb,
          target: "≤ 286 MiB (300 MB)",
          detail: `${scale(200, 24)} photos captioned in ${(run.wallMs / 1000).toFixed(1)} s`,
        },
        run.peakRssMb <= 300e6 / 2 ** 20,
      );
    }
  }

  // P5 and P4's third figure: resuming over 100k finished rows.
  if (wanted("P5")) {
    const count = scale(100_000, 10_000);
    const tiny = await sharp({
      create: { width: 8, height: 8, channels: 3, background: "#808080" },
    })
      .jpeg()
      .toBuffer();
    await writeVariants(path.join(work, "p5"), tiny, count);
    const rows = [CAPTION_COLUMNS.join(",")];
    for (let i = 0; i < count; i += 1) {
      const name = `p5/img-${String(i).padStart(6, "0")}.jpg`;
      // By column name, so the rows follow OUT's columns whatever they become.
      const row: Record<string, string> = {
        path: name,
        caption: "A grey square.",
        model: "m",
        width: "8",
        height: "8",
        prompt_tokens: "100",
        completion_tokens: "4",
        attempts: "1",
        latency_ms: "5",
        truncated: "false",
        created_at: "2026-11-25T00:00:00.000Z",
        sha256: i.toString(16).padStart(64, "0"),
      };
      rows.push(CAPTION_COLUMNS.map((column) => row[column] ?? "").join(","));
    }
    await writeFile(path.join(work, "p5.csv"), `${rows.join("\n")}\n`);
    const { fake } = await endpoint({});
    const runs: Measured[] = [];
    for (let round = 0; round < 2; round += 1)
      runs.push(await runCli(["p5", "-o", "p5.csv"], work, fake.baseUrl));
    const requests = fake.requests.length;
    await fake.close();
    const run = best(runs);
    record(
      {
        id: "P5",
        name: `resume: rerun over ${count} captioned rows, seconds to finish`,
        value: run.wallMs / 1000,
        target: "≤ 2 s, 0 requests",
        detail: `${requests} requests sent; whole process, start-up included; best of 2`,
      },
      run.wallMs <= 2000 && requests === 0,
    );
    record(
      {
        id: "P4 resume",
        name: `memory: peak RSS resuming over ${count} files`,
        value: Math.max(...runs.map((r) => r.peakRssMb)),
        target: "≤ 300 MiB",
        detail: "discovery, reading OUT and the done set",
      },
      Math.max(...runs.map((r) => r.peakRssMb)) <= 300,
    );
    await rm(path.join(work, "p5"), { recursive: true, force: true });
  }

  // P11: many machines: 1, 2 and 4 workers on one BullMQ queue, against a 500 ms endpoint with a
  // fixed -c per worker. Latency-bound, so the two cores are not what limits it.
  if (wanted("P11") && (await redisAnswers())) {
    const latency = 500;
    const perWorker = 8;
    const shardSize = 80;
    const rates: Record<number, number> = {};
    for (const workers of [1, 2, 4]) {
      const count = scale(320, 80) * workers;
      const folder = await writeVariants(path.join(work, `p11-${workers}`), thumb, count);
      const queue = `bench-${process.pid}-${workers}`;
      const { fake, arrivals } = await endpoint({ latencyMs: latency });
      await runCli(
        [
          "enqueue",
          folder,
          "--queue",
          queue,
          "--out",
          path.join(work, `p11-${workers}-out`),
          "--shard-size",
          String(shardSize),
        ],
        work,
        fake.baseUrl,
      );
      const runs = await Promise.all(
        Array.from({ length: workers }, () =>
          measure(
            process.execPath,
            [CLI, "worker", "--queue", queue, "--until-empty", "-c", String(perWorker), "--quiet"],
            { cwd: work, env: cliEnv(fake.baseUrl) },
          ),
        ),
      );
      await fake.close();
      await dropQueue(queue);
      for (const run of runs) {
        if (run.code !== 0) throw new Error(`caption worker exited ${run.code}: ${run.stderr}`);
      }
      const span = ((arrivals.at(-1) ?? 0) + latency - (arrivals[0] ?? 0)) / 1000;
      rates[workers] = count / span;
      log(
        `P11 ${workers} workers: ${count} images in ${span.toFixed(1)} s = ${rates[workers]?.toFixed(1)}/s (ideal ${(workers * perWorker * 1000) / latency}/s)`,
      );
    }
    const one = rates[1] ?? 1;
    for (const [workers, target] of [
      [2, 1.85],
      [4, 3.6],
    ] as const) {
      const ratio = (rates[workers] ?? 0) / one;
      record(
        {
          id: `P11 ${workers} workers`,
          name: `many machines: throughput of ${workers} workers ÷ of one (BullMQ on Redis, ${latency} ms endpoint, -c ${perWorker} each, shards of ${shardSize})`,
          value: ratio,
          target: `≥ ${target}`,
          detail: `${rates[workers]?.toFixed(1)} vs ${one.toFixed(1)} images/s, first request to last answer; one worker's ideal is ${(perWorker * 1000) / latency}/s`,
        },
        ratio >= target,
      );
    }
  } else if (wanted("P11")) {
    log("P11 skipped: no Redis answers at 127.0.0.1:6379");
  }

  // P14: small shards. A worker takes its next shard while the last images of the one before are
  // in flight, so shards of a few images (a slow model's work split finely) leave no slot empty
  // at their boundaries. 1 and 4 workers at -c 4 over 5-image shards, against a 500 ms endpoint.
  if (wanted("P14") && (await redisAnswers())) {
    const latency = 500;
    const perWorker = 4;
    const shardSize = 5;
    for (const workers of [1, 4]) {
      const count = scale(160, 20) * workers;
      const folder = await writeVariants(path.join(work, `p14-${workers}`), thumb, count);
      const queue = `bench-${process.pid}-p14-${workers}`;
      const { fake, arrivals } = await endpoint({ latencyMs: latency });
      await runCli(
        [
          "enqueue",
          folder,
          "--queue",
          queue,
          "--out",
          path.join(work, `p14-${workers}-out`),
          "--shard-size",
          String(shardSize),
        ],
        work,
        fake.baseUrl,
      );
      // The requests in flight at the endpoint, sampled while the workers run.
      let samples = 0;
      let inFlight = 0;
      const sampler = setInterval(() => {
        if (arrivals.length === 0 || arrivals.length >= count) return;
        samples += 1;
        inFlight += fake.inFlight;
      }, 10);
      const runs = await Promise.all(
        Array.from({ length: workers }, () =>
          measure(
            process.execPath,
            [CLI, "worker", "--queue", queue, "--until-empty", "-c", String(perWorker), "--quiet"],
            { cwd: work, env: cliEnv(fake.baseUrl) },
          ),
        ),
      );
      clearInterval(sampler);
      const most = fake.maxInFlight;
      await fake.close();
      await dropQueue(queue);
      for (const run of runs) {
        if (run.code !== 0) throw new Error(`caption worker exited ${run.code}: ${run.stderr}`);
      }
      const span = ((arrivals.at(-1) ?? 0) + latency - (arrivals[0] ?? 0)) / 1000;
      const rate = count / span;
      const bound = (workers * perWorker * 1000) / latency;
      record(
        {
          id: `P14 ${workers} ${workers === 1 ? "worker" : "workers"}`,
          name: `small shards: images/s of ${workers} ${workers === 1 ? "worker" : "workers"} at -c ${perWorker} over ${shardSize}-image shards ÷ their bound (${latency} ms endpoint)`,
          value: rate / bound,
          target: "≥ 0.9",
          detail: `${count} images in ${span.toFixed(1)} s = ${rate.toFixed(1)}/s, bound ${bound}/s; ${(inFlight / Math.max(1, samples)).toFixed(1)} requests in flight on average, ${most} at most`,
        },
        rate / bound >= 0.9,
      );
    }
  } else if (wanted("P14")) {
    log("P14 skipped: no Redis answers at 127.0.0.1:6379");
  }

  // P12: caption report over a long OUT: rows made by a script, naming a few hundred distinct
  // images many times over, as a 100,000-image dataset with repeated photos would.
  if (wanted("P12")) {
    const distinct = scale(300, 50);
    const folder = await writeVariants(path.join(work, "p12"), small, distinct);
    const files = (await readdir(folder)).sort();
    const peaks: Record<number, number> = {};
    const times: Record<number, number> = {};
    const sizes = process.env.P12_SIZES
      ? process.env.P12_SIZES.split(",").map(Number)
      : [scale(10_000, 2_000), scale(100_000, 20_000), scale(1_000_000, 40_000)];
    for (const rows of sizes) {
      const out = path.join(work, `p12-${rows}.csv`);
      // Written 10,000 rows at a time: a million rows held at once would be gigabytes here.
      await writeFile(out, stringify([[...CAPTION_COLUMNS]]));
      for (let start = 0; start < rows; start += 10_000) {
        const records: unknown[][] = [];
        for (let i = start; i < Math.min(rows, start + 10_000); i += 1) {
          const file = files[i % files.length] as string;
          const caption = `A photo of a harbour at dusk, number ${i}, with boats, gulls and a lighthouse on the rocks.`;
          records.push([
            `p12/${file}`,
            caption,
            "MiniCPM-V-4.6-Instruct",
            "gpu1:8000",
            320,
            240,
            180,
            40 + (i % 60),
            1,
            400 + (i % 900),
            "false",
            i % 97 === 0 ? "repetition" : "",
            "2026-12-02T00:00:00.000Z",
            "",
            "p",
          ]);
        }
        await appendFile(out, stringify(records));
      }
      // Thumbnails of the first size are kept for the second: make them afresh each time.
      await rm(path.join(work, `p12-${rows}.report_files`), { recursive: true, force: true });
      const result = await measure(process.execPath, [CLI, "report", out], {
        cwd: work,
      });
      if (result.code !== 0)
        throw new Error(`caption report exited ${result.code}: ${result.stderr}`);
      peaks[rows] = result.peakRssMb;
      times[rows] = result.wallMs;
      log(
        `P12 ${rows} rows: peak ${result.peakRssMb.toFixed(0)} MiB, ${(result.wallMs / 1000).toFixed(1)} s`,
      );
    }
    // V8 lets its heap grow with the rate of garbage until it levels off (the live heap stays at
    // about 12 MiB whatever the length), so the first size shows that growth; flat means no
    // growth from the issue's 100,000 rows to ten times as many.
    const [, middle = 0, largest = 0] = sizes;
    const ratio = (peaks[largest] ?? 0) / (peaks[middle] ?? 1);
    record(
      {
        id: "P12 report memory",
        name: `report: peak RSS making the page for ${largest} rows ÷ for ${middle} (${distinct} distinct images)`,
        value: ratio,
        target: "≤ 1.3 (flat)",
        detail: sizes
          .map(
            (rows) =>
              `${rows} rows: ${peaks[rows]?.toFixed(0)} MiB in ${((times[rows] ?? 0) / 1000).toFixed(1)} s`,
          )
          .join("; "),
      },
      ratio <= 1.3,
    );
    // Bounded, not merely slow to grow: the issue's OUT again with the JS heap capped at 40 MiB
    // (the largest would take a minute, collecting at every step).
    const capped = await measure(
      process.execPath,
      [CLI, "report", path.join(work, `p12-${middle}.csv`)],
      { cwd: work, env: { ...process.env, NODE_OPTIONS: "--max-old-space-size=40" } },
    );
    record(
      {
        id: "P12 report bounded",
        name: `report: ${middle} rows with the JS heap capped at 40 MiB (finishes: memory does not grow with the rows)`,
        value: capped.peakRssMb,
        target: "finishes, ≤ 300 MiB",
        detail: `exit ${capped.code}, peak ${capped.peakRssMb.toFixed(0)} MiB in ${(capped.wallMs / 1000).toFixed(1)} s`,
      },
      capped.code === 0 && capped.peakRssMb <= 300,
    );
  }

  // P15: `caption estimate` against the real run on a mixed archive: camera photos (shrunk to the
  // pixel budget), half-size exports and thumbnails, as a photo folder holds them. Each round
  // takes a fresh random sample of 20 into a fresh OUT, then the run finishes it; the figure is
  // the worst round's error on prompt tokens. Held against the forecast a mean per image of the
  // same sample would give, the obvious way to estimate.
  if (wanted("P15")) {
    const folder = path.join(work, "p15");
    const sizes: [number, number, number][] = [
      [4000, 3000, scale(150, 20)],
      [1200, 900, scale(100, 10)],
      [640, 480, scale(100, 10)],
      [240, 180, scale(150, 20)],
    ];
    for (const [width, height, count] of sizes) {
      const jpeg = await photoLike(width, height);
      await writeVariants(path.join(folder, `${width}x${height}`), jpeg, count);
    }
    const total = sizes.reduce((sum, [, , count]) => sum + count, 0);
    // Tokens that grow with the pixels received: the fake must look at each image.
    const { fake } = await endpoint({ inspectImages: true });
    const errors: number[] = [];
    const naive: number[] = [];
    for (let round = 0; round < scale(5, 2); round += 1) {
      const out = path.join(work, `p15-${round}.csv`);
      const estimate = await runCli(
        ["estimate", folder, "-o", out, "--json", "-c", "16"],
        work,
        fake.baseUrl,
      );
      const forecast = JSON.parse(estimate.stdout) as { prompt_tokens: { expected: number } };
      const sampled = parse(await readFile(out, "utf8"), { columns: true }) as {
        prompt_tokens: string;
      }[];
      const sampleMean =
        sampled.reduce((sum, row) => sum + Number(row.prompt_tokens), 0) / sampled.length;
      await runCli([folder, "-o", out, "-c", "16"], work, fake.baseUrl);
      const rows = parse(await readFile(out, "utf8"), { columns: true }) as {
        prompt_tokens: string;
      }[];
      const actual = rows.reduce((sum, row) => sum + Number(row.prompt_tokens), 0);
      errors.push(Math.abs(forecast.prompt_tokens.expected - actual) / actual);
      naive.push(Math.abs(sampleMean * total - actual) / actual);
      await rm(out, { force: true });
    }
    await fake.close();
    const worst = Math.max(...errors);
    record(
      {
        id: "P15 estimate",
        name: `estimate: worst error on the prompt tokens of a run of ${total} mixed-size photos (4000×3000 shrunk to the pixel budget, 1200×900, 640×480, 240×180), from a sample of 20`,
        value: worst,
        target: "≤ 0.10",
        detail: `errors ${errors.map((e) => e.toFixed(3)).join(", ")} over ${errors.length} fresh samples; a mean per image of the same samples: ${naive.map((e) => e.toFixed(3)).join(", ")}; the fake's tokens grow in line with the pixels sent, a slicing server's in steps (the curve follows both)`,
      },
      worst <= 0.1,
    );
  }

  // P15 peer: the same against the real llama.cpp server with the MiniCPM-V pair, whose projector
  // slices an image as the real model does: its image tokens grow in steps, not in line with the
  // pixels. Its random weights loop now and then, and a loop is asked again: the forecast is of
  // the tokens billed, retries included, so that noise is in the figure.
  if (wanted("P15") && existsSync(LLAMA_PEER)) {
    const folder = path.join(work, "p15-peer");
    const sizes: [number, number, number][] = [
      [4000, 3000, scale(40, 8)],
      [1200, 900, scale(40, 8)],
      [480, 360, scale(40, 8)],
      [160, 120, scale(40, 8)],
    ];
    for (const [width, height, count] of sizes) {
      await writeVariants(
        path.join(folder, `${width}x${height}`),
        await photoLike(width, height),
        count,
      );
    }
    const { server: peer, baseUrl } = await startLlamaPeer(path.join(work, "p15-peer.log"));
    try {
      const env = { ...cliEnv(baseUrl), MINICPM_API_KEY: "k-peer" };
      const settings = ["-m", "tiny-vlm", "--max-tokens", "32", "--log-format", "json"];
      const errors: number[] = [];
      for (let round = 0; round < scale(3, 1); round += 1) {
        const out = path.join(work, `p15-peer-${round}.csv`);
        const estimate = await measure(
          process.execPath,
          [CLI, "estimate", folder, "-o", out, "--json", ...settings],
          { cwd: work, env },
        );
        if (estimate.code !== 0) throw new Error(`caption estimate: ${estimate.stderr}`);
        const forecast = JSON.parse(estimate.stdout) as { prompt_tokens: { expected: number } };
        const rest = await measure(process.execPath, [CLI, folder, "-o", out, ...settings], {
          cwd: work,
          env,
        });
        if (rest.code !== 0) throw new Error(`caption: ${rest.stderr}`);
        const billed = (stderr: string) => {
          const summary = stderr
            .trim()
            .split("\n")
            .map((line) => JSON.parse(line) as { event?: string; tokens?: { prompt?: number } })
            .find((event) => event.event === "summary");
          return summary?.tokens?.prompt ?? 0;
        };
        const actual = billed(estimate.stderr) + billed(rest.stderr);
        errors.push(Math.abs(forecast.prompt_tokens.expected - actual) / actual);
        await rm(out, { force: true });
      }
      const worst = Math.max(...errors);
      const total = sizes.reduce((sum, [, , count]) => sum + count, 0);
      record(
        {
          id: "P15 estimate peer",
          name: `estimate against llama.cpp's server (MiniCPM-V pair, images sliced as the real model does): worst error on the prompt tokens billed for ${total} photos of four sizes, from a sample of 20`,
          value: worst,
          target: "≤ 0.10",
          detail: `errors ${errors.map((e) => e.toFixed(3)).join(", ")} over ${errors.length} fresh samples; billed includes the retries of looping answers, which a sample of 20 measures roughly`,
        },
        worst <= 0.1,
      );
    } finally {
      peer.kill("SIGTERM");
    }
  }

  // P16: video clips. Camera-like 1080p30 H.264 with AAC (bench/clips.ts), cut by prepareClip at
  // the defaults (448 px, 1 frame a second, 60 s as 10-second segments, H.264 without sound).
  // Bytes sent per minute of source, against the source's own bytes a minute; and clips prepared a
  // second against the bare commands doing the same cut (ffprobe as the tool calls it, then FFmpeg
  // with cutArgs' arguments), one at a time and at the pipeline's decoders (cores + 1). Whatever
  // prepareClip does beyond them is in the figure.
  if (wanted("P16") && ffmpegAnswers()) {
    const p16Started = performance.now();
    const folder = path.join(work, "p16");
    const shortSeconds = scale(20, 10);
    const made = await cameraClips(folder, scale(3, 2), shortSeconds, scale(120, 40));
    const source = await sourceFacts(made.long);
    const perMinute = (bytes: number) => bytes / (source.duration / 60);
    const mb = (bytes: number) => (bytes / 1e6).toFixed(2);
    // Wall seconds, and CPU seconds of the bench and its FFmpeg children (bench/clips.ts).
    const timed = async <T>(job: () => Promise<T>): Promise<[T, number, number]> => {
      const [cpu, started] = [await cpuSeconds(), performance.now()];
      const result = await job();
      return [result, (performance.now() - started) / 1000, (await cpuSeconds()) - cpu];
    };
    const [native, nativeSeconds] = await timed(() =>
      prepareClip(made.long, CLIP_DEFAULTS, "native"),
    );
    const [frames, framesSeconds] = await timed(() =>
      prepareClip(made.long, CLIP_DEFAULTS, "frames"),
    );
    const sourceNote = `${(source.duration / 60).toFixed(1)}-minute 1920×1080 30 fps ${source.profile} H.264 at ${(source.videoBitRate / 1e6).toFixed(1)} Mb/s with AAC, ${mb(perMinute(source.bytes))} MB a minute`;
    const sent = (image: typeof native) => {
      const { frames = 0, mode = "native", seconds = 0, segments = 1 } = image.clip ?? {};
      const stretches =
        mode === "native"
          ? `, ${segments} segment${segments === 1 ? "" : "s"} of ${(seconds / segments).toFixed(0)} s`
          : "";
      return `${mb(perMinute(image.bytes))} MB a minute, ${(image.bytes / source.bytes).toPrecision(3)} of the source's (${mb(image.bytes)} MB: ${frames} frames at ${image.width}×${image.height}${stretches})`;
    };
    // Clips a second: each short clip through prepareClip and through the bare commands, whose
    // plan is worked out ahead; which goes first alternates clip by clip and round by round (each
    // clip first once each way), so a drift of the machine's speed falls on both alike.
    const bares = await Promise.all(
      made.short.map((clip, index) =>
        bareCut(clip, CLIP_DEFAULTS, path.join(folder, `bare-${index}.mp4`)),
      ),
    );
    const bareOf = (index: number) => bares[index] as (typeof bares)[number];
    const bareOut = (index: number) => path.join(folder, `bare-${index}.mp4`);
    const prepared = (clip: string) => prepareClip(clip, CLIP_DEFAULTS, "native");
    let preparedSeconds = 0;
    let bareSeconds = 0;
    let preparedCpu = 0;
    let bareCpu = 0;
    let identical = 0;
    const shortBytes: number[] = [];
    const rounds = scale(2, 1);
    for (let round = 0; round < rounds; round += 1) {
      for (const [index, clip] of made.short.entries()) {
        const ours = async () => {
          const [image, seconds, cpu] = await timed(() => prepared(clip));
          preparedSeconds += seconds;
          preparedCpu += cpu;
          return image;
        };
        const theirs = async () => {
          const [, seconds, cpu] = await timed(() => runBare(bareOf(index), bareOut(index)));
          bareSeconds += seconds;
          bareCpu += cpu;
        };
        let image: Awaited<ReturnType<typeof prepared>>;
        if ((index + round) % 2 === 0) {
          image = await ours();
          await theirs();
        } else {
          await theirs();
          image = await ours();
        }
        if (round === 0) shortBytes.push(image.bytes);
        if (image.data?.equals(await readFile(bareOut(index)))) identical += 1;
      }
    }
    // The pipeline's decoders: one per core plus one (src/run/pipeline.ts), bare first this time.
    const decoders = os.availableParallelism() + 1;
    const [, bareAtOnce, bareAtOnceCpu] = await timed(() =>
      pool(
        made.short.map((_, index) => () => runBare(bareOf(index), bareOut(index))),
        decoders,
      ),
    );
    const [, preparedAtOnce, preparedAtOnceCpu] = await timed(() =>
      pool(
        made.short.map((clip) => () => prepared(clip)),
        decoders,
      ),
    );
    // The floor under both: only decoding the first clip's video, nothing scaled or encoded.
    const [, decodeOnly] = await timed(() =>
      tool("ffmpeg", [
        "-nostdin",
        "-v",
        "error",
        "-i",
        made.short[0] ?? "",
        "-map",
        "0:v:0",
        "-f",
        "null",
        "-",
      ]),
    );
    const count = made.short.length;
    const shortSent = shortBytes.reduce((sum, bytes) => sum + bytes, 0) / count;
    record(
      {
        id: "P16 bytes native",
        name: "clips: bytes sent per minute of 1080p30 camera-like source ÷ the source's bytes a minute (native MP4 at the defaults)",
        value: perMinute(native.bytes) / perMinute(source.bytes),
        target: "reported",
        detail: `${sent(native)} against ${sourceNote}; cut in ${nativeSeconds.toFixed(1)} s; the ${shortSeconds}-second clips below, sent whole: ${mb(shortSent / (shortSeconds / 60))} MB a minute (${(shortSent / (shortSeconds / 60) / perMinute(source.bytes)).toPrecision(3)} of the source's)`,
      },
      true,
    );
    record(
      {
        id: "P16 bytes frames",
        name: "clips: bytes sent per minute of the same source ÷ its bytes a minute (frames mode: JPEGs at the defaults)",
        value: perMinute(frames.bytes) / perMinute(source.bytes),
        target: "reported",
        detail: `${sent(frames)} against the same ${mb(perMinute(source.bytes))} MB a minute; cut in ${framesSeconds.toFixed(1)} s`,
      },
      true,
    );
    record(
      {
        id: "P16 clips/s",
        name: `clips: clips prepared a second by prepareClip (native, defaults) ÷ by the bare ffprobe and FFmpeg commands of the same cut, one at a time (${shortSeconds}-second 1080p30 clips)`,
        value: bareSeconds / preparedSeconds,
        target: "≥ 0.95",
        detail: `${((count * rounds) / preparedSeconds).toFixed(3)} vs ${((count * rounds) / bareSeconds).toFixed(3)} clips/s (${(preparedSeconds / count / rounds).toFixed(2)} vs ${(bareSeconds / count / rounds).toFixed(2)} s a clip), ${count} clips × ${rounds} rounds, turn about; ${identical} of ${count * rounds} cuts identical to the byte; CPU ${(preparedCpu / count / rounds).toFixed(2)} vs ${(bareCpu / count / rounds).toFixed(2)} s a clip; decoding a clip's video alone: ${decodeOnly.toFixed(2)} s`,
      },
      bareSeconds / preparedSeconds >= 0.95,
    );
    record(
      {
        id: `P16 clips/s ${decoders} at once`,
        name: `clips: clips prepared a second ÷ by the bare commands, ${decoders} at a time (the pipeline's decoders: cores + 1)`,
        value: bareAtOnce / preparedAtOnce,
        target: "≥ 0.95",
        detail: `${(count / preparedAtOnce).toFixed(3)} vs ${(count / bareAtOnce).toFixed(3)} clips/s over the same ${count} clips, bare first; CPU ${(preparedAtOnceCpu / count).toFixed(2)} vs ${(bareAtOnceCpu / count).toFixed(2)} s a clip; P16 took ${((performance.now() - p16Started) / 1000).toFixed(0)} s with making the clips (${made.madeIn.toFixed(0)} s)`,
      },
      bareAtOnce / preparedAtOnce >= 0.95,
    );
    await rm(folder, { recursive: true, force: true });
  } else if (wanted("P16")) {
    log("P16 skipped: ffmpeg and ffprobe are not both on PATH");
  }

  // P17: WebDataset shards. The same photos captioned from loose files and from img2dataset-like
  // shards (each sample a JPEG, its alt text and its JSON), rounds interleaved, best of 3; then
  // the same shards' samples regrouped into 12 times as many shards, for peak memory. Photos at
  // 1280×960 (a dataset's images are 256 to 1024 px): within the pixel budget, they are sent as
  // they are, not decoded; what is left (hashing, base64, the request and its answer) is the same
  // in both, and reading, which differs, is a seventh of it. "P17 shards read" measures reading.
  if (wanted("P17")) {
    const count = scale(1200, 120);
    const jpeg = await photoLike(1280, 960, 90);
    const folder = await writeVariants(path.join(work, "p17-files"), jpeg, count);
    const names = (await readdir(folder)).sort();
    const writeShards = async (dir: string, shards: number): Promise<string> => {
      const per = Math.ceil(names.length / shards);
      for (let shard = 0; shard < shards; shard += 1) {
        const members: ShardMember[] = [];
        for (const name of names.slice(shard * per, (shard + 1) * per)) {
          const key = path.basename(name, ".jpg");
          members.push({ name: `${key}.jpg`, data: await readFile(path.join(folder, name)) });
          members.push({ name: `${key}.txt`, data: `alt text of ${key}` });
          members.push({ name: `${key}.json`, data: JSON.stringify({ key, status: "success" }) });
        }
        await writeShard(path.join(dir, `${String(shard).padStart(5, "0")}.tar`), members);
      }
      return path.join(dir, "*.tar");
    };
    const fewShards = await writeShards(path.join(work, "p17-shards"), 4);
    const manyShards = await writeShards(path.join(work, "p17-many"), 48);
    const { fake } = await endpoint({});
    const files: Measured[] = [];
    const shards: Measured[] = [];
    const many: Measured[] = [];
    for (let round = 0; round < 3; round += 1) {
      const out = (name: string) => path.join(work, `p17-${name}-${round}.csv`);
      files.push(await runCli([folder, "-o", out("files"), "-c", "32"], work, fake.baseUrl));
      shards.push(await runCli([fewShards, "-o", out("shards"), "-c", "32"], work, fake.baseUrl));
      many.push(await runCli([manyShards, "-o", out("many"), "-c", "32"], work, fake.baseUrl));
    }
    await fake.close();
    const fromFiles = best(files);
    const fromShards = best(shards);
    const fromMany = best(many);
    const ratio = fromFiles.wallMs / fromShards.wallMs;
    record(
      {
        id: "P17 shards images/s",
        name: `shards: images/s captioned from 4 WebDataset shards ÷ from the same ${count} photos as files (1280×960 JPEGs, -c 32, fake endpoint)`,
        value: ratio,
        target: "≥ 0.95",
        detail: `${(count / (fromShards.wallMs / 1000)).toFixed(1)} vs ${(count / (fromFiles.wallMs / 1000)).toFixed(1)} images/s, each the best of 3; JPEGs within the pixel budget go undecoded, and reading them, which differs (P17 shards read), is a small part of either run: run to run this ratio moves between 0.95 and 1.4 on this machine`,
      },
      ratio >= 0.95,
    );
    // Reading alone, as a run's intake reads (found, then each image read and hashed into a
    // reader's kept buffer), without decoding or sending, which hide it in the figure above.
    const readAll = async (input: string) => {
      const started = performance.now();
      const { tasks } = await discoverImages([input], work);
      const reader = new FileReader();
      let bytes = 0;
      for (const task of tasks) {
        const read =
          task.member?.kind === "tar"
            ? await reader.readMemberAndHash(task.absPath, task.member)
            : await reader.readAndHash(task.absPath);
        bytes += read?.bytes.length ?? 0;
      }
      await reader.close();
      return { ms: performance.now() - started, images: tasks.length, bytes };
    };
    const reads: { files: number; shards: number }[] = [];
    let readBytes = 0;
    for (let round = 0; round < 3; round += 1) {
      const files = await readAll(folder);
      const shards = await readAll(fewShards);
      if (files.images !== count || shards.images !== count || files.bytes !== shards.bytes) {
        throw new Error(`P17: read ${files.images} files and ${shards.images} samples, unlike`);
      }
      readBytes = files.bytes;
      reads.push({ files: files.ms, shards: shards.ms });
    }
    const readFiles = Math.min(...reads.map((r) => r.files));
    const readShards = Math.min(...reads.map((r) => r.shards));
    record(
      {
        id: "P17 shards read",
        name: `shards: images/s read and hashed from 4 WebDataset shards ÷ from the same ${count} photos as files (listing included; no decoding, no sending)`,
        value: readFiles / readShards,
        target: "≥ 1",
        detail: `${(count / (readShards / 1000)).toFixed(0)} vs ${(count / (readFiles / 1000)).toFixed(0)} images/s, ${(readBytes / 2 ** 20).toFixed(0)} MiB from the page cache, each the best of 3: a shard is listed by its headers and read at offsets, kept open from image to image where each file is opened and closed`,
      },
      readFiles / readShards >= 1,
    );
    const memory = fromMany.peakRssMb / fromShards.peakRssMb;
    record(
      {
        id: "P17 shards memory",
        name: `shards: peak memory with the same ${count} photos in 48 shards ÷ in 4`,
        value: memory,
        target: "≤ 1.10",
        detail: `${fromMany.peakRssMb.toFixed(0)} vs ${fromShards.peakRssMb.toFixed(0)} MB peak RSS (files: ${fromFiles.peakRssMb.toFixed(0)} MB); 48 shards ran at ${(count / (fromMany.wallMs / 1000)).toFixed(1)} images/s`,
      },
      memory <= 1.1,
    );
  }

  // P7: the same job done the way a user would without this tool.
  if (wanted("P7") && ensurePeerTools()) {
    const count = scale(80, 12);
    const folder = await writeVariants(path.join(work, "p7"), photo, count);
    const { fake } = await endpoint({});
    const runPillow = () =>
      measure(
        "/usr/bin/python3",
        [
          path.join(ROOT, "bench", "peers", "pillow_caption.py"),
          fake.baseUrl,
          folder,
          "8",
          path.join(work, "p7-pillow.csv"),
        ],
        { cwd: work },
      );
    // Best of three for the CLI, Pillow and the decoding floor, round by round, as P1 does: run
    // to run this machine varies by a tenth or more. ImageMagick, far behind, runs once.
    const oursRuns: Measured[] = [];
    const pillowRuns: Measured[] = [];
    const decodeRuns: Measured[] = [];
    for (let round = 0; round < 3; round += 1) {
      oursRuns.push(
        await runCli(
          [folder, "-o", path.join(work, `p7-${round}.csv`), "-c", "8"],
          work,
          fake.baseUrl,
        ),
      );
      pillowRuns.push(await runPillow());
      // The most a sharp-based tool could reach: only decoding, at the scale shrink-on-load gives.
      decodeRuns.push(await runBaseline(folder, 8, "decode"));
    }
    const ours = best(oursRuns);
    const pillow = pillowRuns.find((run) => run.code !== 0) ?? best(pillowRuns);
    const decodeOnly = best(decodeRuns);
    const magick = await measure(
      "bash",
      [
        "-c",
        `ls -1 '${folder}'/* | xargs -P 8 -n 1 bash '${path.join(ROOT, "bench", "peers", "imagemagick_caption.sh")}' '${fake.baseUrl}'`,
      ],
      { cwd: work },
    );
    await fake.close();
    for (const [name, peer] of [
      ["Python + Pillow + thread pool", pillow],
      ["xargs -P + ImageMagick + curl", magick],
    ] as const) {
      if (peer.code !== 0) {
        log(`P7 ${name} failed: ${peer.stderr.slice(0, 500)}`);
        continue;
      }
      const ratio = peer.wallMs / ours.wallMs;
      record(
        {
          id: `P7 ${name.split(" ")[0]}`,
          name: `peers: our images/s ÷ ${name} (12 MP JPEGs, 8 at a time)`,
          value: ratio,
          target: "≥ 3",
          detail: `${(count / (ours.wallMs / 1000)).toFixed(1)} vs ${(count / (peer.wallMs / 1000)).toFixed(1)} images/s over ${count} images (${peer === pillow ? "each the best of 3" : "ImageMagick: one run"}); only decoding the files at half size, with nothing resized, encoded or sent (the most any tool built on sharp could reach), ${(peer.wallMs / decodeOnly.wallMs).toFixed(2)}×`,
        },
        ratio >= 3,
      );
    }
  }
} finally {
  await rm(work, { recursive: true, force: true });
}

const stale = !compiledIsFresh(new URL("../", import.meta.url));
if (stale) {
  log(
    "src/ changed during the bench: the figures measured after that ran through tsx, so bench/results.json is left as it was; run it again",
  );
  process.exitCode = 1;
}
const cpu = os.cpus()[0]?.model ?? "unknown CPU";
const machine = `${os.cpus().length} × ${cpu}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, Linux ${os.release()}, Node ${process.version}, sharp ${sharp.versions.sharp} / libvips ${sharp.versions.vips}`;
const results = {
  date: new Date().toISOString(),
  machine,
  quick: QUICK,
  seconds: Math.round((performance.now() - benchStarted) / 1000),
  figures,
};
// A partial run (BENCH_ONLY) prints its figures but leaves the whole run's file alone, unless
// BENCH_MERGE=1 asks it to replace those figures there (measured again after a change).
if (stale) {
  // Nothing is written: the figures are of two different programs.
} else if (!ONLY) {
  await writeFile(
    path.join(ROOT, "bench", "results.json"),
    `${JSON.stringify(results, null, 2)}\n`,
  );
} else if (process.env.BENCH_MERGE === "1") {
  const file = path.join(ROOT, "bench", "results.json");
  const whole = JSON.parse(await readFile(file, "utf8")) as { figures: Figure[]; merged?: string };
  const again = (id: string) => ONLY.some((only) => id === only || id.startsWith(`${only} `));
  whole.figures = [...whole.figures.filter((f) => !again(f.id)), ...figures];
  // The notes of figures measured again before are kept; these figures' own are replaced.
  const earlier = (whole.merged ?? "")
    .split("; ")
    .filter((note) => note !== "" && !ONLY.some((only) => note.startsWith(`${only} `)));
  whole.merged = [...earlier, `${ONLY.join(", ")} measured again on ${results.date}`].join("; ");
  await writeFile(file, `${JSON.stringify(whole, null, 2)}\n`);
}
const table = [
  `Machine: ${machine}${QUICK ? " — QUICK MODE, not for figures" : ""}; bench took ${results.seconds} s`,
  "",
  "| figure | value | target | met | detail |",
  "| --- | --- | --- | --- | --- |",
  ...figures.map(
    (f) =>
      `| ${f.id}: ${f.name} | ${f.value.toFixed(3)} | ${f.target} | ${f.met ? "yes" : "**no**"} | ${f.detail} |`,
  ),
];
process.stdout.write(`${table.join("\n")}\n`);
