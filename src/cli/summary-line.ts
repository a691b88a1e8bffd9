import type { BudgetReached, ContextOverflows, RunSummary } from "../run/events.js";
import { formatCost } from "../util/cost.js";
import { formatBytes, formatDuration } from "./units.js";

/** What a run did, in one line (without the "caption: " prefix). */
export function summaryLine(
  summary: RunSummary,
  output: string,
  errorsPath: string,
  dryRun: boolean,
): string {
  const seconds = summary.elapsedMs / 1000;
  const empty =
    summary.emptyInputs.length > 0
      ? `; warning: ${summary.emptyInputs.join(", ")} ${summary.emptyInputs.length === 1 ? "matches" : "match"} no image file (a typo? --strict makes this an error)`
      : "";
  if (dryRun) {
    const failed = summary.failed > 0 ? `, ${summary.failed} could not be prepared` : "";
    return `dry run: ${summary.prepared} images would be sent (${formatBytes(summary.preparedBytes)} after resizing)${failed}, ${summary.alreadyDone} already in ${output}; nothing was sent${empty}`;
  }
  if (summary.found === 0) return `no images found in the inputs; nothing to do${empty}`;
  if (summary.alreadyDone === summary.found) {
    return `nothing to do: all ${summary.found} images are already in ${output}${empty}`;
  }
  const captioned =
    summary.copies > 0
      ? `${summary.captioned} captioned (${summary.copies} as copies of identical files)`
      : `${summary.captioned} captioned`;
  const parts = [captioned, `${summary.failed} failed`];
  const flagged = Object.entries(summary.flagged);
  if (flagged.length > 0) {
    parts.push(
      `flagged: ${flagged.map(([flag, count]) => `${count} ${flag}`).join(", ")} (see the flags column)`,
    );
  }
  const byEndpoint = Object.entries(summary.byEndpoint);
  if (byEndpoint.length > 1) {
    parts.push(
      `by endpoint: ${byEndpoint.map(([label, count]) => `${label} ${count}`).join(", ")}`,
    );
  }
  for (const [label, overflow] of Object.entries(summary.contextOverflows)) {
    parts.push(contextLine(label, overflow));
  }
  const spent = tokensPart(summary);
  if (spent) parts.push(spent);
  if (summary.alreadyDone > 0) parts.push(`${summary.alreadyDone} already done`);
  if (summary.unfinished > 0) parts.push(`${summary.unfinished} left for the next run`);
  const rate = seconds > 0 ? ` (${(summary.captioned / seconds).toFixed(1)} images/s)` : "";
  const failures =
    summary.failed === 0
      ? ""
      : summary.errorsFileProblem
        ? `; the errors file ${errorsPath} could not be written (${summary.errorsFileProblem}), so the failures are only in the lines above`
        : `; failures are listed in ${errorsPath}`;
  const lead = summary.aborted
    ? "stopped early: "
    : summary.budgetReached
      ? `${budgetLead(summary.budgetReached)}: `
      : summary.stopped
        ? "interrupted: "
        : "";
  // A run stopped before its first caption has written no OUT to point at.
  const written = !summary.aborted || summary.captioned + summary.alreadyDone > 0;
  const where = written ? ` → ${output}` : `; nothing was written to ${output}`;
  return `${lead}${parts.join(", ")} in ${formatDuration(seconds)}${rate}${where}${failures}${empty}`;
}

/** What a run says of an endpoint that ran out of context: how far it came down, and what it cost. */
function contextLine(label: string, overflow: ContextOverflows): string {
  const { from, to, times, resent } = overflow;
  const cuts = times === 1 ? "once" : `${times} times`;
  const again = `${resent} ${resent === 1 ? "request" : "requests"} sent again`;
  return times === 0
    ? `${label} ran out of context (${again})`
    : `concurrency at ${label} came down from ${from} to ${to} (it ran out of context ${cuts}; ${again})`;
}

/**
 * "tokens 52000 in, 1800 out (400 reasoning), 520 and 18 an image, cost 0.0081": what the
 * servers counted for this run's answers, the mean of an image answered by a request, and the
 * cost at the prices given.
 */
function tokensPart(summary: RunSummary): string | null {
  const { tokens } = summary;
  if (tokens.answers === 0) return null;
  const reasoning = tokens.reasoningTokens > 0 ? ` (${tokens.reasoningTokens} reasoning)` : "";
  const images = answeredImages(summary);
  const mean =
    images === 0
      ? ""
      : `, ${perImage(tokens.promptTokens, images)} and ${perImage(tokens.completionTokens, images)} an image`;
  const cost = tokens.cost === null ? "" : `, cost ${formatCost(tokens.cost)}`;
  return `tokens ${tokens.promptTokens} in, ${tokens.completionTokens} out${reasoning}${mean}${cost}`;
}

/** Images captioned by a request of this run (copies of identical files needed none). */
function answeredImages(summary: RunSummary): number {
  return summary.captioned - summary.copies;
}

function perImage(total: number, images: number): number {
  return Math.round((total / images) * 10) / 10;
}

/** The run's tokens for the JSON log: totals, and the mean of an image answered by a request. */
export function tokensJson(summary: RunSummary): Record<string, number | null> {
  const { tokens } = summary;
  const images = answeredImages(summary);
  return {
    answers: tokens.answers,
    prompt: tokens.promptTokens,
    completion: tokens.completionTokens,
    reasoning: tokens.reasoningTokens,
    mean_prompt: images === 0 ? null : perImage(tokens.promptTokens, images),
    mean_completion: images === 0 ? null : perImage(tokens.completionTokens, images),
  };
}

/** "budget of 5000 tokens reached (5120 spent)", "budget of 2.5 reached (2.47 spent)". */
function budgetLead(reached: BudgetReached): string {
  return reached.kind === "tokens"
    ? `budget of ${reached.limit} tokens reached (${reached.spent} spent)`
    : `budget of ${reached.limit} reached (${formatCost(reached.spent)} spent)`;
}
