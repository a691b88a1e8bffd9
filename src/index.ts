/** The library surface: everything the CLI does is available to programs too. */
export { type ChatClient, type ClientOptions, createClient, type FetchLike } from "./client.js";
export { type CaptionConfig, DEFAULT_MAX_PIXELS, resolveConfig } from "./config.js";
export * from "./errors.js";
export {
  captionImages,
  RunControl,
  type RunEvent,
  type RunOptions,
  type RunSummary,
} from "./pipeline.js";
export { type CaptionFlag, captionFlags } from "./prompts/degenerate.js";
export { firstJsonObject } from "./prompts/structured.js";
export { TAGS_PROMPT, TAGS_SCHEMA } from "./prompts/tags.js";
export { PLACEHOLDERS, parseTemplate } from "./prompts/template.js";
export { readFinishedWork } from "./resume.js";
export { retryDelay, shouldRetry } from "./retry.js";
export { discoverImages, IMAGE_EXTENSIONS } from "./stages/discover.js";
export { prepareImage, targetSize } from "./stages/prepare.js";
export { buildCaptionRequest, extractCaption } from "./stages/request.js";
export type * from "./types.js";
export { CAPTION_COLUMNS, openCaptionWriter, type RecordWriter } from "./writers/index.js";
