/** The library surface: everything the CLI does is available to programs too. */

export { type CaptionFlag, captionFlags } from "./answer/degenerate.js";
export { extractCaption } from "./answer/extract.js";
export { firstJsonObject } from "./answer/json-answer.js";
export { discoverImages } from "./discover/discover.js";
export { IMAGE_EXTENSIONS, VIDEO_EXTENSIONS } from "./discover/extensions.js";
export * from "./errors.js";
export { prepareClip } from "./prepare/clip/prepare-clip.js";
export { prepareImage, targetSize } from "./prepare/prepare.js";
export { TAGS_PROMPT, TAGS_SCHEMA } from "./prompts/tags.js";
export { PLACEHOLDERS, parseTemplate } from "./prompts/template.js";
export { RunControl } from "./run/control.js";
export { type Estimate, estimateCaptions } from "./run/estimate.js";
export type { RunEvent, RunSummary, TokenTotals } from "./run/events.js";
export type { Forecast, Range } from "./run/forecast.js";
export { captionImages, type RunHooks } from "./run/pipeline.js";
export {
  type ChatClient,
  type ClientOptions,
  createClient,
  type FetchLike,
} from "./send/client.js";
export { buildCaptionRequest } from "./send/request.js";
export { retryDelay, shouldRetry } from "./send/retry.js";
export type { CaptionConfig } from "./settings/caption-config.js";
export { DEFAULT_MAX_PIXELS } from "./settings/defaults.js";
export type { EndpointOptions } from "./settings/endpoints.js";
export { resolveConfig } from "./settings/resolve.js";
export type { RunOptions } from "./settings/run-options.js";
export { readFinishedWork } from "./sinks/out-file/scan.js";
export { CAPTION_COLUMNS, openCaptionWriter, type RecordWriter } from "./sinks/out-file/writers.js";
export type * from "./types.js";
