import type { RunSummary } from "./run/events.js";

/**
 * The error tree. Every error the tool raises on purpose is a CaptionError with a stable `code`
 * (written to the errors file) and a message that names the file or flag and what to do next.
 */
export class CaptionError extends Error {
  override name = "CaptionError";
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}

/**
 * How a message names a setting the user can change: a library caller knows it by its option name,
 * the command line by its flag, so the caller decides (RunOptions.nameSetting).
 */
export type NameSetting = (option: string) => string;
export const byOptionName: NameSetting = (option) => option;

/** Bad flags, config file or environment: exit 2. */
export class UsageError extends CaptionError {
  override name = "UsageError";
  readonly problems: string[];

  constructor(problems: string[]) {
    super("usage", problems.join("\n"));
    this.problems = problems;
  }
}

/**
 * The server lists models and none of the one asked for: usage, exit 2, before any image. A
 * worker given it by its queue stops rather than fail every shard alike.
 */
export class ModelNotServedError extends UsageError {
  override name = "ModelNotServedError";
}

/** An image that could not be read or encoded. Fails that image only. */
export class ImageError extends CaptionError {
  override name = "ImageError";
}

/** The run cannot go on (key rejected, endpoint unreachable, OUT not writable): exit 1. */
export class RunAbortedError extends CaptionError {
  override name = "RunAbortedError";
  /** What the run did before it stopped, when `captionImages` rejects with this error. */
  summary: RunSummary | null = null;
}

/** Anything that went wrong talking to the endpoint. */
export class ApiError extends CaptionError {
  override name = "ApiError";
  readonly status: number | null;
  readonly headers: Headers | null;

  constructor(
    code: string,
    message: string,
    options: { status?: number | null; headers?: Headers | null; cause?: unknown } = {},
  ) {
    super(code, message, { cause: options.cause });
    this.status = options.status ?? null;
    this.headers = options.headers ?? null;
  }
}

/** 401 or 403: the key (or its permissions) was rejected. Stops the whole run. */
export class AuthError extends ApiError {
  override name = "AuthError";
}
/** 429. */
export class RateLimitError extends ApiError {
  override name = "RateLimitError";
}
/** 5xx. */
export class ServerError extends ApiError {
  override name = "ServerError";
}
/** 408 and 409: the server asks to try again. */
export class RetryableStatusError extends ApiError {
  override name = "RetryableStatusError";
}
/** Any other 4xx: the server refused this request; retrying would not help. */
export class BadRequestError extends ApiError {
  override name = "BadRequestError";
}
/** The connection failed or was reset before a reply arrived. */
export class ConnectionError extends ApiError {
  override name = "ConnectionError";
  /**
   * No connection could be made at all (refused, no such host, no route): the endpoint is down or
   * misnamed. A connection that was made and then reset says nothing of the kind.
   */
  readonly refused: boolean;
  /** The system's code for the failure (ECONNREFUSED, ENOTFOUND, …), when it gave one. */
  readonly errno: string | null;

  constructor(
    message: string,
    refused: boolean,
    options: { cause?: unknown; errno?: string | null } = {},
  ) {
    super("connection_failed", message, { cause: options.cause });
    this.refused = refused;
    this.errno = options.errno ?? null;
  }

  /** The host name does not resolve: unlike a refused port, it will not start working in a second. */
  get unknownHost(): boolean {
    return this.errno === "ENOTFOUND";
  }
}
/**
 * A 404 about the route rather than a model: nothing answers chat completions at this base URL,
 * usually because it lacks its `/v1`.
 */
export class EndpointNotFoundError extends ApiError {
  override name = "EndpointNotFoundError";
}
/** The server says the requested model does not exist (`model_not_found`). */
export class ModelNotFoundError extends ApiError {
  override name = "ModelNotFoundError";
}
/** No complete reply within the per-attempt timeout. */
export class TimeoutError extends ApiError {
  override name = "TimeoutError";
}
/**
 * A reply body past the cap (`maxReplyBytes`), refused without reading the rest: a server that
 * sends that much would send it again, so the image fails at once (`reply_too_large`).
 */
export class ReplyTooLargeError extends ApiError {
  override name = "ReplyTooLargeError";
}
/** A 200 reply that is not a usable chat completion (not JSON, no choices). */
export class InvalidResponseError extends ApiError {
  override name = "InvalidResponseError";
}
/** A structured answer that is not JSON, or does not match the schema: worth another attempt. */
export class InvalidJsonError extends InvalidResponseError {
  override name = "InvalidJsonError";
  constructor(message: string) {
    super("invalid_json", message, { status: 200 });
  }
}
/** The reply parsed but held no caption. */
export class EmptyCaptionError extends ApiError {
  override name = "EmptyCaptionError";
  /** True when the model ran out of tokens while still thinking: retrying the same request would not help. */
  readonly outOfTokens: boolean;

  constructor(message: string, outOfTokens: boolean) {
    super(outOfTokens ? "truncated_thinking" : "empty_caption", message, { status: 200 });
    this.outOfTokens = outOfTokens;
  }
}

/** The one place an HTTP status becomes an error class. */
export function errorFromStatus(
  status: number,
  serverMessage: string,
  headers: Headers,
  name: NameSetting = byOptionName,
): ApiError {
  const detail = serverMessage ? `: ${serverMessage}` : "";
  const options = { status, headers };
  if (status === 401 || status === 403) {
    return new AuthError(
      "auth_rejected",
      `the endpoint rejected the API key (HTTP ${status}${detail}); check ${name("apiKey")}`,
      options,
    );
  }
  if (status === 429) return new RateLimitError("rate_limited", `HTTP 429${detail}`, options);
  if (status === 408 || status === 409) {
    return new RetryableStatusError(`http_${status}`, `HTTP ${status}${detail}`, options);
  }
  if (status >= 500) return new ServerError("server_error", `HTTP ${status}${detail}`, options);
  return new BadRequestError(`http_${status}`, `HTTP ${status}${detail}`, options);
}
