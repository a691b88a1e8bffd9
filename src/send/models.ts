import { ApiError, ModelNotFoundError, ModelNotServedError, RunAbortedError } from "../errors.js";
import { closestName } from "../util/suggest.js";
import { familyNamed, isFamilyAlias, listedIdOf, MODEL_FAMILIES } from "./model-families.js";

/** How long a run's (or `check`'s) look at `/models` may take: a list comes fast or not at all. */
export const MODEL_LIST_TIMEOUT_MS = 5_000;

/** What a run asks a server for, and the line that says so when it is not what was asked. */
export interface ModelChoice {
  /** The id sent, and recorded in the rows. */
  model: string;
  warning: string | null;
}

/**
 * The id to ask a server for, from what its `/models` listed (null or empty: no list).
 *
 * An id it lists is asked as listed (in its letter case). A family (`instruct`, or an id some
 * revision of the provider's guide gave it) is asked for by the id the server lists of that
 * family, since the hosted ids have changed with every revision; with no list, an alias goes out
 * as its family's newest id. Anything else missing from a list of several would fail every image
 * one by one, so it is refused (a `UsageError` naming `setting`). A list of one only warns:
 * llama.cpp's server lists its one file or alias and answers whatever `model` is sent.
 */
export function chooseModel(
  requested: string,
  models: readonly ServedModel[] | null,
  baseUrl: string,
  setting = "model",
): ModelChoice {
  const family = familyNamed(requested);
  const alias = isFamilyAlias(requested);
  // The family's newest id: what an alias means where nothing listed says otherwise.
  const fallback = family && alias ? (family.ids[0] ?? requested) : requested;
  const ids = models?.map((model) => model.id) ?? [];
  if (ids.length === 0) return { model: fallback, warning: null };

  const listed = listedAs(requested, ids);
  if (listed !== null) {
    return listed === requested || listed === `${requested}:latest`
      ? { model: requested, warning: null }
      : {
          model: listed,
          warning: `${baseUrl} lists ${listed}, not ${requested}: asking it for ${listed}`,
        };
  }
  if (family) {
    const member = listedIdOf(family, ids);
    if (member !== null) {
      // An alias means whatever this server calls the family; an id replaced by another is said.
      const warning = alias
        ? null
        : member.toLowerCase() === family.alias
          ? `${baseUrl} lists ${member}, not ${requested}: asking it for ${member}`
          : `${baseUrl} serves the ${family.alias} model as ${member}, not ${requested}: asking it for ${member}`;
      return { model: member, warning };
    }
  }
  const asked =
    family && alias ? `the ${family.alias} model (${family.ids.join(", ")})` : requested;
  if (ids.length === 1) {
    // A family stands for whatever the server calls its one model: rows record what answered.
    // An id the user typed is sent as typed.
    const only = ids[0] ?? fallback;
    const model = family && alias ? only : requested;
    return {
      model,
      warning: `${baseUrl} lists only the model ${only}, not ${asked}; going on${model === only ? `, asking it for ${only}` : ""}, since servers that list one model (llama.cpp's) answer whatever is asked`,
    };
  }
  throw new ModelNotServedError([`${setting}: ${notServed(requested, ids, baseUrl, asked)}`]);
}

/**
 * The listed id `requested` names: exactly, as Ollama's `name:latest` (it answers to `name`
 * alone), or in another letter case; null when none.
 */
function listedAs(requested: string, ids: readonly string[]): string | null {
  const tagged = requested.includes(":") ? [requested] : [requested, `${requested}:latest`];
  for (const wanted of tagged) if (ids.includes(wanted)) return wanted;
  for (const wanted of tagged) {
    const found = ids.find((id) => id.toLowerCase() === wanted.trim().toLowerCase());
    if (found !== undefined) return found;
  }
  return null;
}

/** One model a server lists. */
export interface ServedModel {
  id: string;
  ownedBy: string | null;
  created: number | null;
  /**
   * The context it serves with, where the list says: vLLM's `max_model_len` (the most a request
   * may hold), llama.cpp's `meta.n_ctx` (the KV cache its parallel slots share).
   */
  contextTokens: number | null;
}

/** The `data` of an OpenAI-style model list, or null when `body` is not one. */
export function servedModels(body: unknown): ServedModel[] | null {
  const data = (body as { data?: unknown } | null)?.data;
  if (!Array.isArray(data)) return null;
  const models: ServedModel[] = [];
  for (const entry of data) {
    const record = entry as {
      id?: unknown;
      owned_by?: unknown;
      created?: unknown;
      max_model_len?: unknown;
      meta?: { n_ctx?: unknown } | null;
    };
    if (typeof record?.id !== "string") continue;
    const context = record.max_model_len ?? record.meta?.n_ctx;
    models.push({
      id: record.id,
      ownedBy: typeof record.owned_by === "string" ? record.owned_by : null,
      created: typeof record.created === "number" ? record.created : null,
      contextTokens:
        typeof context === "number" && Number.isInteger(context) && context > 0 ? context : null,
    });
  }
  return models;
}

/** "did you mean": the listed ids closest to the one asked for, best first. */
export function suggestModels(requested: string, ids: readonly string[]): string[] {
  const near = closestName(requested, ids);
  const containing = ids.filter(
    (id) =>
      id !== near &&
      (id.toLowerCase().includes(requested.toLowerCase()) ||
        requested.toLowerCase().includes(id.toLowerCase())),
  );
  return [...(near ? [near] : []), ...containing].slice(0, 3);
}

function notServed(
  requested: string,
  ids: readonly string[],
  baseUrl: string,
  asked = requested,
): string {
  // A misspelt short name (`instrcut`) is answered with the short name, which this list serves.
  const alias = familyNamed(requested)
    ? null
    : closestName(
        requested,
        MODEL_FAMILIES.filter((family) => listedIdOf(family, ids) !== null).map(
          (family) => family.alias,
        ),
      );
  const near = [...(alias ? [alias] : []), ...suggestModels(requested, ids)].slice(0, 3);
  const hint = near.length > 0 ? ` (did you mean ${near.join(" or ")}?)` : "";
  return `${baseUrl} does not serve ${asked}${hint}; it serves ${ids.join(", ")}`;
}

/** Whether a failed request says the model does not exist, as vLLM's 404 and OpenAI's errors do. */
export function saysModelMissing(error: unknown): boolean {
  if (error instanceof ModelNotFoundError) return true;
  if (!(error instanceof ApiError) || (error.status !== 404 && error.status !== 400)) return false;
  return (
    /\bmodel\b/i.test(error.message) &&
    /does not exist|not found|not available|unknown model|no such model|invalid model|not a valid model/i.test(
      error.message,
    )
  );
}

/** The run's end when its first answer says the model does not exist: usage, exit 2. */
export function modelMissing(
  error: ApiError,
  requested: string,
  ids: readonly string[] | null,
  baseUrl: string,
): RunAbortedError {
  const served =
    ids && ids.length > 0 ? `; ${notServed(requested, ids, baseUrl).replace(/^.*?; /, "")}` : "";
  const near = ids ? suggestModels(requested, ids) : [];
  const hint = near.length > 0 ? ` (did you mean ${near.join(" or ")}?)` : "";
  return new RunAbortedError(
    "model_not_found",
    `${baseUrl} says the model ${requested} does not exist (${error.message})${hint}${served}; nothing more was sent`,
    { cause: error },
  );
}

/**
 * The ids a server may know `model` by when it lists nothing: the others of its family, newest
 * first after it. Empty for a model of no known family.
 */
export function olderIdsOf(model: string): string[] {
  const family = familyNamed(model);
  if (!family) return [];
  const at = family.ids.findIndex((id) => id.toLowerCase() === model.toLowerCase());
  return family.ids.filter((_, index) => index !== at);
}
