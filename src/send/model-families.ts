/**
 * The MiniCPM models by family. The provider has renamed its hosted ids with each revision of its
 * API guide, and self-hosted servers call the same weights by their path, tag or file name, so a
 * short name stands for a family and a run asks each server for the id it lists of that family.
 */
export interface ModelFamily {
  /** What `-m` takes for it. */
  alias: string;
  /** The ids the provider's guide has given it, newest revision first. */
  ids: readonly string[];
  /**
   * Whether a served name is of this family though not one of `ids`: vLLM's
   * `openbmb/MiniCPM-V-4.6`, Ollama's `openbmb/minicpm-v4.6:latest`, a GGUF file.
   */
  looksLike: (id: string) => boolean;
}

// The separators and version spellings servers use: `MiniCPM-V-4.6`, `minicpm-v4.6`, `MiniCPM-o-4_5`.
const V46 = /minicpm[-_ ]?v[-_ ]?4[._]?6(?![0-9])/i;
const V45 = /minicpm[-_ ]?v[-_ ]?4[._]?5(?![0-9])/i;
const O45 = /minicpm[-_ ]?o[-_ ]?4[._]?5(?![0-9])/i;
const THINK = /think/i;

export const MODEL_FAMILIES: readonly ModelFamily[] = [
  {
    alias: "instruct",
    ids: ["MiniCPM-V-4.6-1B", "MiniCPM-V-4.6-Instruct", "MiniCPM-V-4.6-1.3B-Instruct"],
    looksLike: (id) => V46.test(id) && !THINK.test(id),
  },
  {
    alias: "thinking",
    ids: ["MiniCPM-V-4.6-Thinking", "MiniCPM-V-4.6-1.3B-think-0506_tau2_rl"],
    looksLike: (id) => V46.test(id) && THINK.test(id),
  },
  {
    alias: "omni",
    ids: ["MiniCPM-O-4.5-9B", "MiniCPM-o-4.5"],
    looksLike: (id) => O45.test(id),
  },
  {
    alias: "v4.5",
    ids: ["MiniCPM-V-4.5-9B"],
    looksLike: (id) => V45.test(id),
  },
];

/** The family a run asks for with no `-m`. */
export const DEFAULT_FAMILY = "instruct";

const fold = (text: string) => text.trim().toLowerCase();

/**
 * The family a requested model names: its alias or one of its ids, in any letter case. Only
 * those: a near miss is a typo to refuse with suggestions, not a family to guess.
 */
export function familyNamed(model: string): ModelFamily | null {
  const wanted = fold(model);
  return (
    MODEL_FAMILIES.find(
      (family) => family.alias === wanted || family.ids.some((id) => fold(id) === wanted),
    ) ?? null
  );
}

/** Whether `model` is a family's short name rather than an id of it. */
export function isFamilyAlias(model: string): boolean {
  return familyNamed(model)?.alias === fold(model);
}

/**
 * The family a listed id belongs to: one whose ids hold it, else one it looks like. Known ids are
 * tried first, so `MiniCPM-V-4.6-Thinking` is never taken for a 4.6 instruct by its name.
 */
export function familyOfListed(id: string): ModelFamily | null {
  const listed = fold(id);
  return (
    MODEL_FAMILIES.find((family) => family.ids.some((known) => fold(known) === listed)) ??
    MODEL_FAMILIES.find((family) => family.looksLike(id)) ??
    null
  );
}

/**
 * The id of `family` a server listing `ids` is asked for, or null when it lists none: the alias
 * itself if listed (a server that calls its model `omni`), else the newest known id it lists,
 * else the first listed name that looks like the family.
 */
export function listedIdOf(family: ModelFamily, ids: readonly string[]): string | null {
  const find = (wanted: string) => ids.find((id) => fold(id) === fold(wanted));
  const alias = find(family.alias);
  if (alias !== undefined) return alias;
  for (const known of family.ids) {
    const found = find(known);
    if (found !== undefined) return found;
  }
  return ids.find((id) => familyOfListed(id) === family) ?? null;
}
