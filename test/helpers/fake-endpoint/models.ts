/**
 * GET /models and the model a chat request names: what the fake lists (its one model, the
 * test's, or a guide revision's ids) and how it answers a server's usual ways of listing badly.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { REVISION_MODELS } from "../guide-revisions.js";
import { errorEnvelope, sendJson } from "./http.js";
import type { FakeEndpointOptions, ServedModel } from "./options.js";

export const FAKE_MODEL_ID = "MiniCPM-V-4.6-Instruct";

export const MODELS_PATHS = new Set(["/v1/models", "/models"]);

export function isModelListing(method: string, path: string): boolean {
  return method === "GET" && MODELS_PATHS.has(path);
}

/** What GET /models lists: `models`, else the revision's ids, else FAKE_MODEL_ID alone. */
export function servedModelsOf(options: FakeEndpointOptions): ServedModel[] {
  const revision = options.revision;
  return (
    options.models ??
    (revision === undefined
      ? [{ id: FAKE_MODEL_ID }]
      : REVISION_MODELS[revision].ids.map((id) => ({ id, owned_by: "vllm" })))
  );
}

/** Whether a chat request for `model` gets 404 model_not_found, as vLLM answers. */
export function rejectsModel(
  options: FakeEndpointOptions,
  served: readonly ServedModel[],
  model: string | null,
): boolean {
  return (
    (options.rejectUnknownModel === true || options.revision !== undefined) &&
    !served.some((entry) => entry.id === model)
  );
}

/** Answers GET /models as the options ask: the list, 401, 404, an HTML page, or never. */
export function answerModels(
  req: IncomingMessage,
  res: ServerResponse,
  options: FakeEndpointOptions,
  served: readonly ServedModel[],
  path: string,
): void {
  if (options.apiKey !== undefined && req.headers.authorization !== `Bearer ${options.apiKey}`) {
    sendJson(res, 401, errorEnvelope("Incorrect API key provided", "invalid_request_error"));
  } else if (options.modelsReply === "hang") {
    // Held open until the client gives up or the fake closes.
    return;
  } else if (options.modelsReply === "html") {
    res.writeHead(200, { "content-type": "text/html" });
    res.end("<!doctype html><title>Web UI</title><p>Sign in</p>");
  } else if (options.noModels) {
    sendJson(
      res,
      404,
      errorEnvelope(`Unknown request URL: ${req.method ?? "GET"} ${path}`, "invalid_request_error"),
    );
  } else {
    sendJson(res, 200, {
      object: "list",
      data: served.map((model) => ({ object: "model", ...model })),
    });
  }
}
