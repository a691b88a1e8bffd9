import { cellOf } from "../answer/json-answer.js";
import { hashesOf, type NamedPrompt, type PromptSet } from "../prompts/prompt-set.js";
import type { RunState } from "../run/state.js";
import type { StoredCaption } from "../sinks/out-file/stored-caption.js";
import type { CaptionRecord } from "../types.js";
import { type Answer, clipRecordOf, flaggedError, type SeveralPrompts } from "./variants.js";

export interface SeveralPromptsOptions {
  set: PromptSet;
  /** The row OUT held for an image when the run began: the answers it has are not asked again. */
  recorded: (imagePath: string) => Promise<StoredCaption | undefined>;
  /** Turns the caption prompt's answer into the row's caption (a trigger word before it, say). */
  decorate: (caption: string) => string;
  rejectFlagged: boolean;
}

/**
 * Each image's prompts asked in turn, each after those whose answers it uses, and one row from
 * them all: `captions` by name, `caption` the caption prompt's. The image was prepared once, and
 * every prompt sends it. A row OUT held for the image already (a prompt added since) keeps its
 * answers: only the prompts it lacks are asked, and their answers complete it. A prompt that fails
 * fails the image (its answers so far are not kept: a rerun asks again what the row lacks).
 */
export function severalPrompts(options: SeveralPromptsOptions, state: RunState): SeveralPrompts {
  return async (work, ask) => {
    const { task, sha256 } = work;
    // A redo makes the whole row again: nothing of the old one is kept.
    const held = task.redo ? undefined : await options.recorded(task.path);
    const captions: Record<string, string> = { ...held?.captions };
    const answers: Record<string, Record<string, unknown>> = { ...held?.answers };
    let image = work.image;
    const asked: { prompt: NamedPrompt; answer: Answer; attempts: number }[] = [];
    let attempts = 0;
    for (const prompt of options.set.prompts) {
      if (captions[prompt.name] !== undefined) continue;
      const result = await ask(
        work,
        image,
        (endpoint) => endpoint.protocolOf(prompt.name),
        answerValues(prompt, captions, answers),
        asked.length > 0,
      );
      if (result.kind === "unfinished") {
        if (result.abort) state.abort(result.abort);
        return state.unfinished(task);
      }
      attempts += result.attempts;
      if (result.kind === "failed") return fail(prompt, result.error, attempts);
      if (options.rejectFlagged && result.answer.flags.length > 0) {
        return fail(prompt, flaggedError(result.answer), attempts);
      }
      const { extracted } = result.answer.outcome;
      image = result.image;
      captions[prompt.name] = extracted.caption;
      if (extracted.data) answers[prompt.name] = extracted.data;
      asked.push({ prompt, answer: result.answer, attempts: result.attempts });
    }
    const main = asked.find((each) => each.prompt.name === options.set.main);
    const answered = main ?? asked.at(-1);
    // The row's tokens, attempts and latency are those of this run's requests: what making or
    // completing it cost (what an estimate forecasts, what a budget counts).
    const usage = (pick: (answer: Answer) => number | null) => {
      const counts = asked.map((each) => pick(each.answer));
      return counts.every((count) => count === null)
        ? null
        : counts.reduce<number>((sum, count) => sum + (count ?? 0), 0);
    };
    // A row of answers kept (a prompt added since) keeps their flags; a row of one prompt
    // replaced by several keeps nothing of the old one.
    const kept = Object.keys(held?.captions ?? {}).length > 0;
    const flags = [
      ...new Set([
        ...(kept ? (held?.flags ?? []) : []),
        ...asked.flatMap((each) => each.answer.flags),
      ]),
    ];
    const tags = main ? main.answer.outcome.extracted.tags : held?.tags;
    const record: CaptionRecord = {
      path: task.path,
      caption: options.decorate(captions[options.set.main] ?? ""),
      model:
        main?.answer.outcome.endpoint.model ??
        held?.model ??
        answered?.answer.outcome.endpoint.model ??
        "",
      endpoint: answered?.answer.outcome.endpoint.label ?? "",
      width: image.width,
      height: image.height,
      prompt_tokens: usage((answer) => answer.outcome.extracted.usage.promptTokens),
      completion_tokens: usage((answer) => answer.outcome.extracted.usage.completionTokens),
      reasoning_tokens: usage((answer) => answer.outcome.extracted.usage.reasoningTokens),
      attempts,
      latency_ms: asked.reduce((sum, each) => sum + each.answer.outcome.reply.latencyMs, 0),
      truncated: flags.includes("truncated"),
      flags,
      created_at: new Date().toISOString(),
      sha256,
      prompt_hash: hashOf(options.set, captions, asked, held?.prompt_hash ?? null),
      captions,
      ...(Object.keys(answers).length > 0 ? { answers } : {}),
      ...(tags ? { tags } : {}),
      ...clipRecordOf(image),
    };
    if (!(await state.captioned(record, null))) return state.unfinished(task);
    return { kind: "captioned", stored: record };

    async function fail(prompt: NamedPrompt, error: unknown, tried: number) {
      const failure = state.failureOf(task, error, tried);
      failure.message = `prompt ${prompt.name}: ${failure.message}`;
      await state.failed(failure);
      return { kind: "failed" as const, failure };
    }
  };
}

/**
 * Which prompts made the row's answers, each by its own hash (`short=…,long=…`): an answer kept
 * from the row before keeps the hash of the prompt that made it, so `--redo prompt-changed`
 * still finds it when that prompt has changed since.
 */
function hashOf(
  set: PromptSet,
  captions: Readonly<Record<string, string>>,
  asked: readonly { prompt: NamedPrompt }[],
  heldHash: string | null,
): string {
  const before = hashesOf(heldHash ?? "");
  const now = new Set(asked.map((each) => each.prompt.name));
  return set.prompts
    .filter((prompt) => captions[prompt.name] !== undefined)
    .sort((a, b) => set.names.indexOf(a.name) - set.names.indexOf(b.name))
    .map((prompt) => {
      const hash = now.has(prompt.name) ? prompt.hash : (before.get(prompt.name) ?? "");
      return `${prompt.name}=${hash}`;
    })
    .join(",");
}

/** The answers a prompt uses, by the keys its template takes them under. */
function answerValues(
  prompt: NamedPrompt,
  captions: Readonly<Record<string, string>>,
  answers: Readonly<Record<string, Record<string, unknown>>>,
): Record<string, string> {
  const values: Record<string, string> = {};
  for (const key of prompt.template.answers) {
    const dot = key.indexOf(".");
    values[key] =
      dot === -1 ? (captions[key] ?? "") : cellOf(answers[key.slice(0, dot)]?.[key.slice(dot + 1)]);
  }
  return values;
}
