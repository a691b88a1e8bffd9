/** Everything a test or the bench can ask of the fake, with its defaults. */
import type { GuideRevision } from "../guide-revisions.js";
import type { ContextModel } from "./context.js";
import type { Behavior, FaultKind, RecordedRequest } from "./types.js";

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
  /**
   * Decode each image to record its size and hash, and probe each video with ffprobe (default
   * true); benchmarks turn it off.
   */
  inspectImages?: boolean;
  /**
   * Whether `video_url` parts are accepted, as vLLM and the hosted MiniCPM-V API accept them
   * (default true). false refuses any request with one exactly as llama.cpp's llama-server does:
   * 400 `{"error":{"code":400,"message":"unsupported content[].type","type":"invalid_request_error"}}`.
   */
  video?: boolean;
  /**
   * What a server accepts of a video, as hosted APIs cap a clip's frames, length and upload; a
   * video over any is answered 400 "video over budget: …", naming each it exceeds.
   */
  videoLimits?: VideoLimits;
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
  models?: ServedModel[];
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
   * llama.cpp or vLLM does (see context.ts).
   */
  context?: ContextModel;
  /** Port on 127.0.0.1 (default 0, i.e. any free port); only the standalone CLI needs a fixed one. */
  port?: number;
}

export interface VideoLimits {
  /** The most pixels on the video's shorter side. */
  maxShortSide?: number;
  maxFps?: number;
  maxSeconds?: number;
  /** The decoded (not base64) size. */
  maxBytes?: number;
}

/** One entry of GET /models. */
export interface ServedModel {
  id: string;
  owned_by?: string;
  created?: number;
  /** vLLM's context per request. */
  max_model_len?: number;
  /** llama.cpp's details, `n_ctx` among them. */
  meta?: Record<string, unknown>;
}

/** Throws for options no server could have, before anything listens. */
export function checkOptions(options: FakeEndpointOptions): void {
  const faultRate = options.faultRate ?? 0;
  if (!(faultRate >= 0 && faultRate <= 1)) {
    throw new RangeError(`faultRate must be within 0..1, got ${faultRate}`);
  }
  if (options.rateLimit && !(options.rateLimit.perSecond > 0)) {
    throw new RangeError(`rateLimit.perSecond must be > 0, got ${options.rateLimit.perSecond}`);
  }
  if (options.batch !== undefined && !(options.batch >= 1)) {
    throw new RangeError(`batch must be at least 1, got ${options.batch}`);
  }
  for (const [name, limit] of Object.entries(options.videoLimits ?? {})) {
    if (limit !== undefined && !(typeof limit === "number" && limit > 0)) {
      throw new RangeError(`videoLimits.${name} must be > 0, got ${limit}`);
    }
  }
  const slowdown = options.slowdown ?? 0;
  if (!(slowdown >= 0) || (slowdown > 0 && options.batch === undefined)) {
    throw new RangeError(`slowdown must be ≥ 0 and needs batch, got ${options.slowdown}`);
  }
}
