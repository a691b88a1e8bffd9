/**
 * Captions small vision models get wrong in ways that look like answers: a phrase looping until
 * the token budget runs out, a refusal, nothing at all. Pure functions over the reply's text, so
 * the rules can be read and tested as a table.
 */

/** What a kept caption may be marked with, in the `flags` column. */
export type CaptionFlag = "repetition" | "refusal" | "truncated";

/** Flags that make a caption worth one more try (with a penalty on repeating itself). */
export const RETRY_FLAGS: ReadonlySet<CaptionFlag> = new Set(["repetition", "refusal"]);

/** A loop this long or longer, in words, counts even when the repeated unit is one word. */
const MIN_LOOP_WORDS = 8;
/** The same unit this many times in a row is a loop. */
const MIN_REPEATS = 3;
/** A cut-off reply whose word 4-grams are mostly repeats kept going round in circles. */
const TRUNCATED_UNIQUE_RATIO = 0.7;

/** The flags a caption earns; `truncated` when the server said it stopped at max_tokens. */
export function captionFlags(text: string, truncated: boolean): CaptionFlag[] {
  const flags: CaptionFlag[] = [];
  if (isRepetitive(text, truncated)) flags.push("repetition");
  if (isRefusal(text)) flags.push("refusal");
  if (truncated) flags.push("truncated");
  return flags;
}

export function isRepetitive(text: string, truncated = false): boolean {
  const words = wordsOf(text);
  if (hasWordLoop(words)) return true;
  if (hasSegmentLoop(segmentsOf(text))) return true;
  return truncated && words.length >= 40 && uniqueRatio(words, 4) < TRUNCATED_UNIQUE_RATIO;
}

/**
 * A refusal is the answer itself, so it is looked for at the start only: a caption that mentions
 * a sign saying "sorry, we're closed" is not one.
 */
export function isRefusal(text: string): boolean {
  // A reply that goes on to describe the image is a caption with a caveat, not a refusal.
  if (wordsOf(text).length > REFUSAL_MAX_WORDS) return false;
  const opening = text
    .trim()
    .slice(0, 200)
    .toLowerCase()
    .replace(/[\u2018\u2019]/g, "'");
  return REFUSALS.some((pattern) => pattern.test(opening));
}

/** Refusals are short; a longer reply that opens with an apology goes on to caption. */
const REFUSAL_MAX_WORDS = 25;

const REFUSALS: readonly RegExp[] = [
  /^(i'm|i am|i’m) sorry\b/,
  /^sorry,? (but )?i\b/,
  /^(unfortunately,? )?i (can't|cannot|can not|won't|will not|am unable to|am not able to|'m unable to|'m not able to) (help|assist|provide|describe|identify|comply|fulfil|fulfill|process|caption|analy[sz]e|do that|answer)/,
  /^(i'm|i am) (unable|not able) to\b/,
  /^as an ai\b/,
  /^i apologi[sz]e\b/,
  /^i must (decline|refuse)\b/,
  /^(i do not|i don't|i'm not|i am not) (feel )?comfortable\b/,
  /^(this|the) (image|picture|photo) (cannot|can't|can not) be (described|captioned)\b/,
];

function wordsOf(text: string): string[] {
  return text
    .toLowerCase()
    .split(/[^\p{L}\p{N}']+/u)
    .filter((word) => word !== "");
}

/** Sentences, list items, lines and comma-separated tags: the units models loop over. */
function segmentsOf(text: string): string[] {
  return text
    .toLowerCase()
    .split(/[.!?;,\n]+|\s[-*•]\s/)
    .map((segment) =>
      segment
        .replace(/^[\s\-*•\d.)]+/, "")
        .replace(/\s+/g, " ")
        .trim(),
    )
    .filter((segment) => segment !== "");
}

/** The same run of n words, MIN_REPEATS times or more back to back, covering MIN_LOOP_WORDS. */
function hasWordLoop(words: readonly string[]): boolean {
  const maxUnit = Math.floor(words.length / MIN_REPEATS);
  for (let unit = 1; unit <= maxUnit; unit += 1) {
    const repeatsNeeded = Math.max(MIN_REPEATS, Math.ceil(MIN_LOOP_WORDS / unit));
    let run = 0;
    for (let i = unit; i < words.length; i += 1) {
      run = words[i] === words[i - unit] ? run + 1 : 0;
      // `run` words each equal the word one unit before: (run + unit) / unit copies in a row.
      if ((run + unit) / unit >= repeatsNeeded) return true;
    }
  }
  return false;
}

/** The same sentence, item or tag (or group of them) MIN_REPEATS times in a row. */
function hasSegmentLoop(segments: readonly string[]): boolean {
  const maxUnit = Math.min(10, Math.floor(segments.length / MIN_REPEATS));
  for (let unit = 1; unit <= maxUnit; unit += 1) {
    let run = 0;
    for (let i = unit; i < segments.length; i += 1) {
      run = segments[i] === segments[i - unit] ? run + 1 : 0;
      if ((run + unit) / unit >= MIN_REPEATS) return true;
    }
  }
  return false;
}

function uniqueRatio(words: readonly string[], n: number): number {
  const grams = new Set<string>();
  const total = words.length - n + 1;
  for (let i = 0; i < total; i += 1) grams.add(words.slice(i, i + n).join(" "));
  return grams.size / total;
}
