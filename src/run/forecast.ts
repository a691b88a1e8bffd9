/** A forecast and the range it falls in nine times in ten. */
export interface Range {
  low: number;
  expected: number;
  high: number;
}

/** What one image of the sample cost, and the pixels it was sent with. */
export interface SampledImage {
  pixels: number;
  promptTokens: number;
  completionTokens: number;
  latencyMs: number;
}

export interface ForecastInput {
  sample: readonly SampledImage[];
  /** The pixels each image not yet captioned will be sent with. */
  restPixels: readonly number[];
  /** Requests sent at once: the run's concurrency, or what the sample kept in flight. */
  concurrency: number;
  /** Requests a minute the run is held to, in all, if any. */
  rpm?: number | undefined;
  /** Tokens billed per token kept (retries, a second try after a loop): at least 1. */
  overhead: number;
  /** Per million tokens, the endpoints' prices weighed by the answers each gave. */
  prices: { input: number; output: number } | null;
}

export interface Forecast {
  promptTokens: Range;
  completionTokens: Range;
  seconds: Range;
  cost: Range | null;
  /** The smallest and largest image of the sample, in pixels sent: the curve's drawn part. */
  pixelsSampled: { min: number; max: number };
}

/** Nine times in ten, a normal value lies within this many standard deviations of its mean. */
const Z90 = 1.645;

/**
 * What the images left will cost, from the sample's. Prompt tokens follow the pixels each image
 * is sent with (`tokenCurve`), since a folder mixes thumbnails with full photos and a server's
 * image tokens grow with size, in steps on a slicing model; completion tokens and latency are
 * taken at the sample's mean.
 */
export function forecastRest(input: ForecastInput): Forecast {
  const { sample, restPixels } = input;
  const xs = sample.map((image) => image.pixels);
  const ys = sample.map((image) => image.promptTokens);
  const curve = tokenCurve(xs, ys);
  const promptTokens = scaled(
    widened(
      sumOver(restPixels, curve, leaveOneOutSd(xs, ys), sample.length),
      sample.length > 1 && oneSizeOnly(xs) ? flatAndProportional(ys, restPixels, curve) : [],
    ),
    input.overhead,
  );
  const completion = meanAndSd(sample.map((image) => image.completionTokens));
  const completionTokens = scaled(
    sumOver(restPixels, () => completion.mean, completion.sd, sample.length),
    input.overhead,
  );
  const latency = meanAndSd(sample.map((image) => image.latencyMs / 1000));
  const busy = sumOver(restPixels, () => latency.mean, latency.sd, sample.length);
  const inFlight = Math.max(1, Math.min(input.concurrency, restPixels.length));
  const paced = input.rpm ? (restPixels.length * 60) / input.rpm : 0;
  const seconds = mapRange(busy, (total) => Math.max(total / inFlight, paced));
  const prices = input.prices;
  const cost = prices
    ? {
        low: costOf(promptTokens.low, completionTokens.low, prices),
        expected: costOf(promptTokens.expected, completionTokens.expected, prices),
        high: costOf(promptTokens.high, completionTokens.high, prices),
      }
    : null;
  return {
    promptTokens,
    completionTokens,
    seconds,
    cost,
    pixelsSampled: { min: Math.min(...xs), max: Math.max(...xs) },
  };
}

/**
 * Prompt tokens as a function of the pixels sent, from the sample: straight lines between the
 * sizes sampled (made never to fall as pixels grow), and beyond them the slope of the
 * least-squares line. Exact for a server whose tokens are linear in pixels, and it follows the
 * steps of one that slices images, which a single line through them does not.
 */
export function tokenCurve(xs: readonly number[], ys: readonly number[]): (x: number) => number {
  const points = monotone(meanBySize(xs, ys));
  const first = points[0];
  const last = points[points.length - 1];
  if (first === undefined || last === undefined) return () => 0;
  if (points.length === 1) {
    // One size only: tokens in proportion to pixels is the best guess for the others.
    return (x) => (first.x > 0 ? (first.y * x) / first.x : first.y);
  }
  const slope = Math.max(0, fitLine(xs, ys).slope);
  return (x) => {
    if (x <= first.x) return Math.max(0, first.y - slope * (first.x - x));
    if (x >= last.x) return last.y + slope * (x - last.x);
    let i = 1;
    while ((points[i]?.x ?? Number.POSITIVE_INFINITY) < x) i++;
    const lo = points[i - 1] as Point;
    const hi = points[i] as Point;
    return lo.y + ((hi.y - lo.y) * (x - lo.x)) / (hi.x - lo.x);
  };
}

interface Point {
  x: number;
  y: number;
  /** How many images of the sample it stands for. */
  weight: number;
}

function meanBySize(xs: readonly number[], ys: readonly number[]): Point[] {
  const bySize = new Map<number, { sum: number; count: number }>();
  xs.forEach((x, i) => {
    const entry = bySize.get(x) ?? { sum: 0, count: 0 };
    entry.sum += ys[i] ?? 0;
    entry.count += 1;
    bySize.set(x, entry);
  });
  return [...bySize.entries()]
    .sort(([a], [b]) => a - b)
    .map(([x, { sum, count }]) => ({ x, y: sum / count, weight: count }));
}

function oneSizeOnly(xs: readonly number[]): boolean {
  return xs.length > 0 && xs.every((x) => x === xs[0]);
}

/**
 * A sample of one size cannot tell the tokens an image costs whatever its size (the prompt, a
 * server's fixed tokens an image) from those that grow with it: the forecast takes them in
 * proportion to the pixels, and its range reaches every image costing what the sampled size did.
 */
function flatAndProportional(
  ys: readonly number[],
  restPixels: readonly number[],
  curve: (pixels: number) => number,
): number[] {
  return [restPixels.length * meanAndSd(ys).mean, restPixels.reduce((sum, x) => sum + curve(x), 0)];
}

/** A range stretched to hold these values too. */
function widened(range: Range, values: readonly number[]): Range {
  return {
    low: Math.min(range.low, ...values),
    expected: range.expected,
    high: Math.max(range.high, ...values),
  };
}

/** Pools neighbours that fall as pixels grow (a larger image never costs fewer tokens). */
function monotone(points: readonly Point[]): Point[] {
  const blocks: { xs: number[]; y: number; weight: number }[] = [];
  for (const point of points) {
    blocks.push({ xs: [point.x], y: point.y, weight: point.weight });
    for (;;) {
      const b = blocks[blocks.length - 1];
      const a = blocks[blocks.length - 2];
      if (a === undefined || b === undefined || a.y <= b.y) break;
      blocks.splice(-2, 2, {
        xs: [...a.xs, ...b.xs],
        y: (a.y * a.weight + b.y * b.weight) / (a.weight + b.weight),
        weight: a.weight + b.weight,
      });
    }
  }
  return blocks.flatMap((block) => block.xs.map((x) => ({ x, y: block.y, weight: block.weight })));
}

/** How far the curve misses an image of the sample it was drawn without: its honest error. */
function leaveOneOutSd(xs: readonly number[], ys: readonly number[]): number {
  if (xs.length < 3) return meanAndSd(ys).sd;
  let squares = 0;
  for (let i = 0; i < xs.length; i++) {
    const curve = tokenCurve(
      xs.filter((_, j) => j !== i),
      ys.filter((_, j) => j !== i),
    );
    squares += ((ys[i] ?? 0) - curve(xs[i] ?? 0)) ** 2;
  }
  return Math.sqrt(squares / xs.length);
}

interface LineFit {
  intercept: number;
  slope: number;
}

/** y = intercept + slope × x by least squares; no slope where every x is the same. */
export function fitLine(xs: readonly number[], ys: readonly number[]): LineFit {
  const n = xs.length;
  if (n === 0) return { intercept: 0, slope: 0 };
  const meanX = mean(xs);
  const meanY = mean(ys);
  let sxx = 0;
  let sxy = 0;
  for (let i = 0; i < n; i++) {
    sxx += ((xs[i] ?? 0) - meanX) ** 2;
    sxy += ((xs[i] ?? 0) - meanX) * ((ys[i] ?? 0) - meanY);
  }
  const slope = sxx > 0 ? sxy / sxx : 0;
  return { intercept: meanY - slope * meanX, slope };
}

function meanAndSd(values: readonly number[]): { mean: number; sd: number } {
  const m = values.length > 0 ? mean(values) : 0;
  const sd =
    values.length > 1
      ? Math.sqrt(values.reduce((sum, v) => sum + (v - m) ** 2, 0) / (values.length - 1))
      : 0;
  return { mean: m, sd };
}

/**
 * The sum of the forecast over the images left, with its range: how well the sample pinned the
 * mean, and each image's own spread about it. A sample of one says nothing of spread: the range
 * is then half to twice the forecast.
 */
function sumOver(
  restPixels: readonly number[],
  perImage: (pixels: number) => number,
  sd: number,
  n: number,
): Range {
  const count = restPixels.length;
  const expected = restPixels.reduce((sum, x) => sum + perImage(x), 0);
  if (count === 0) return { low: 0, expected: 0, high: 0 };
  if (n < 2) return { low: expected / 2, expected, high: expected * 2 };
  const spread = sd * Math.sqrt((count * count) / n + count);
  return { low: Math.max(0, expected - Z90 * spread), expected, high: expected + Z90 * spread };
}

function scaled(range: Range, factor: number): Range {
  return mapRange(range, (value) => value * factor);
}

function mapRange(range: Range, f: (value: number) => number): Range {
  return { low: f(range.low), expected: f(range.expected), high: f(range.high) };
}

function costOf(prompt: number, completion: number, prices: { input: number; output: number }) {
  return (prompt * prices.input + completion * prices.output) / 1_000_000;
}

function mean(values: readonly number[]): number {
  return values.reduce((sum, v) => sum + v, 0) / values.length;
}
