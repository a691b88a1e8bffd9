import { describe, expect, it } from "vitest";
import { fitLine, forecastRest, type SampledImage, tokenCurve } from "../../src/run/forecast.js";

const image = (pixels: number, promptTokens: number, completionTokens = 50): SampledImage => ({
  pixels,
  promptTokens,
  completionTokens,
  latencyMs: 1000,
});

describe("fitLine", () => {
  it("finds the line of tokens against pixels", () => {
    const fit = fitLine([100, 200, 400], [15, 25, 45]);
    expect(fit.intercept).toBeCloseTo(5);
    expect(fit.slope).toBeCloseTo(0.1);
  });
});

describe("tokenCurve", () => {
  it("is exact for tokens linear in pixels, beyond the sizes sampled too", () => {
    const curve = tokenCurve([100, 300, 200], [15, 35, 25]);
    expect(curve(250)).toBeCloseTo(30);
    expect(curve(1000)).toBeCloseTo(105);
    expect(curve(50)).toBeCloseTo(10);
  });

  it("follows the steps of a server that slices images, where one line would miss both ends", () => {
    // 150 tokens for a thumbnail, 750 from a modest size on: a line through them fits neither.
    const xs = [1_600, 2_500, 90_000, 100_000, 810_000, 900_000];
    const ys = [150, 150, 750, 750, 750, 750];
    const curve = tokenCurve(xs, ys);
    expect(curve(2_000)).toBeCloseTo(150);
    expect(curve(95_000)).toBeCloseTo(750);
    expect(curve(850_000)).toBeCloseTo(750);
  });

  it("never takes a larger image to cost fewer tokens", () => {
    const curve = tokenCurve([100, 200, 300], [60, 40, 80]);
    expect(curve(150)).toBeLessThanOrEqual(curve(200));
    expect(curve(200)).toBeLessThanOrEqual(curve(250));
  });

  it("takes tokens in proportion to pixels when the sample has one size only", () => {
    const curve = tokenCurve([100, 100], [30, 50]);
    expect(curve(200)).toBeCloseTo(80);
  });
});

describe("forecastRest", () => {
  const base = { concurrency: 4, overhead: 1, prices: null };

  it("forecasts from the pixels of the images left, not the sample's mean image", () => {
    // The sample is all thumbnails and one large image; the rest is all large images.
    const sample = [image(1_000, 110), image(2_000, 120), image(1_500, 115), image(100_000, 1_100)];
    const forecast = forecastRest({ ...base, sample, restPixels: [100_000, 100_000] });
    expect(forecast.promptTokens.expected).toBeCloseTo(2_200, -1);
    const meanOfSample = (110 + 120 + 115 + 1_100) / 4;
    expect(forecast.promptTokens.expected).toBeGreaterThan(4 * meanOfSample);
  });

  it("widens the range with the spread of the sample, and multiplies by the tokens retries cost", () => {
    const tight = forecastRest({
      ...base,
      sample: [image(1_000, 100, 40), image(2_000, 200, 60)],
      restPixels: [1_500, 1_500, 1_500],
    });
    const loose = forecastRest({
      ...base,
      sample: [image(1_000, 100, 10), image(2_000, 200, 90)],
      restPixels: [1_500, 1_500, 1_500],
    });
    expect(tight.completionTokens.expected).toBe(loose.completionTokens.expected);
    expect(loose.completionTokens.high - loose.completionTokens.low).toBeGreaterThan(
      tight.completionTokens.high - tight.completionTokens.low,
    );
    const retried = forecastRest({
      ...base,
      overhead: 1.5,
      sample: [image(1_000, 100, 40), image(2_000, 200, 60)],
      restPixels: [1_500, 1_500, 1_500],
    });
    expect(retried.promptTokens.expected).toBeCloseTo(tight.promptTokens.expected * 1.5);
  });

  it("takes time at the sample's latency over the requests in flight, and no faster than an rpm", () => {
    const sample = [image(1_000, 100), image(1_000, 100)];
    const restPixels = Array.from({ length: 40 }, () => 1_000);
    expect(forecastRest({ ...base, sample, restPixels }).seconds.expected).toBeCloseTo(10);
    expect(forecastRest({ ...base, sample, restPixels, rpm: 60 }).seconds.expected).toBeCloseTo(40);
  });

  it("prices tokens in and out apart", () => {
    const forecast = forecastRest({
      ...base,
      prices: { input: 1, output: 10 },
      sample: [image(1_000, 1_000, 100), image(1_000, 1_000, 100)],
      restPixels: [1_000],
    });
    expect(forecast.cost?.expected).toBeCloseTo((1_000 * 1 + 100 * 10) / 1_000_000);
  });

  it("from a sample of one size, ranges over every image costing that and tokens in proportion to pixels", () => {
    const forecast = forecastRest({
      ...base,
      sample: [image(1_000, 100), image(1_000, 120)],
      restPixels: [1_000, 4_000],
    });
    expect(forecast.promptTokens.expected).toBeCloseTo(110 + 440);
    expect(forecast.promptTokens.low).toBeLessThanOrEqual(220);
    expect(forecast.promptTokens.high).toBeGreaterThanOrEqual(550);
  });

  it("gives a wide range from a sample of one", () => {
    const forecast = forecastRest({ ...base, sample: [image(1_000, 100)], restPixels: [1_000] });
    expect(forecast.promptTokens).toEqual({ low: 50, expected: 100, high: 200 });
  });
});
