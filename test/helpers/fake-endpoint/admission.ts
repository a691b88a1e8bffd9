/**
 * Whether a chat request is served, checked in the order a real server checks: the key, the JSON,
 * the model, the images and video, response_format, the rate limit and then the context it would
 * hold. What passes is planned by the script, respond() or the faults.
 */
import type { ServerResponse } from "node:http";
import { contextBudget, minicpmRequestTokens } from "./context.js";
import { createPlanner, statusPlan } from "./faults.js";
import { errorEnvelope, isRecord } from "./http.js";
import { rejectsModel, servedModelsOf } from "./models.js";
import type { FakeEndpointOptions, VideoLimits } from "./options.js";
import type { RateLimiter } from "./rate-limit.js";
import type { Analysis } from "./request.js";
import type { Plan, RecordedRequest, RecordedVideo } from "./types.js";

export interface ChatRequest {
  authorization: string | undefined;
  body: unknown;
  bodyIsJson: boolean;
  analysis: Analysis;
  record: RecordedRequest;
  res: ServerResponse;
}

export interface Admission {
  plan: Plan;
  /** Gives back the context the request held, as its answer leaves. */
  release: () => void;
}

export function createAdmission(
  options: FakeEndpointOptions,
  limiter: RateLimiter,
  random: () => number,
): (request: ChatRequest) => Admission {
  const served = servedModelsOf(options);
  const budget = options.context ? contextBudget(options.context) : null;
  const plan = createPlanner(options, random);
  const refuse = (status: number, body: object): Admission => ({
    plan: statusPlan(status, body),
    release: () => {},
  });

  return ({ authorization, body, bodyIsJson, analysis, record, res }) => {
    if (options.apiKey !== undefined && authorization !== `Bearer ${options.apiKey}`) {
      return refuse(
        401,
        errorEnvelope("Incorrect API key provided", "invalid_request_error", "invalid_api_key"),
      );
    }
    if (!bodyIsJson) {
      return refuse(
        400,
        errorEnvelope("We could not parse the JSON body of your request.", "invalid_request_error"),
      );
    }
    if (rejectsModel(options, served, analysis.model)) {
      return refuse(
        404,
        errorEnvelope(
          `The model \`${analysis.model}\` does not exist.`,
          "invalid_request_error",
          "model_not_found",
        ),
      );
    }
    if (options.video === false && analysis.videoParts > 0) {
      // llama-server's own body, key order included: it has no error envelope's param.
      return refuse(400, {
        error: {
          code: 400,
          message: "unsupported content[].type",
          type: "invalid_request_error",
        },
      });
    }
    if (analysis.imageError !== null) {
      return refuse(400, errorEnvelope(analysis.imageError, "invalid_request_error"));
    }
    if (analysis.videoError !== null) {
      return refuse(400, errorEnvelope(analysis.videoError, "invalid_request_error"));
    }
    const overBudget = analysis.video && videoOverBudget(analysis.video, options.videoLimits);
    if (overBudget) {
      return refuse(
        400,
        errorEnvelope(`video over budget: ${overBudget}`, "invalid_request_error"),
      );
    }
    if (
      options.responseFormat === "reject" &&
      isRecord(analysis.responseFormat) &&
      analysis.responseFormat.type === "json_schema"
    ) {
      return refuse(
        400,
        errorEnvelope(
          "response_format type json_schema is not supported by this server",
          "invalid_request_error",
        ),
      );
    }
    if (!limiter.take()) {
      // Checked before the script so a throttled request does not use up a scripted reply.
      return {
        plan: {
          label: "rate-limit",
          behavior: { kind: "rate-limit", retryAfter: options.rateLimit?.retryAfter ?? "1" },
        },
        release: () => {},
      };
    }
    const verdict = budget?.admit({
      promptTokens: minicpmRequestTokens(analysis.images, analysis.video, analysis.prompt),
      maxTokens: isRecord(body) && typeof body.max_tokens === "number" ? body.max_tokens : 512,
    });
    if (verdict === undefined) return { plan: plan(record), release: () => {} };
    if (!verdict.fits) return refuse(verdict.status, verdict.body);
    res.once("close", verdict.release);
    return { plan: plan(record), release: verdict.release };
  };
}

/**
 * Each limit the video exceeds, as "maxFps (10 > 5)", joined; "" when within all of them. A field
 * ffprobe left unknown exceeds nothing.
 */
function videoOverBudget(video: RecordedVideo, limits: VideoLimits | undefined): string {
  if (limits === undefined) return "";
  const shortSide =
    video.width !== null && video.height !== null ? Math.min(video.width, video.height) : null;
  const measured: [keyof VideoLimits, number | null][] = [
    ["maxShortSide", shortSide],
    ["maxFps", video.fps],
    ["maxSeconds", video.duration],
    ["maxBytes", video.bytes],
  ];
  return measured
    .flatMap(([name, value]) => {
      const limit = limits[name];
      return limit !== undefined && value !== null && value > limit
        ? [`${name} (${value} > ${limit})`]
        : [];
    })
    .join(", ");
}
