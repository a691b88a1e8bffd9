/**
 * Plays a behaviour on the wire: a caption after its latency, an error status, a 429, a flood of
 * bytes, a reset socket, a hang, half a JSON body, nginx's 502 page or a completion with no
 * choices.
 */
import { type IncomingMessage, type ServerResponse, STATUS_CODES } from "node:http";
import { type Wait, waitWhileOpen } from "./delays.js";
import { errorEnvelope, guessContentType, NGINX_502_HTML, send, sendJson } from "./http.js";
import type { RateLimiter } from "./rate-limit.js";
import type { Replies } from "./replies.js";
import type { Behavior, RecordedRequest } from "./types.js";

/** `answering` is told as the answer leaves, before the client can send another request. */
export type Performer = (
  behavior: Behavior,
  record: RecordedRequest,
  req: IncomingMessage,
  res: ServerResponse,
  answering?: () => void,
) => Promise<void>;

export function createPerformer(setup: {
  /** How an `ok` answer waits out its latency (plain, or a batching server's shared time). */
  wait: Wait;
  defaultLatency: number;
  replies: Replies;
  limiter: RateLimiter;
}): Performer {
  const { wait, defaultLatency, replies, limiter } = setup;
  return async (behavior, record, req, res, answering = () => {}) => {
    switch (behavior.kind) {
      case "ok": {
        if (!(await wait(res, behavior.latencyMs ?? defaultLatency))) return;
        answering();
        sendJson(res, 200, replies.okCompletion(record, behavior), limiter.headers());
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
        const headers: Record<string, string> = limiter.headers();
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
      case "flood":
        answering();
        await flood(res, behavior);
        return;
      case "reset":
        req.socket.destroy();
        return;
      case "hang":
        // Deliberately no reply: the socket stays open until the client aborts or close() runs.
        return;
      case "malformed": {
        const full = JSON.stringify(replies.okCompletion(record, { kind: "ok" }));
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
          replies.completion(record.model, [], {
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
  };
}

/** Streams `bytes` spaces as fast as the client reads them. */
async function flood(res: ServerResponse, behavior: Behavior & { kind: "flood" }): Promise<void> {
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
}
