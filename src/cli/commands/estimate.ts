import { UsageError } from "../../errors.js";
import { type Estimate, estimateCaptions } from "../../run/estimate.js";
import type { Range } from "../../run/forecast.js";
import { DEFAULT_SAMPLE } from "../../settings/defaults.js";
import { formatCost } from "../../util/cost.js";
import type { CommandIo } from "../command-io.js";
import { formatDuration } from "../units.js";
import { runCaption } from "./caption.js";

/**
 * `caption estimate INPUTS… -o OUT`: a run of a random sample, its rows kept in OUT, then what
 * the whole input will take, on stdout (`--json` for a program).
 */
export async function run(args: Record<string, unknown>, io: CommandIo): Promise<number> {
  const sample = args.sample ?? DEFAULT_SAMPLE;
  if (typeof sample !== "number" || !Number.isSafeInteger(sample) || sample < 1) {
    throw new UsageError([
      `--sample: expected a whole number of images of at least 1, got ${String(sample)}`,
    ]);
  }
  let estimate: Estimate | null = null;
  const exitCode = await runCaption(args, io, async (options, hooks) => {
    estimate = await estimateCaptions(options, sample, hooks);
    return estimate.sample;
  });
  const done: Estimate | null = estimate;
  if (done !== null) {
    io.context.stdout.write(
      args.json === true ? `${JSON.stringify(estimateJson(done))}\n` : estimateText(done),
    );
  }
  return exitCode;
}

/** The forecast as a person reads it: a line per quantity, its range beside it. */
export function estimateText(estimate: Estimate): string {
  const { images, whole, rest } = estimate;
  const lines = [
    `estimate for the ${images.found} images of the inputs: ${images.alreadyDone} already in OUT, ${images.sampled} in this sample (their rows are in OUT), ${images.left} left`,
  ];
  if (images.unreadable > 0) {
    lines.push(
      `  ${images.unreadable} of those left cannot be read (as images, or as clips) and would fail; they are not counted`,
    );
  }
  if (images.sampled === 0 || (rest === null && images.left > 0)) {
    lines.push("  the sample gave no answer to go on: nothing to forecast from");
  }
  const count = (n: number) => Math.round(n).toLocaleString("en-US");
  const row = (name: string, range: Range, format: (n: number) => string) =>
    `  ${name.padEnd(11)}${format(range.expected).padStart(14)}   (${format(range.low)} to ${format(range.high)})`;
  lines.push(row("tokens in", whole.promptTokens, count));
  lines.push(row("tokens out", whole.completionTokens, count));
  lines.push(row("time", whole.seconds, formatDuration));
  if (whole.cost) lines.push(row("cost", whole.cost, formatCost));
  lines.push(
    "  the whole run from where OUT stood, the sample included; ranges hold nine times in ten",
  );
  if (rest) {
    lines.push(
      `  tokens in follow the pixels each image is sent with, from its header (the sample's ran from ${count(rest.pixelsSampled.min)} to ${count(rest.pixelsSampled.max)})`,
    );
  }
  return `${lines.join("\n")}\n`;
}

/** The forecast for a program: every figure and its range, the images counted. */
export function estimateJson(estimate: Estimate): Record<string, unknown> {
  const { images, whole, rest } = estimate;
  return {
    images,
    prompt_tokens: whole.promptTokens,
    completion_tokens: whole.completionTokens,
    seconds: whole.seconds,
    cost: whole.cost,
    rest: rest
      ? {
          prompt_tokens: rest.promptTokens,
          completion_tokens: rest.completionTokens,
          seconds: rest.seconds,
          cost: rest.cost,
          pixels_sampled: rest.pixelsSampled,
        }
      : null,
  };
}
