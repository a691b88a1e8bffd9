import { availableParallelism } from "node:os";
import pLimit from "p-limit";
import { readMember } from "../archive/read-member.js";
import { isClipPath } from "../discover/extensions.js";
import { UsageError } from "../errors.js";
import { clipPixels, clipSentPixels } from "../prepare/clip/prepare-clip.js";
import { sentPixels } from "../prepare/sent-pixels.js";
import { DEFAULT_SAMPLE } from "../settings/defaults.js";
import { libraryNameOf } from "../settings/naming.js";
import { resolveRunOptions } from "../settings/resolve-run-options.js";
import type { ResolvedEndpoint, RunOptions } from "../settings/run-options.js";
import type { CaptionRecord, ImageTask, VideoOptions } from "../types.js";
import type { RunEvent, RunSummary } from "./events.js";
import { type Forecast, forecastRest, type Range, type SampledImage } from "./forecast.js";
import { captionImages, type RunHooks } from "./pipeline.js";

/** What a whole run of the inputs will cost: what the sample spent, plus the forecast of the rest. */
export interface Estimate {
  /** The sample's run: its rows are in OUT, so the real run does not pay for them again. */
  sample: RunSummary;
  images: {
    /** In the inputs. */
    found: number;
    /** In OUT before the sample was taken. */
    alreadyDone: number;
    /** Captioned (or failed) as the sample. */
    sampled: number;
    /** Still to caption after the sample. */
    left: number;
    /** Of those left, the ones whose header could not be read: they would fail. */
    unreadable: number;
  };
  /** Of the run still to go, the images left; null when nothing is left or the sample gave nothing to go on. */
  rest: Forecast | null;
  /** The sample's spending plus the rest's forecast: the whole run, from where OUT stood. */
  whole: { promptTokens: Range; completionTokens: Range; seconds: Range; cost: Range | null };
}

/**
 * Captions a random sample of the images OUT does not hold yet (rows written as a run's are),
 * then forecasts what captioning the rest will take: tokens in, fitted to the pixels each image
 * will be sent with (read from its header), tokens out, time at the sample's pace, and cost.
 */
export async function estimateCaptions(
  options: RunOptions,
  sampleSize: number = DEFAULT_SAMPLE,
  hooks: Omit<RunHooks, "pick"> = {},
): Promise<Estimate> {
  if (!Number.isSafeInteger(sampleSize) || sampleSize < 1) {
    throw new RangeError(`sample must be a whole number of at least 1, got ${sampleSize}`);
  }
  if (options.redo !== undefined) {
    throw new UsageError([
      `${(options.nameSetting ?? libraryNameOf)("redo")}: an estimate forecasts the images not in OUT yet; leave it out (a redo's images are known: the rows it names)`,
    ]);
  }
  const resolved = await resolveRunOptions(options);
  let rest: readonly ImageTask[] = [];
  const sampled: CaptionRecord[] = [];
  let firstSent = Number.POSITIVE_INFINITY;
  let lastAnswer = 0;
  const onEvent = (event: RunEvent): void => {
    hooks.onEvent?.(event);
    if (event.type !== "captioned" || event.copyOf !== null) return;
    const now = Date.now();
    firstSent = Math.min(firstSent, now - event.record.latency_ms);
    lastAnswer = now;
    sampled.push(event.record);
  };
  const summary = await captionImages(options, {
    ...hooks,
    onEvent,
    pick: (pending) => {
      const shuffled = shuffle(pending);
      rest = shuffled.slice(sampleSize);
      return shuffled.slice(0, sampleSize);
    },
  });
  const pixels = await readSentPixels(rest, resolved.prepare, resolved.video);
  const restPixels = pixels.filter((p): p is number => p !== null);
  const sample: SampledImage[] = sampled
    .filter((record) => record.prompt_tokens !== null)
    .map((record) => ({
      // A clip's tokens follow its frames, one slice each.
      pixels: record.video
        ? clipPixels(record.video.frames, resolved.video.side)
        : record.width * record.height,
      promptTokens: record.prompt_tokens ?? 0,
      completionTokens: record.completion_tokens ?? 0,
      latencyMs: record.latency_ms,
    }));
  const keptTokens = sample.reduce((sum, s) => sum + s.promptTokens + s.completionTokens, 0);
  const billed = summary.tokens.promptTokens + summary.tokens.completionTokens;
  // What the sample kept in flight, where -c auto left it to the server.
  const busyMs = sampled.reduce((sum, record) => sum + record.latency_ms, 0);
  const measuredInFlight = lastAnswer > firstSent ? busyMs / (lastAnswer - firstSent) : 1;
  const forecast =
    sample.length > 0 && restPixels.length > 0
      ? forecastRest({
          sample,
          restPixels,
          concurrency: concurrencyOf(resolved.endpoints, measuredInFlight),
          rpm: rpmOf(resolved.endpoints),
          overhead: keptTokens > 0 ? Math.max(1, billed / keptTokens) : 1,
          prices: pricesOf(resolved.endpoints, summary.byEndpoint),
        })
      : null;
  const spent = summary.tokens;
  const plus = (range: Range | undefined, done: number): Range =>
    range
      ? { low: range.low + done, expected: range.expected + done, high: range.high + done }
      : { low: done, expected: done, high: done };
  return {
    sample: summary,
    images: {
      found: summary.found + rest.length,
      alreadyDone: summary.alreadyDone,
      sampled: summary.captioned + summary.failed,
      left: rest.length + summary.unfinished,
      unreadable: pixels.length - restPixels.length,
    },
    rest: forecast,
    whole: {
      promptTokens: plus(forecast?.promptTokens, spent.promptTokens),
      completionTokens: plus(forecast?.completionTokens, spent.completionTokens),
      seconds: plus(forecast?.seconds, summary.elapsedMs / 1000),
      cost:
        forecast?.cost || spent.cost !== null
          ? plus(forecast?.cost ?? undefined, spent.cost ?? 0)
          : null,
    },
  };
}

/** Header reads are light: several at once per core keeps the disk busy. */
async function readSentPixels(
  tasks: readonly ImageTask[],
  prepare: { maxPixels: number; maxSide?: number | undefined },
  video: VideoOptions,
): Promise<(number | null)[]> {
  const limit = pLimit(availableParallelism() * 4);
  return Promise.all(
    tasks.map((task) =>
      limit(() =>
        task.member
          ? readMember(task).then(
              (bytes) => sentPixels(bytes, prepare),
              () => null,
            )
          : isClipPath(task.absPath)
            ? clipSentPixels(task.absPath, video)
            : sentPixels(task.absPath, prepare),
      ),
    ),
  );
}

/** Fisher–Yates: every sample of the pending images equally likely. */
function shuffle<T>(items: readonly T[]): T[] {
  const copy = [...items];
  for (let i = copy.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [copy[i], copy[j]] = [copy[j] as T, copy[i] as T];
  }
  return copy;
}

/** The requests the run will keep in flight: each endpoint's -c, or what the sample reached. */
function concurrencyOf(endpoints: readonly ResolvedEndpoint[], measured: number): number {
  return endpoints.reduce(
    (sum, endpoint) =>
      sum + (endpoint.concurrency === "auto" ? measured / endpoints.length : endpoint.concurrency),
    0,
  );
}

/** The run's pace in all, when every endpoint has one; an endpoint without is not held. */
function rpmOf(endpoints: readonly ResolvedEndpoint[]): number | undefined {
  if (!endpoints.every((endpoint) => endpoint.rpm !== undefined)) return undefined;
  return endpoints.reduce((sum, endpoint) => sum + (endpoint.rpm ?? 0), 0);
}

/** Each endpoint's prices, weighed by the share of the sample it answered. */
function pricesOf(
  endpoints: readonly ResolvedEndpoint[],
  answered: Record<string, number>,
): { input: number; output: number } | null {
  if (endpoints.every((e) => e.inputPrice === undefined && e.outputPrice === undefined)) {
    return null;
  }
  const total = endpoints.reduce((sum, e) => sum + (answered[e.label] ?? 0), 0);
  const share = (e: ResolvedEndpoint) =>
    total > 0 ? (answered[e.label] ?? 0) / total : 1 / endpoints.length;
  return {
    input: endpoints.reduce((sum, e) => sum + share(e) * (e.inputPrice ?? 0), 0),
    output: endpoints.reduce((sum, e) => sum + share(e) * (e.outputPrice ?? 0), 0),
  };
}
