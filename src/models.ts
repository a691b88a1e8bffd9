import { ApiError, ModelNotFoundError, RunAbortedError, UsageError } from "./errors.js";
import { closestName } from "./suggest.js";

/** How long a run's (or `check`'s) look at `/models` may take: a list comes fast or not at all. */
export const MODEL_LIST_TIMEOUT_MS = 5_000;

/** Short names for the seed models; rows record the id they stand for. */
export const MODEL_ALIASES: Readonly<Record<string, string>> = {
  instruct: "MiniCPM-V-4.6-Instruct",
  thinking: "MiniCPM-V-4.6-Thinking",
  omni: "MiniCPM-o-4.5",
};

export function resolveModel(model: string): string {
  return MODEL_ALIASES[model.trim().toLowerCase()] ?? model;
}

/**
 * The id to ask a server for: the one given, or, when the server does not list it but lists a
 * short name that stands for it (a server that calls its model `omni`), that name.
 */
export function servedIdFor(model: string, listed: readonly string[] | null): string {
  if (!listed || listedAs(model, listed)) return model;
  const alias = Object.keys(MODEL_ALIASES).find(
    (name) => MODEL_ALIASES[name] === model && listed.includes(name),
  );
  return alias ?? model;
}

/** Ollama lists `name:latest` and answers to `name` alone: an untagged id matches its :latest. */
function listedAs(requested: string, ids: readonly string[]): boolean {
  return (
    ids.includes(requested) || (!requested.includes(":") && ids.includes(`${requested}:latest`))
  );
}

/** One model a server lists. */
export interface ServedModel {
  id: string;
  ownedBy: string | null;
  created: number | null;
}

/** The `data` of an OpenAI-style model list, or null when `body` is not one. */
export function servedModels(body: unknown): ServedModel[] | null {
  const data = (body as { data?: unknown } | null)?.data;
  if (!Array.isArray(data)) return null;
  const models: ServedModel[] = [];
  for (const entry of data) {
    const record = entry as { id?: unknown; owned_by?: unknown; created?: unknown };
    if (typeof record?.id !== "string") continue;
    models.push({
      id: record.id,
      ownedBy: typeof record.owned_by === "string" ? record.owned_by : null,
      created: typeof record.created === "number" ? record.created : null,
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

/**
 * What a run makes of the list before its first image. Several models and not the one asked for:
 * a wrong id, which would fail every image one by one, so the run is refused. A list of one only
 * warns: llama.cpp's server lists its one file or alias and answers whatever `model` is sent.
 */
export function checkModel(
  requested: string,
  models: readonly ServedModel[] | null,
  baseUrl: string,
): { warning: string } | null {
  if (models === null || models.length === 0) return null;
  const ids = models.map((model) => model.id);
  if (listedAs(requested, ids)) return null;
  if (ids.length === 1) {
    return {
      warning: `${baseUrl} lists only the model ${ids[0]}, not ${requested}; going on, since servers that list one model (llama.cpp's) answer whatever is asked`,
    };
  }
  throw new UsageError([`model: ${notServed(requested, ids, baseUrl)}`]);
}

function notServed(requested: string, ids: readonly string[], baseUrl: string): string {
  const near = suggestModels(requested, ids);
  const hint = near.length > 0 ? ` (did you mean ${near.join(" or ")}?)` : "";
  return `${baseUrl} does not serve ${requested}${hint}; it serves ${ids.join(", ")}`;
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
