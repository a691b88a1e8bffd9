import { isClipPath } from "../discover/extensions.js";
import { RunAbortedError } from "../errors.js";
import type { PrepareStage } from "../prepare/stage.js";
import { captionProtocol } from "../prompts/protocol.js";
import { createClient } from "../send/client.js";
import { contextAdvice } from "../send/context-overflow.js";
import { Dispatcher } from "../send/dispatch.js";
import { Endpoint, RETRY_DOWN_MS } from "../send/endpoint.js";
import { AdaptiveLimiter } from "../send/limiter.js";
import type { ConcurrencyCause } from "../send/limiter-options.js";
import {
  chooseModel,
  MODEL_LIST_TIMEOUT_MS,
  modelMissing,
  olderIdsOf,
  servedModels,
} from "../send/models.js";
import { severalPrompts } from "../send/several-prompts.js";
import type { Slot } from "../send/slot.js";
import { createSender } from "../send/variants.js";
import type { VideoRoutes } from "../send/video-routes.js";
import { DEFAULT_CLIP_PROMPT, DEFAULT_PROMPT } from "../settings/defaults.js";
import type { ResolvedRunOptions } from "../settings/resolve-run-options.js";
import type { StoredCaption } from "../sinks/out-file/stored-caption.js";
import { promptProtocols } from "./prompt-protocols.js";
import type { RunState } from "./state.js";

/**
 * The senders of a real run, after one short look at what each server lists: the id it serves of
 * the family asked for, and a wrong model id a usage error before the first image rather than a
 * failure for every image. No list is no verdict.
 */
export async function realSender(
  options: ResolvedRunOptions,
  state: RunState,
  stages: { prepare: PrepareStage; video: VideoRoutes },
  anythingToSend: boolean,
  recorded: (imagePath: string) => Promise<StoredCaption | undefined>,
) {
  const several = options.endpoints.length > 1;
  const decorate = (caption: string) => `${options.prefix ?? ""}${caption}${options.suffix ?? ""}`;
  const pricesOf = new Map(options.endpoints.map((spec) => [spec.label, spec]));
  const warn = (message: string) => state.emit({ type: "warning", message });
  /** What each endpoint's model list says of its context, by label. */
  const contextTokens = new Map<string, number | null>();
  const endpoints = await Promise.all(
    options.endpoints.map(async (spec) => {
      const client = createClient({
        baseUrl: spec.baseUrl,
        apiKey: spec.apiKey,
        timeoutMs: options.timeoutMs,
        maxReplyBytes: options.maxReplyBytes,
        // A refused key names where this endpoint's key came from.
        nameSetting: (option) => options.nameSetting(option === "apiKey" ? spec.keyOption : option),
        ...(options.fetch ? { fetch: options.fetch } : {}),
      });
      const listed = anythingToSend
        ? servedModels((await client.models(MODEL_LIST_TIMEOUT_MS)).body)
        : null;
      const ids = listed?.map((model) => model.id) ?? null;
      const { model, warning } = chooseModel(
        spec.model,
        listed,
        spec.baseUrl,
        options.nameSetting("model"),
      );
      if (warning) warn(warning);
      // For the advice when an image does not fit: the one model a llama.cpp server lists is
      // the one it serves, whatever the run asked for.
      const served = listed?.find((each) => each.id === model) ?? listed?.[0];
      contextTokens.set(
        spec.label,
        listed?.length === 1 || served?.id === model ? (served?.contextTokens ?? null) : null,
      );
      const budget = options.budgetFor?.(spec);
      const protocolFor = (id: string) =>
        captionProtocol({
          model: id,
          template: options.template,
          maxTokens: options.maxTokens,
          temperature: options.temperature,
          answer: options.answer,
          tags: options.tags,
          sidecarExt: options.sidecar?.ext ?? ".txt",
          nameSetting: options.nameSetting,
          onWarning: warn,
          clipPrompt: options.prompt === DEFAULT_PROMPT ? DEFAULT_CLIP_PROMPT : undefined,
        });
      const promptsFor = options.promptSet
        ? promptProtocols(options, options.promptSet, { listed, baseUrl: spec.baseUrl }, warn)
        : undefined;
      return new Endpoint({
        label: spec.label,
        baseUrl: spec.baseUrl,
        model,
        client,
        listed: ids,
        limiter: new AdaptiveLimiter({
          concurrency: spec.concurrency,
          maxConcurrency: options.maxConcurrency,
          rpm: spec.rpm,
          sharedPace: budget !== undefined,
          onOverflow: (from: number, to: number) => state.overflowed(spec.label, from, to),
          // The live line shows one figure: a single endpoint's.
          ...(several
            ? {}
            : {
                onChange: (allowed: number, cause: ConcurrencyCause) =>
                  state.emit({ type: "concurrency", allowed, cause }),
              }),
        }),
        protocol: protocolFor(model),
        ...(promptsFor ? { promptsFor } : {}),
        // With no list to choose from, the family's older ids are what a server may call it.
        ...(ids === null ? { olderModels: { ids: olderIdsOf(model), protocolFor } } : {}),
        several,
        budget,
        onChange: (endpoint, change, reason) => {
          if (change === "up")
            return warn(`${endpoint.label} answers again; it takes images again`);
          if (change === "model") {
            return warn(
              `${endpoint.baseUrl} lists no models and says ${reason} does not exist: asking it for ${endpoint.model}, of the same family`,
            );
          }
          // Alone, or the last one up, it hands nothing on: the run stops and says why.
          const others = endpoint.peers.some((peer) => peer !== endpoint && !peer.down);
          const handOver = others ? "; its images go to the other endpoints" : "";
          warn(
            change === "down"
              ? `${endpoint.label} stopped answering (${reason})${others ? `${handOver}, and it is tried again in ${RETRY_DOWN_MS / 1000} s` : ""}`
              : `${endpoint.label} is left out for the rest of the run (${reason})${handOver}`,
          );
        },
      });
    }),
  );
  for (const endpoint of endpoints) endpoint.peers = endpoints;
  const advised = new Set<string>();
  return createSender(
    {
      endpoints: new Dispatcher<Slot, Endpoint>(endpoints),
      decorate,
      retries: options.retries,
      nameSetting: options.nameSetting,
      promptHash: options.promptHash,
      video: stages.video,
      onWarning: warn,
      rejectFlagged: options.rejectFlagged,
      modelMissing: (error, endpoint) => {
        const ended = modelMissing(error, endpoint.model, endpoint.listed, endpoint.baseUrl);
        if (endpoint.refusedModels.length === 0) return ended;
        // Each id of the family it tried was refused, not only the last.
        return new RunAbortedError(
          ended.code,
          `${ended.message.replace(/; nothing more was sent$/, "")}; it refused ${endpoint.refusedModels.join(" and ")} before it; nothing more was sent`,
          { cause: error },
        );
      },
      onUsage: (usage, endpoint) => state.spent(usage, pricesOf.get(endpoint.label) ?? {}),
      prompts: options.promptSet
        ? severalPrompts(
            {
              set: options.promptSet,
              recorded,
              decorate,
              rejectFlagged: options.rejectFlagged,
            },
            state,
          )
        : undefined,
      onOverflowRetry: (endpoint) =>
        state.resentForContext(endpoint.label, endpoint.limiter.allowed),
      onContextExceeded: (error, endpoint, imagePath) => {
        // Said once an endpoint, for images and for clips: each that does not fit fares the same.
        const clip = isClipPath(imagePath);
        const key = `${endpoint.label} ${clip}`;
        if (advised.has(key)) return;
        advised.add(key);
        warn(
          contextAdvice(
            error,
            {
              maxTokens: options.maxTokens,
              contextTokens: contextTokens.get(endpoint.label) ?? null,
              endpoint: endpoint.label,
              clip,
            },
            options.nameSetting,
          ),
        );
      },
    },
    state,
    stages.prepare,
  );
}
