/**
 * A fake OpenAI-compatible chat-completions server for integration tests and benchmarks.
 *
 * It lets tests script exact replies, inject random faults reproducibly, and inspect what the
 * client actually sent (decoded images, a probed video, prompt, concurrency), without a GPU or
 * network access.
 *
 * By concern: options.ts (what can be asked of it), server.ts (HTTP, records, closing),
 * request.ts (reading a chat request), video.ts (a video_url part, read with ffprobe),
 * admission.ts (key, model, images and video, rate limit, context),
 * faults.ts (script, respond(), seeded faults), perform.ts (playing a behaviour on the wire),
 * replies.ts and answers.ts (what a caption or JSON answer holds), models.ts (GET /models),
 * rate-limit.ts, delays.ts (latency, batching), context.ts (KV cache), cli.ts (standalone).
 * Tests start one with `useFakeEndpoint()` (use.ts).
 */
export { FAKE_MODEL_ID } from "./models.js";
export type { FakeEndpointOptions, VideoLimits } from "./options.js";
export { startFakeEndpoint } from "./server.js";
export type {
  Behavior,
  FakeEndpoint,
  FaultKind,
  RecordedImage,
  RecordedRequest,
  RecordedVideo,
} from "./types.js";
