import {
  ApiError,
  byOptionName,
  ConnectionError,
  errorFromStatus,
  InvalidResponseError,
  ModelNotFoundError,
  type NameSetting,
  ReplyTooLargeError,
  TimeoutError,
} from "../errors.js";
import {
  DEFAULT_MAX_REPLY_BYTES,
  declaredLength,
  ReplyTooLarge,
  readCapped,
} from "../trust/reply-limit.js";
import { describeBody, formatCap } from "../trust/text.js";
import { redactSecret } from "../util/redact.js";
import { httpTransport, type Transport } from "./http-transport.js";
import {
  describeNetworkError,
  hostOf,
  networkCode,
  originOf,
  REFUSED_CODES,
} from "./network-errors.js";
import { aboutModel, routeNotFound } from "./route-not-found.js";
import { bodySnippet, serverCode, serverMessage } from "./server-message.js";

export type FetchLike = (input: string, init: RequestInit) => Promise<Response>;

export interface ClientOptions {
  /** Base URL of the OpenAI-compatible API, ending in `/v1` for most servers. */
  baseUrl: string;
  /** Sent as `Authorization: Bearer …` when set; self-hosted servers often need none. */
  apiKey?: string | undefined;
  /** Per-attempt budget for the whole exchange, body included. */
  timeoutMs: number;
  /** Injectable for tests and instrumentation. @default globalThis.fetch */
  fetch?: FetchLike;
  /** How messages name the timeout and the key. @default their option names */
  nameSetting?: NameSetting | undefined;
  /**
   * The most bytes of a reply body read; a larger one fails the request (`reply_too_large`)
   * without the rest being received. @default 4 MiB
   */
  maxReplyBytes?: number | undefined;
}

export interface ChatReply {
  /** The parsed JSON body of a 2xx reply. */
  body: unknown;
  status: number;
  headers: Headers;
  latencyMs: number;
}

export interface ChatClient {
  /**
   * One POST to `{baseUrl}/chat/completions`: `request` is the body as an object, or already
   * serialised JSON bytes. Throws an ApiError subclass on any failure.
   */
  chat(request: object | Uint8Array, signal?: AbortSignal): Promise<ChatReply>;
  /**
   * `GET {baseUrl}/models` within `timeoutMs`. Never throws: `body` is the parsed JSON of a 2xx
   * reply, else null with `problem` saying why (no such route, not JSON, unreachable).
   */
  models(timeoutMs: number): Promise<{ body: unknown; problem: string | null }>;
}

/** Thrown when the caller's signal (not the timeout) ended the request. */
export class RequestCancelledError extends Error {
  override name = "RequestCancelledError";
}

export function createClient(options: ClientOptions): ChatClient {
  const url = `${options.baseUrl}/chat/completions`;
  const injected = options.fetch;
  const maxBytes = options.maxReplyBytes ?? DEFAULT_MAX_REPLY_BYTES;
  // node:http unless a fetch is injected (tests, instrumentation): it costs far less per request.
  const transport: Transport = injected
    ? async (target, init) => {
        const response = await injected(target, init);
        const declared = declaredLength(response.headers.get("content-length"));
        if (declared !== null && declared > maxBytes) {
          await response.body?.cancel().catch(() => {});
          throw new ReplyTooLarge(maxBytes, response.status, declared);
        }
        const bytes = await readCapped(response.body, maxBytes, response.status);
        const text = bytes.toString("utf8");
        return { status: response.status, ok: response.ok, headers: response.headers, text, bytes };
      }
    : httpTransport;
  const send: Transport = (target, init) => transport(target, { ...init, maxBytes });
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (options.apiKey) headers.authorization = `Bearer ${options.apiKey}`;
  const clean = (text: string) => redactSecret(text, options.apiKey);

  async function chat(request: object | Uint8Array, signal?: AbortSignal): Promise<ChatReply> {
    if (signal?.aborted) throw new RequestCancelledError("cancelled");
    // A plain controller plus a timer we clear ourselves: AbortSignal.timeout() inside
    // AbortSignal.any() has been seen never to fire on Node 20 when a server hangs.
    const controller = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      controller.abort();
    }, options.timeoutMs);
    const onCancel = () => controller.abort();
    signal?.addEventListener("abort", onCancel, { once: true });
    const started = performance.now();
    try {
      const response = await send(url, {
        method: "POST",
        headers,
        body: request instanceof Uint8Array ? request : JSON.stringify(request),
        signal: controller.signal,
      });
      const { text } = response;
      const latencyMs = Math.round(performance.now() - started);
      if (!response.ok) {
        const message = clean(serverMessage(text, response.bytes));
        // The server's own code is the surest sign of a wrong model, whatever the wording.
        if (serverCode(text) === "model_not_found") {
          throw new ModelNotFoundError("model_not_found", `HTTP ${response.status}: ${message}`, {
            status: response.status,
            headers: response.headers,
          });
        }
        if (response.status === 404 && !aboutModel(message, url)) {
          throw routeNotFound(options.baseUrl, message, response.headers);
        }
        throw errorFromStatus(response.status, message, response.headers, options.nameSetting);
      }
      let body: unknown;
      try {
        body = JSON.parse(text);
      } catch (cause) {
        throw new InvalidResponseError(
          "invalid_response",
          `HTTP ${response.status} reply is not JSON: ${clean(describeBody(response.bytes) ?? bodySnippet(text))}`,
          { status: response.status, headers: response.headers, cause },
        );
      }
      return { body, status: response.status, headers: response.headers, latencyMs };
    } catch (error) {
      if (error instanceof ApiError) throw error;
      if (error instanceof ReplyTooLarge) throw tooLarge(error);
      if (timedOut) {
        throw new TimeoutError(
          "timeout",
          `no complete reply within ${options.timeoutMs / 1000} s; raise ${(options.nameSetting ?? byOptionName)("timeoutMs")} if the server is slow`,
          { cause: error },
        );
      }
      if (signal?.aborted) throw new RequestCancelledError("cancelled", { cause: error });
      const code = networkCode(error);
      if (code === "ENOTFOUND") {
        throw new ConnectionError(
          `cannot resolve the host ${hostOf(url)} (ENOTFOUND: no such host); check the spelling of the base URL`,
          true,
          { cause: error, errno: code },
        );
      }
      throw new ConnectionError(
        `could not reach ${originOf(url)}: ${clean(describeNetworkError(error))}`,
        code !== null && REFUSED_CODES.has(code),
        { cause: error, errno: code },
      );
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener("abort", onCancel);
    }
  }

  async function models(timeoutMs: number): Promise<{ body: unknown; problem: string | null }> {
    const url = `${options.baseUrl}/models`;
    try {
      const response = await send(url, {
        method: "GET",
        headers,
        signal: AbortSignal.timeout(timeoutMs),
      });
      const { text } = response;
      if (!response.ok) {
        const message = clean(serverMessage(text, response.bytes));
        return {
          body: null,
          problem: `${url} answered HTTP ${response.status}${message ? `: ${message}` : ""}`,
        };
      }
      try {
        return { body: JSON.parse(text) as unknown, problem: null };
      } catch {
        return { body: null, problem: `${url} answered something that is not JSON` };
      }
    } catch (error) {
      if (error instanceof ReplyTooLarge)
        return { body: null, problem: `${url}: ${tooLarge(error).message}` };
      // The transport wraps the signal's reason; fetch throws it as it is.
      const reason = error instanceof Error && error.cause instanceof Error ? error.cause : error;
      if (reason instanceof Error && reason.name === "TimeoutError") {
        return { body: null, problem: `${url} gave no answer within ${timeoutMs / 1000} s` };
      }
      return {
        body: null,
        problem: `could not reach ${url}: ${clean(describeNetworkError(error))}`,
      };
    }
  }

  /** A body past the cap, in words that name the cap and the setting that raises it. */
  function tooLarge(error: ReplyTooLarge): ReplyTooLargeError {
    const size = error.declared === null ? "" : ` (it declared ${error.declared} bytes)`;
    const setting = (options.nameSetting ?? byOptionName)("maxReplyBytes");
    return new ReplyTooLargeError(
      "reply_too_large",
      `the HTTP ${error.status} reply was larger than ${formatCap(error.limit)}${size}, the most read of one: the rest was not received, and it is not asked again (raise ${setting} if this server's replies are really that large)`,
      { cause: error },
    );
  }

  return { chat, models };
}
