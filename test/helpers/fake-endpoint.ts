/**
 * A fake OpenAI-compatible chat-completions server for integration tests and benchmarks.
 *
 * It lets tests script exact replies, inject random faults reproducibly, and inspect what the
 * client actually sent (decoded image, prompt, concurrency), without a GPU or network access.
 *
 * Run directly for manual use: `npx tsx test/helpers/fake-endpoint.ts --port 8080`.
 */
import { createHash } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse, STATUS_CODES } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { performance } from "node:perf_hooks";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import sharp from "sharp";
import {
  brokenJson,
  instanceOf,
  LOOP_REPLY,
  REFUSAL_REPLY,
  schemaInPrompt,
  wrappedInProse,
} from "./fake-answers.js";
import { type ContextModel, contextBudget, minicpmPromptTokens } from "./fake-context.js";
import {
  type GuideRevision,
  parseRevision,
  REVISION_MODELS,
  revisionReply,
} from "./guide-revisions.js";

export type FaultKind =
  | "429"
  | "500"
  | "503"
  | "reset"
  | "hang"
  | "malformed"
  | "html502"
  | "empty-choices";

export type Behavior =
  | {
      kind: "ok";
      content?: string | null;
      reasoning?: string;
      reasoningField?: "reasoning" | "reasoning_content";
      finishReason?: string | null;
      usage?: { prompt_tokens: number; completion_tokens: number } | null;
      latencyMs?: number;
    }
  | {
      kind: "status";
      status: number;
      /** Bytes (a Uint8Array) are sent as they are: a gzip or binary body. */
      body?: string | object;
      headers?: Record<string, string>;
      /** How long the answer takes (default at once). */
      latencyMs?: number;
    }
  | { kind: "rate-limit"; retryAfter?: string; retryAfterMs?: string }
  /**
   * A body of `bytes` spaces, streamed as fast as the client reads, with its content-length
   * declared or not; `onEnd` is told how much was sent and whether the client took it all.
   */
  | {
      kind: "flood";
      bytes: number;
      declareLength?: boolean;
      onEnd?: (sent: number, finished: boolean) => void;
    }
  | { kind: "reset" }
  | { kind: "hang" }
  | { kind: "malformed" }
  | { kind: "html502" }
  | { kind: "empty-choices" };

export interface RecordedImage {
  mime: string;
  bytes: number;
  width: number | null;
  height: number | null;
  sha256: string;
}

export interface RecordedRequest {
  index: number;
  method: string;
  url: string;
  headers: Record<string, string | string[] | undefined>;
  body: unknown;
  model: string | null;
  prompt: string | null;
  image: RecordedImage | null;
  /** The request's `response_format`, if it sent one. */
  responseFormat: unknown;
  /** The request's `frequency_penalty`, if it sent one. */
  frequencyPenalty: number | null;
  behavior: Behavior["kind"] | FaultKind;
  /** When its body was in and the answer decided (`performance.now()`): a 429 leaves then. */
  decidedAt: number;
}

export interface FakeEndpointOptions {
  apiKey?: string;
  latencyMs?: number;
  script?: Behavior[];
  respond?: (req: RecordedRequest) => Behavior | undefined;
  faultRate?: number;
  faults?: FaultKind[];
  seed?: number;
  caption?: (req: RecordedRequest) => string;
  retryAfter?: string;
  /**
   * A token bucket, checked before any work as gateways do: `perSecond` tokens a second, at most
   * `burst` saved up (default one second's worth).
   */
  rateLimit?: {
    perSecond: number;
    retryAfter?: string;
    burst?: number;
    /** Rate-limit headers on every reply: OpenAI's `x-ratelimit-*`, or the IETF `RateLimit` fields. */
    headers?: "openai" | "ietf";
  };
  /** Decode each image to record its size and hash (default true); benchmarks turn it off. */
  inspectImages?: boolean;
  /** Keep each parsed request body in `requests` (default true); long benchmarks turn it off. */
  keepBodies?: boolean;
  /** Serve the OpenAI routes under /v1 only, as vLLM, SGLang and Ollama do (default: both forms). */
  v1Only?: boolean;
  /**
   * What a `response_format` of type json_schema gets (default honour: a JSON answer that matches
   * the schema). `ignore` answers as if it were not there, following the prompt as a model would;
   * `reject` answers 400, as servers without structured output do.
   */
  responseFormat?: "honour" | "ignore" | "reject";
  /** Share of JSON answers that are cut off mid-object (seeded, like faults). */
  invalidJsonRate?: number;
  /** Answer a loop or a refusal instead of a caption... */
  degenerate?: "loop" | "refusal";
  /** ...unless the request carries a frequency_penalty, as a penalised retry often fixes it. */
  degenerateUnlessPenalized?: boolean;
  /** What GET /models lists. @default the one FAKE_MODEL_ID */
  models?: {
    id: string;
    owned_by?: string;
    created?: number;
    /** vLLM's context per request. */
    max_model_len?: number;
    /** llama.cpp's details, `n_ctx` among them. */
    meta?: Record<string, unknown>;
  }[];
  /** GET /models answers 404, as servers without the route do. */
  noModels?: boolean;
  /**
   * GET /models answers 200 with an HTML page (a web UI's catch-all route), or never answers at
   * all (a proxy that holds the request open).
   */
  modelsReply?: "html" | "hang";
  /** A chat request for a model /models does not list gets 404 model_not_found, as vLLM answers. */
  rejectUnknownModel?: boolean;
  /**
   * The hosted API as this revision of the provider's guide has it (`guide-revisions.ts`): its
   * ids in /models unless `models` is given, 404 model_not_found for any other, and its Thinking
   * model's reasoning where that revision puts it.
   */
  revision?: GuideRevision;
  /**
   * A batching server, as vLLM and SGLang are: up to `batch` requests are served at full speed,
   * and the server's time is shared among any more, so each answer takes latency × in-flight /
   * batch. It never answers 429: more than it batches only waits longer.
   */
  batch?: number;
  /**
   * With `batch`: how much each further request in the batch slows every answer, as a share of
   * the latency (0.03: a full batch of 24 answers 1.69 times slower than one request alone). A
   * continuous-batching server works this way, each extra sequence making every decoding step a
   * little longer, so latency rises well before the batch is full while throughput still does.
   * @default 0
   */
  slowdown?: number;
  /**
   * A server with this much context (KV cache): each request holds its prompt (MiniCPM-V's image
   * tokens and its words) and its max_tokens while in service, and past the budget it answers as
   * llama.cpp or vLLM does (see fake-context.ts).
   */
  context?: ContextModel;
  /** Port on 127.0.0.1 (default 0, i.e. any free port); only the standalone CLI needs a fixed one. */
  port?: number;
}

export interface FakeEndpoint {
  baseUrl: string;
  port: number;
  /** Chat requests, and requests to unknown routes; GET /models is counted in modelListings. */
  requests: RecordedRequest[];
  readonly modelListings: number;
  readonly inFlight: number;
  readonly maxInFlight: number;
  /** TCP connections accepted so far; lets tests prove the client reuses keep-alive sockets. */
  readonly connectionCount: number;
  resetStats(): void;
  close(): Promise<void>;
}

export const FAKE_MODEL_ID = "MiniCPM-V-4.6-Instruct";

const HOST = "127.0.0.1";
const CHAT_PATHS = new Set(["/v1/chat/completions", "/chat/completions"]);
const V1_CHAT_PATHS = new Set(["/v1/chat/completions"]);
const MODELS_PATHS = new Set(["/v1/models", "/models"]);
const ALL_FAULTS: readonly FaultKind[] = [
  "429",
  "500",
  "503",
  "reset",
  "hang",
  "malformed",
  "html502",
  "empty-choices",
];
// A hang would stall a benchmark until the client's own timeout, so it is opt-in only.
const DEFAULT_FAULTS: readonly FaultKind[] = ALL_FAULTS.filter((f) => f !== "hang");
const DATA_URL_PREFIX = /^data:(image\/[A-Za-z0-9.+-]+);base64,/;
const BASE64_BODY = /^[A-Za-z0-9+/]*={0,2}$/;

// Byte-for-byte what nginx serves when its upstream dies, since that is what clients meet in practice.
const NGINX_502_HTML =
  "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n" +
  "<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n";

type Plan = { label: RecordedRequest["behavior"]; behavior: Behavior };

interface Analysis {
  model: string | null;
  prompt: string | null;
  responseFormat?: unknown;
  frequencyPenalty?: number | null;
  image: RecordedImage | null;
  imageError: string | null;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function errorEnvelope(
  message: string,
  type: string,
  code: string | null = null,
): { error: { message: string; type: string; param: null; code: string | null } } {
  return { error: { message, type, param: null, code } };
}

/** mulberry32: tiny, fast, and good enough to make fault sequences reproducible from a seed. */
function createPrng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function countWords(text: string | null): number {
  if (text === null) return 0;
  return text.split(/\s+/).filter((word) => word.length > 0).length;
}

function extractPrompt(messages: unknown[]): string | null {
  const user = messages.find((m) => isRecord(m) && m.role === "user");
  if (!isRecord(user)) return null;
  if (typeof user.content === "string") return user.content;
  if (!Array.isArray(user.content)) return null;
  for (const part of user.content) {
    if (isRecord(part) && part.type === "text" && typeof part.text === "string") return part.text;
  }
  return null;
}

function findImageUrl(messages: unknown[]): unknown {
  for (const message of messages) {
    if (!isRecord(message) || !Array.isArray(message.content)) continue;
    for (const part of message.content) {
      if (!isRecord(part) || part.type !== "image_url") continue;
      // Some clients send the bare string form; accept it so the 400 is about the URL, not the shape.
      return isRecord(part.image_url) ? part.image_url.url : part.image_url;
    }
  }
  return undefined;
}

async function analyzeChatBody(body: unknown, inspect: boolean): Promise<Analysis> {
  const result: Analysis = { model: null, prompt: null, image: null, imageError: null };
  if (!isRecord(body)) return result;
  if (typeof body.model === "string") result.model = body.model;
  const messages = Array.isArray(body.messages) ? body.messages : [];
  result.prompt = extractPrompt(messages);
  result.responseFormat = body.response_format;
  result.frequencyPenalty =
    typeof body.frequency_penalty === "number" ? body.frequency_penalty : null;

  const url = findImageUrl(messages);
  if (url === undefined) return result;
  // Whitespace is checked separately because Buffer.from(…, "base64") would silently skip it,
  // hiding exactly the line-wrapped base64 bug this server is meant to catch.
  const prefix = typeof url === "string" ? DATA_URL_PREFIX.exec(url) : null;
  if (typeof url !== "string" || /\s/.test(url) || prefix === null) {
    result.imageError = "invalid image data URL";
    return result;
  }
  const payload = url.slice(prefix[0].length);
  if (!inspect) {
    // Benchmarks: the server must cost as little CPU as possible, so only sizes are recorded.
    result.image = {
      mime: prefix[1] ?? "",
      bytes: Math.floor((payload.length * 3) / 4),
      width: null,
      height: null,
      sha256: "",
    };
    return result;
  }
  if (payload.length === 0 || !BASE64_BODY.test(payload)) {
    result.imageError = "invalid image data URL";
    return result;
  }
  const buffer = Buffer.from(payload, "base64");
  let width: number | null = null;
  let height: number | null = null;
  try {
    const meta = await sharp(buffer).metadata();
    width = typeof meta.width === "number" ? meta.width : null;
    height = typeof meta.height === "number" ? meta.height : null;
  } catch {
    // Undecodable bytes are still worth recording; the nulls tell the test what happened.
  }
  result.image = {
    mime: prefix[1] ?? "",
    bytes: buffer.length,
    width,
    height,
    sha256: createHash("sha256").update(buffer).digest("hex"),
  };
  return result;
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) {
    chunks.push(typeof chunk === "string" ? Buffer.from(chunk) : (chunk as Buffer));
  }
  return Buffer.concat(chunks);
}

function send(
  res: ServerResponse,
  status: number,
  contentType: string,
  body: string | Uint8Array,
  headers: Record<string, string> = {},
): void {
  // The client may have gone away while we were parsing or sleeping; writing then is pointless.
  if (res.destroyed || res.writableEnded) return;
  res.setHeader("content-type", contentType);
  for (const [name, value] of Object.entries(headers)) res.setHeader(name, value);
  res.setHeader("content-length", Buffer.byteLength(body));
  res.writeHead(status);
  res.end(body);
}

function sendJson(
  res: ServerResponse,
  status: number,
  payload: unknown,
  headers: Record<string, string> = {},
): void {
  send(res, status, "application/json", JSON.stringify(payload), headers);
}

/**
 * Processor sharing over at most `batch` lanes: each job needs its latency's worth of work, done
 * at full speed while no more than `batch` are in, else at batch / in-flight of it; `slowdown`
 * makes the speed of each lane fall with the number of lanes busy.
 */
function batchingWaiter(
  batch: number,
  slowdown: number,
): (res: ServerResponse, ms: number) => Promise<boolean> {
  interface Job {
    remaining: number;
    finish: (answered: boolean) => void;
  }
  const jobs = new Set<Job>();
  let advancedAt = performance.now();
  let timer: NodeJS.Timeout | null = null;
  const rate = () => {
    const busy = Math.min(batch, Math.max(1, jobs.size));
    return Math.min(1, batch / Math.max(1, jobs.size)) / (1 + slowdown * (busy - 1));
  };
  const advance = () => {
    const now = performance.now();
    const done = (now - advancedAt) * rate();
    for (const job of jobs) job.remaining -= done;
    advancedAt = now;
  };
  const schedule = () => {
    if (timer) clearTimeout(timer);
    timer = null;
    if (jobs.size === 0) return;
    const next = Math.min(...[...jobs].map((job) => job.remaining));
    timer = setTimeout(
      () => {
        advance();
        for (const job of jobs) {
          if (job.remaining <= 0.5) {
            jobs.delete(job);
            job.finish(true);
          }
        }
        schedule();
      },
      Math.max(0, next / rate()),
    );
  };
  return (res, ms) => {
    if (res.destroyed || res.writableEnded) return Promise.resolve(false);
    return new Promise((resolve) => {
      advance();
      const job: Job = {
        remaining: ms,
        finish: (answered) => {
          res.off("close", onClose);
          resolve(answered);
        },
      };
      const onClose = () => {
        advance();
        if (jobs.delete(job)) job.finish(false);
        schedule();
      };
      jobs.add(job);
      res.once("close", onClose);
      schedule();
    });
  };
}

/** Resolves true after `ms`, or false as soon as the response closes (client gone or server closing). */
function waitWhileOpen(res: ServerResponse, ms: number): Promise<boolean> {
  if (res.destroyed || res.writableEnded) return Promise.resolve(false);
  if (ms <= 0) return Promise.resolve(true);
  return new Promise((resolve) => {
    const onClose = (): void => {
      clearTimeout(timer);
      resolve(false);
    };
    const timer = setTimeout(() => {
      res.off("close", onClose);
      resolve(true);
    }, ms);
    res.once("close", onClose);
  });
}

export async function startFakeEndpoint(options: FakeEndpointOptions = {}): Promise<FakeEndpoint> {
  const faultRate = options.faultRate ?? 0;
  if (!(faultRate >= 0 && faultRate <= 1)) {
    throw new RangeError(`faultRate must be within 0..1, got ${faultRate}`);
  }
  if (options.rateLimit && !(options.rateLimit.perSecond > 0)) {
    throw new RangeError(`rateLimit.perSecond must be > 0, got ${options.rateLimit.perSecond}`);
  }
  const faults = [...(options.faults ?? DEFAULT_FAULTS)];
  const script = [...(options.script ?? [])];
  const random = createPrng(options.seed ?? 1);
  const revision = options.revision;
  const servedModels =
    options.models ??
    (revision === undefined
      ? [{ id: FAKE_MODEL_ID }]
      : REVISION_MODELS[revision].ids.map((id) => ({ id, owned_by: "vllm" })));
  let modelListings = 0;
  const faultRetryAfter = options.retryAfter ?? "0";
  if (options.batch !== undefined && !(options.batch >= 1)) {
    throw new RangeError(`batch must be at least 1, got ${options.batch}`);
  }
  const slowdown = options.slowdown ?? 0;
  if (!(slowdown >= 0) || (slowdown > 0 && options.batch === undefined)) {
    throw new RangeError(`slowdown must be ≥ 0 and needs batch, got ${options.slowdown}`);
  }
  const wait =
    options.batch === undefined ? waitWhileOpen : batchingWaiter(options.batch, slowdown);
  const defaultLatency = options.latencyMs ?? 0;
  const budget = options.context ? contextBudget(options.context) : null;

  const requests: RecordedRequest[] = [];
  const sockets = new Set<Socket>();
  let nextIndex = 0;
  let nextCompletionId = 1;
  let scriptPosition = 0;
  let inFlight = 0;
  let maxInFlight = 0;
  let connectionCount = 0;
  const drainWaiters: (() => void)[] = [];
  // Requests that arrived before resetStats() must not reappear in the cleared list when they finish.
  let generation = 0;

  // Token bucket starts full so a burst of up to perSecond requests passes, like most gateways.
  const bucketCapacity = Math.max(1, options.rateLimit?.burst ?? options.rateLimit?.perSecond ?? 1);
  let bucketTokens = bucketCapacity;
  let bucketRefilledAt = performance.now();

  function takeRateToken(): boolean {
    const limit = options.rateLimit;
    if (!limit) return true;
    const now = performance.now();
    bucketTokens = Math.min(
      bucketCapacity,
      bucketTokens + ((now - bucketRefilledAt) / 1000) * limit.perSecond,
    );
    bucketRefilledAt = now;
    if (bucketTokens < 1) return false;
    bucketTokens -= 1;
    return true;
  }

  /** What the bucket looks like now, in the form the options ask for (none by default). */
  function rateHeaders(): Record<string, string> {
    const limit = options.rateLimit;
    if (!limit?.headers) return {};
    // The bucket as it stands now, not as the last arrival left it.
    const now = performance.now();
    const tokens = Math.min(
      bucketCapacity,
      bucketTokens + ((now - bucketRefilledAt) / 1000) * limit.perSecond,
    );
    const remaining = Math.floor(tokens);
    const toFull = (bucketCapacity - tokens) / limit.perSecond;
    if (limit.headers === "openai") {
      return {
        "x-ratelimit-limit-requests": String(bucketCapacity),
        "x-ratelimit-remaining-requests": String(remaining),
        "x-ratelimit-reset-requests": `${Math.max(0, Math.round(toFull * 1000))}ms`,
      };
    }
    return {
      "ratelimit-policy": `"bucket";q=${limit.perSecond};w=1`,
      ratelimit: `"bucket";r=${remaining};t=${Math.ceil(toFull)}`,
    };
  }

  // Records finish parsing out of order (sharp is async), so insert by index to keep arrival order.
  function addRecord(record: RecordedRequest, recordGeneration: number): void {
    if (recordGeneration !== generation) return;
    let position = requests.length;
    while (position > 0 && (requests[position - 1]?.index ?? -1) > record.index) position--;
    requests.splice(position, 0, record);
  }

  function completion(model: string | null, choices: unknown[], usage: object | null): object {
    return {
      id: `chatcmpl-${nextCompletionId++}`,
      object: "chat.completion",
      created: Math.floor(Date.now() / 1000),
      model: model ?? FAKE_MODEL_ID,
      choices,
      ...(usage === null ? {} : { usage }),
    };
  }

  function okCompletion(record: RecordedRequest, given: Behavior & { kind: "ok" }): object {
    // A revision's Thinking model reasons the way that revision does, unless the test set a reply.
    const maxTokens = isRecord(record.body) ? record.body.max_tokens : undefined;
    const behavior =
      revision !== undefined && given.content === undefined && given.reasoning === undefined
        ? {
            ...given,
            ...revisionReply(
              revision,
              record.model,
              answerFor(record),
              typeof maxTokens === "number" ? maxTokens : null,
            ),
          }
        : given;
    const content = behavior.content === undefined ? answerFor(record) : behavior.content;
    const message: Record<string, unknown> = { role: "assistant", content };
    if (behavior.reasoning !== undefined) {
      message[behavior.reasoningField ?? "reasoning"] = behavior.reasoning;
    }
    const finishReason = behavior.finishReason === undefined ? "stop" : behavior.finishReason;
    const counts =
      behavior.usage === undefined
        ? { prompt_tokens: 100, completion_tokens: countWords(content) }
        : behavior.usage;
    const usage =
      counts === null
        ? null
        : { ...counts, total_tokens: counts.prompt_tokens + counts.completion_tokens };
    return completion(record.model, [{ index: 0, message, finish_reason: finishReason }], usage);
  }

  /** A caption, or the JSON (or the trouble) the options ask for. */
  function answerFor(record: RecordedRequest): string {
    const penalized = (record.frequencyPenalty ?? 0) > 0;
    if (options.degenerate && !(penalized && options.degenerateUnlessPenalized)) {
      return options.degenerate === "loop" ? LOOP_REPLY : REFUSAL_REPLY;
    }
    const format = isRecord(record.responseFormat) ? record.responseFormat : null;
    const honoured =
      format?.type === "json_schema" && (options.responseFormat ?? "honour") === "honour";
    const schema = honoured
      ? (format?.json_schema as Record<string, unknown> | undefined)?.schema
      : schemaInPrompt(record.prompt);
    if (schema === undefined) return captionFor(record);
    let json = JSON.stringify(instanceOf(schema, captionFor(record)));
    if ((options.invalidJsonRate ?? 0) > 0 && random() < (options.invalidJsonRate ?? 0)) {
      json = brokenJson(json);
    }
    return honoured ? json : wrappedInProse(json);
  }

  function captionFor(record: RecordedRequest): string {
    if (options.caption) return options.caption(record);
    if (record.image === null) return "ready";
    if (record.image.sha256 === "") return `A test caption for request ${record.index}.`;
    return `A test caption for ${record.image.sha256.slice(0, 12)}.`;
  }

  function faultBehavior(fault: FaultKind): Behavior {
    switch (fault) {
      case "429":
        return {
          kind: "status",
          status: 429,
          body: errorEnvelope("Rate limit reached for requests", "requests", "rate_limit_exceeded"),
          headers: { "retry-after": faultRetryAfter },
        };
      case "500":
        return {
          kind: "status",
          status: 500,
          body: errorEnvelope(
            "The server had an error while processing your request.",
            "server_error",
          ),
        };
      case "503":
        return {
          kind: "status",
          status: 503,
          body: errorEnvelope(
            "The engine is currently overloaded, please try again later.",
            "server_error",
          ),
          headers: { "retry-after": faultRetryAfter },
        };
      default:
        return { kind: fault };
    }
  }

  function plan(record: RecordedRequest): Plan {
    const scripted = script[scriptPosition];
    if (scripted !== undefined) {
      scriptPosition++;
      return { label: scripted.kind, behavior: scripted };
    }
    // An explicit answer from respond() wins over random noise.
    const responded = options.respond?.(record);
    if (responded !== undefined) return { label: responded.kind, behavior: responded };
    if (faultRate > 0 && faults.length > 0 && random() < faultRate) {
      const fault = faults[Math.floor(random() * faults.length)];
      if (fault !== undefined) return { label: fault, behavior: faultBehavior(fault) };
    }
    return { label: "ok", behavior: { kind: "ok" } };
  }

  async function perform(
    behavior: Behavior,
    record: RecordedRequest,
    req: IncomingMessage,
    res: ServerResponse,
    /** Told as the answer leaves, before the client can send another request. */
    answering: () => void = () => {},
  ): Promise<void> {
    switch (behavior.kind) {
      case "ok": {
        if (!(await wait(res, behavior.latencyMs ?? defaultLatency))) return;
        answering();
        sendJson(res, 200, okCompletion(record, behavior), rateHeaders());
        return;
      }
      case "status": {
        if (!(await waitWhileOpen(res, behavior.latencyMs ?? 0))) return;
        const headers = behavior.headers ?? {};
        if (behavior.body === undefined) {
          const message = STATUS_CODES[behavior.status] ?? `HTTP ${behavior.status}`;
          const type = behavior.status >= 500 ? "server_error" : "invalid_request_error";
          sendJson(res, behavior.status, errorEnvelope(message, type), headers);
        } else if (behavior.body instanceof Uint8Array) {
          send(res, behavior.status, "application/octet-stream", behavior.body, headers);
        } else if (typeof behavior.body === "string") {
          send(res, behavior.status, guessContentType(behavior.body), behavior.body, headers);
        } else {
          sendJson(res, behavior.status, behavior.body, headers);
        }
        return;
      }
      case "rate-limit": {
        const headers: Record<string, string> = rateHeaders();
        if (behavior.retryAfter !== undefined) headers["retry-after"] = behavior.retryAfter;
        if (behavior.retryAfterMs !== undefined) headers["retry-after-ms"] = behavior.retryAfterMs;
        sendJson(
          res,
          429,
          errorEnvelope("Rate limit reached for requests", "requests", "rate_limit_exceeded"),
          headers,
        );
        return;
      }
      case "flood": {
        answering();
        res.writeHead(200, {
          "content-type": "application/json",
          ...(behavior.declareLength ? { "content-length": String(behavior.bytes) } : {}),
        });
        const chunk = Buffer.alloc(64 * 1024, " ");
        let sent = 0;
        while (sent < behavior.bytes && !res.destroyed) {
          const size = Math.min(chunk.length, behavior.bytes - sent);
          sent += size;
          if (res.write(size === chunk.length ? chunk : chunk.subarray(0, size))) continue;
          await new Promise<void>((resolve) => {
            const done = () => {
              res.off("drain", done);
              res.off("close", done);
              resolve();
            };
            res.on("drain", done);
            res.on("close", done);
          });
        }
        if (!res.destroyed) res.end();
        behavior.onEnd?.(sent, !res.destroyed);
        return;
      }
      case "reset":
        req.socket.destroy();
        return;
      case "hang":
        // Deliberately no reply: the socket stays open until the client aborts or close() runs.
        return;
      case "malformed": {
        const full = JSON.stringify(okCompletion(record, { kind: "ok" }));
        send(res, 200, "application/json", full.slice(0, Math.floor(full.length / 2)));
        return;
      }
      case "html502":
        send(res, 502, "text/html", NGINX_502_HTML);
        return;
      case "empty-choices":
        sendJson(
          res,
          200,
          completion(record.model, [], {
            prompt_tokens: 100,
            completion_tokens: 0,
            total_tokens: 100,
          }),
        );
        return;
      default: {
        const unreachable: never = behavior;
        throw new Error(`unknown behavior ${JSON.stringify(unreachable)}`);
      }
    }
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const recordGeneration = generation;
    const url = req.url ?? "/";
    const method = req.method ?? "GET";
    const path = new URL(url, "http://fake.invalid").pathname;
    // Model listings take no index: `index` counts what `requests` holds.
    const index = method === "GET" && MODELS_PATHS.has(path) ? -1 : nextIndex++;
    const chatPaths = options.v1Only ? V1_CHAT_PATHS : CHAT_PATHS;
    const isChat = method === "POST" && chatPaths.has(path);

    if (isChat) {
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      // 'close' fires both after a normal finish and when the socket dies, so hung and reset
      // requests leave the count exactly when the client stops waiting.
      res.once("close", () => {
        inFlight--;
        if (inFlight === 0) for (const notify of drainWaiters.splice(0)) notify();
      });
    }

    let raw: Buffer;
    try {
      raw = await readBody(req);
    } catch {
      return; // client aborted mid-upload; there is nobody to answer
    }
    let body: unknown = null;
    let bodyIsJson = false;
    if (raw.length > 0 && options.inspectImages === false && isChat) {
      // Benchmarks: parsing half a megabyte of JSON per request would charge the server's CPU to
      // the client being measured. The size is all that is recorded.
      body = { model: null, messages: [], __bytes: raw.length };
      bodyIsJson = true;
    } else if (raw.length > 0) {
      try {
        body = JSON.parse(raw.toString("utf8"));
        bodyIsJson = true;
      } catch {
        body = null;
      }
    }

    const analysis: Analysis = isChat
      ? await analyzeChatBody(body, options.inspectImages ?? true)
      : { model: null, prompt: null, image: null, imageError: null };
    const record: RecordedRequest = {
      index,
      method,
      url,
      headers: { ...req.headers },
      body: options.keepBodies === false ? null : body,
      model: analysis.model,
      prompt: analysis.prompt,
      image: analysis.image,
      responseFormat: analysis.responseFormat,
      frequencyPenalty: analysis.frequencyPenalty ?? null,
      behavior: "ok",
      decidedAt: performance.now(),
    };

    if (!isChat) {
      const isModels = method === "GET" && MODELS_PATHS.has(path);
      if (isModels) {
        // Kept apart from `requests`, which tests count as the images sent.
        modelListings += 1;
        if (
          options.apiKey !== undefined &&
          req.headers.authorization !== `Bearer ${options.apiKey}`
        ) {
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
            errorEnvelope(`Unknown request URL: ${method} ${path}`, "invalid_request_error"),
          );
        } else {
          sendJson(res, 200, {
            object: "list",
            data: servedModels.map((model) => ({ object: "model", ...model })),
          });
        }
      } else {
        record.behavior = "status";
        addRecord(record, recordGeneration);
        const message = `Unknown request URL: ${method} ${path}`;
        sendJson(res, 404, errorEnvelope(message, "invalid_request_error"));
      }
      return;
    }

    let decided: Plan;
    /** Gives back the context a request held, as its answer leaves. */
    let release = () => {};
    if (options.apiKey !== undefined && req.headers.authorization !== `Bearer ${options.apiKey}`) {
      decided = statusPlan(
        401,
        errorEnvelope("Incorrect API key provided", "invalid_request_error", "invalid_api_key"),
      );
    } else if (!bodyIsJson) {
      decided = statusPlan(
        400,
        errorEnvelope("We could not parse the JSON body of your request.", "invalid_request_error"),
      );
    } else if (
      (options.rejectUnknownModel || revision !== undefined) &&
      !servedModels.some((model) => model.id === analysis.model)
    ) {
      decided = statusPlan(
        404,
        errorEnvelope(
          `The model \`${analysis.model}\` does not exist.`,
          "invalid_request_error",
          "model_not_found",
        ),
      );
    } else if (analysis.imageError !== null) {
      decided = statusPlan(400, errorEnvelope(analysis.imageError, "invalid_request_error"));
    } else if (
      options.responseFormat === "reject" &&
      isRecord(analysis.responseFormat) &&
      analysis.responseFormat.type === "json_schema"
    ) {
      decided = statusPlan(
        400,
        errorEnvelope(
          "response_format type json_schema is not supported by this server",
          "invalid_request_error",
        ),
      );
    } else if (!takeRateToken()) {
      // Checked before the script so a throttled request does not use up a scripted reply.
      decided = {
        label: "rate-limit",
        behavior: { kind: "rate-limit", retryAfter: options.rateLimit?.retryAfter ?? "1" },
      };
    } else {
      const verdict = budget?.admit({
        promptTokens: minicpmPromptTokens(
          analysis.image?.width ?? null,
          analysis.image?.height ?? null,
          analysis.prompt,
        ),
        maxTokens: isRecord(body) && typeof body.max_tokens === "number" ? body.max_tokens : 512,
      });
      if (verdict !== undefined && !verdict.fits) {
        decided = statusPlan(verdict.status, verdict.body);
      } else {
        if (verdict !== undefined) {
          release = verdict.release;
          res.once("close", verdict.release);
        }
        decided = plan(record);
      }
    }

    record.behavior = decided.label;
    addRecord(record, recordGeneration);
    await perform(decided.behavior, record, req, res, release);
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      // A throwing caption()/respond() is a test bug; surface it as a 500 rather than a hang.
      const message = error instanceof Error ? error.message : String(error);
      process.stderr.write(`fake-endpoint: ${message}\n`);
      sendJson(res, 500, errorEnvelope(`fake endpoint error: ${message}`, "server_error"));
    });
  });
  server.on("connection", (socket) => {
    connectionCount++;
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
  });

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, HOST, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;

  let closing: Promise<void> | undefined;

  return {
    baseUrl: `http://${HOST}:${port}/v1`,
    port,
    requests,
    get inFlight() {
      return inFlight;
    },
    get maxInFlight() {
      return maxInFlight;
    },
    get connectionCount() {
      return connectionCount;
    },
    get modelListings() {
      return modelListings;
    },
    resetStats() {
      generation++;
      requests.length = 0;
      // Requests still running are part of the new window, so the max cannot start below them.
      maxInFlight = inFlight;
    },
    close() {
      closing ??= new Promise<void>((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        // server.close() alone waits for idle keep-alive and hung sockets; destroy them now.
        for (const socket of sockets) socket.destroy();
      }).then(
        // The server reports closed before responses emit 'close', so without this a caller
        // could still see inFlight > 0 right after close() resolves.
        () =>
          new Promise<void>((resolve) => (inFlight === 0 ? resolve() : drainWaiters.push(resolve))),
      );
      return closing;
    },
  };
}

function statusPlan(status: number, body: object): Plan {
  return { label: "status", behavior: { kind: "status", status, body } };
}

function guessContentType(body: string): string {
  try {
    JSON.parse(body);
    return "application/json";
  } catch {
    return "text/plain; charset=utf-8";
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      port: { type: "string", default: "0" },
      latency: { type: "string", default: "0" },
      "fault-rate": { type: "string", default: "0" },
      "api-key": { type: "string" },
      rate: { type: "string" },
      seed: { type: "string", default: "1" },
      "response-format": { type: "string", default: "honour" },
      "invalid-json-rate": { type: "string", default: "0" },
      degenerate: { type: "string" },
      batch: { type: "string" },
      slowdown: { type: "string" },
      revision: { type: "string" },
      context: { type: "string" },
      "context-server": { type: "string", default: "llama" },
    },
    strict: true,
  });
  const port = parseNumber("--port", values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new RangeError(`--port must be an integer in 0..65535, got ${values.port}`);
  }
  const endpoint = await startFakeEndpoint({
    port,
    latencyMs: parseNumber("--latency", values.latency),
    faultRate: parseNumber("--fault-rate", values["fault-rate"]),
    seed: parseNumber("--seed", values.seed),
    responseFormat: oneOf("--response-format", values["response-format"], [
      "honour",
      "ignore",
      "reject",
    ] as const),
    invalidJsonRate: parseNumber("--invalid-json-rate", values["invalid-json-rate"]),
    ...(values.degenerate === undefined
      ? {}
      : { degenerate: oneOf("--degenerate", values.degenerate, ["loop", "refusal"] as const) }),
    ...(values["api-key"] === undefined ? {} : { apiKey: values["api-key"] }),
    ...(values.revision === undefined ? {} : { revision: parseRevision(values.revision) }),
    ...(values.batch === undefined ? {} : { batch: parseNumber("--batch", values.batch) }),
    ...(values.slowdown === undefined
      ? {}
      : { slowdown: parseNumber("--slowdown", values.slowdown) }),
    ...(values.rate === undefined
      ? {}
      : { rateLimit: { perSecond: parseNumber("--rate", values.rate) } }),
    ...(values.context === undefined
      ? {}
      : {
          context: {
            tokens: parseNumber("--context", values.context),
            server: oneOf("--context-server", values["context-server"], ["llama", "vllm"] as const),
          },
        }),
  });
  process.stdout.write(`${endpoint.baseUrl}\n`);
  const shutdown = (): void => {
    endpoint.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once("SIGINT", shutdown);
  process.once("SIGTERM", shutdown);
}

function oneOf<T extends string>(flag: string, text: string | undefined, values: readonly T[]): T {
  const found = values.find((value) => value === text);
  if (found === undefined) throw new RangeError(`${flag} must be one of ${values.join(", ")}`);
  return found;
}

function parseNumber(flag: string, text: string | undefined): number {
  const value = Number(text);
  if (text === undefined || text.trim() === "" || !Number.isFinite(value)) {
    throw new RangeError(`${flag} must be a number, got ${text}`);
  }
  return value;
}

const entry = process.argv[1];
if (entry !== undefined && import.meta.url === pathToFileURL(entry).href) {
  main().catch((error: unknown) => {
    process.stderr.write(
      `fake-endpoint: ${error instanceof Error ? error.message : String(error)}\n`,
    );
    process.exit(2);
  });
}
