import { availableParallelism } from "node:os";
import { RunAbortedError } from "../errors.js";
import { DuplicateTracker } from "../prepare/dedupe.js";
import { withSharpForRuns } from "../prepare/prepare.js";
import { PrepareStage } from "../prepare/stage.js";
import { captionProtocol } from "../prompts/protocol.js";
import { variesByFile } from "../prompts/template.js";
import { createClient } from "../send/client.js";
import { contextAdvice } from "../send/context-overflow.js";
import { Dispatcher } from "../send/dispatch.js";
import { Endpoint, RETRY_DOWN_MS } from "../send/endpoint.js";
import { AdaptiveLimiter, type ConcurrencyCause, type Slot } from "../send/limiter.js";
import {
  chooseModel,
  MODEL_LIST_TIMEOUT_MS,
  modelMissing,
  olderIdsOf,
  servedModels,
} from "../send/models.js";
import { createSender, previewSender } from "../send/variants.js";
import {
  type ResolvedRunOptions,
  type RunOptions,
  resolveRunOptions,
} from "../settings/run-options.js";
import { openOutputs } from "../sinks/index.js";
import { urlCredentials } from "../util/redact.js";
import { RunControl } from "./control.js";
import type { RunEvent, RunSummary } from "./events.js";
import { runFlow } from "./flow.js";
import { Intake } from "./intake.js";
import { findWork } from "./source.js";
import { RunState } from "./state.js";

/** Long enough for a server on the far side of the world, short enough not to hold a run up. */

export type { RunOptions } from "../settings/run-options.js";
export { RunControl } from "./control.js";
export type { RunEvent, RunSummary } from "./events.js";

/**
 * Captions every image in the inputs that OUT does not hold yet. Per-image failures become
 * errors-file rows; only what makes every further request pointless ends the run early.
 *
 * Data flows one way: source (discovery less what the sinks hold) → intake (read, hash, dedupe)
 * → prepare (decoder pool, bounded queue) → send (limiter, retries) → sinks, with the run state
 * counting and reporting every result.
 */
export async function captionImages(
  input: RunOptions,
  hooks: { onEvent?: (event: RunEvent) => void; control?: RunControl } = {},
): Promise<RunSummary> {
  const options = await resolveRunOptions(input);
  const dryRun = options.dryRun;
  const sink = openOutputs({
    output: options.output,
    format: options.format,
    errorsPath: options.errorsPath,
    overwrite: options.overwrite ?? false,
    csvFormulaGuard: options.csvFormulaGuard,
    recordOnly: options.recordOnly,
    recordRoot: options.recordRoot,
    dryRun,
    sidecar: options.sidecar,
    hfMetadata: options.hfMetadata,
    xmp: options.xmp,
    inputs: options.inputs,
    cwd: options.cwd,
    onWarning: (message) => hooks.onEvent?.({ type: "warning", message }),
    nameSetting: options.nameSetting,
    properties: options.answer?.properties,
    promptHash: options.promptHash,
  });
  const control = hooks.control ?? new RunControl();
  const state = new RunState({
    sink,
    control,
    onEvent: hooks.onEvent,
    secrets: options.endpoints.flatMap((endpoint) => [
      endpoint.apiKey,
      ...urlCredentials(endpoint.baseUrl),
    ]),
    preview: dryRun,
  });
  for (const notice of options.notices) state.emit({ type: "warning", message: notice });
  // Every endpoint is in the count, those that answered nothing too.
  for (const endpoint of options.endpoints) state.summary.byEndpoint[endpoint.label] = 0;
  let neverTaken = 0;
  try {
    const { tasks, finished } = await findWork(
      options.inputs,
      options.cwd,
      {
        strict: options.strict,
        followSymlinks: options.followSymlinks,
        nameSetting: options.nameSetting,
      },
      sink,
      state,
    );
    // Decoding is CPU-bound: one per core, plus one so a core never waits while another image's
    // file is read or its result encoded; more would only hold more pixels in memory.
    const senders = options.endpoints.reduce(
      (sum, endpoint) =>
        sum + (endpoint.concurrency === "auto" ? options.maxConcurrency : endpoint.concurrency),
      0,
    );
    const decoders = Math.max(1, Math.min(senders, availableParallelism() + 1));
    const prepare = new PrepareStage(options.prepare, decoders, state);
    const intake = new Intake(
      new DuplicateTracker(finished.hashes, (sha256) => sink.stored(sha256)),
      prepare.produce,
      state,
      !variesByFile(options.template),
    );
    const shape = { producers: decoders, senders };
    neverTaken = await withSharpForRuns(async () =>
      dryRun
        ? runFlow(tasks, shape, { intake, prepare, send: previewSender(state) }, state)
        : runFlow(
            tasks,
            shape,
            { intake, prepare, send: await realSender(options, state, prepare, tasks.length > 0) },
            state,
          ),
    );
  } finally {
    await sink.close();
  }
  const summary = state.finish(neverTaken);
  // A run that could not go on rejects, so a program cannot take it for one that finished; the
  // error carries what was done before it stopped.
  if (summary.aborted) {
    summary.aborted.summary = summary;
    throw summary.aborted;
  }
  return summary;
}

/**
 * The senders of a real run, after one short look at what each server lists: the id it serves of
 * the family asked for, and a wrong model id a usage error before the first image rather than a
 * failure for every image. No list is no verdict.
 */
async function realSender(
  options: ResolvedRunOptions,
  state: RunState,
  prepare: PrepareStage,
  anythingToSend: boolean,
) {
  const several = options.endpoints.length > 1;
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
        });
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
  const advised = new Set<Endpoint>();
  return createSender(
    {
      endpoints: new Dispatcher<Slot, Endpoint>(endpoints),
      decorate: (caption) => `${options.prefix ?? ""}${caption}${options.suffix ?? ""}`,
      retries: options.retries,
      nameSetting: options.nameSetting,
      promptHash: options.promptHash,
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
      onOverflowRetry: (endpoint) =>
        state.resentForContext(endpoint.label, endpoint.limiter.allowed),
      onContextExceeded: (error, endpoint) => {
        // Said once an endpoint: every image that does not fit fails the same way.
        if (advised.has(endpoint)) return;
        advised.add(endpoint);
        warn(
          contextAdvice(
            error,
            {
              maxTokens: options.maxTokens,
              contextTokens: contextTokens.get(endpoint.label) ?? null,
              endpoint: endpoint.label,
            },
            options.nameSetting,
          ),
        );
      },
    },
    state,
    prepare,
  );
}
