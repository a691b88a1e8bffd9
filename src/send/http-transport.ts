import http from "node:http";
import https from "node:https";
import { DEFAULT_MAX_REPLY_BYTES, declaredLength, ReplyTooLarge } from "../trust/reply-limit.js";

/** What the client needs of an HTTP exchange: the status, the headers and the body. */
export interface Exchanged {
  status: number;
  ok: boolean;
  headers: Headers;
  text: string;
  /** The body as received, for telling a binary one from text. */
  bytes: Uint8Array;
}

export interface ExchangeInit {
  method: "GET" | "POST";
  headers: Record<string, string>;
  body?: string | Uint8Array;
  signal: AbortSignal;
  /**
   * The most bytes of the body read: a larger one (declared or received) fails the exchange with
   * ReplyTooLarge and its connection is destroyed. @default DEFAULT_MAX_REPLY_BYTES
   */
  maxBytes?: number;
}

export type Transport = (url: string, init: ExchangeInit) => Promise<Exchanged>;

/**
 * Keep-alive agents shared by every client of the process. `fetch` costs about four times the
 * main-thread time per request of node:http (1.1 ms against 0.3 ms measured here at -c 128 with
 * 12 KB bodies), and at a hundred requests in flight that time is the run's ceiling.
 */
const AGENTS = {
  "http:": new http.Agent(agentOptions()),
  "https:": new https.Agent(agentOptions()),
};

function agentOptions(): http.AgentOptions {
  // An idle socket is closed after 4 s, before servers close theirs (uvicorn, under vLLM and
  // SGLang, after 5 s): reusing one the server has just closed would fail a request.
  return { keepAlive: true, maxSockets: Number.POSITIVE_INFINITY, timeout: 4_000 };
}

/** The code of a connection that could not be made in time: counted as refused. */
export const CONNECT_TIMEOUT = "ECONNECT_TIMEOUT";
const CONNECT_TIMEOUT_MS = 10_000;

/** One exchange over node:http(s) with a keep-alive agent. */
export const httpTransport: Transport = (url, init) => exchange(new URL(url), init);

function exchange(url: URL, init: ExchangeInit): Promise<Exchanged> {
  const secure = url.protocol === "https:";
  const body = bodyBytes(init.body);
  const maxBytes = init.maxBytes ?? DEFAULT_MAX_REPLY_BYTES;
  return new Promise<Exchanged>((resolve, reject) => {
    if (init.signal.aborted) return reject(abortError(init.signal));
    const request = (secure ? https : http).request(
      url,
      {
        method: init.method,
        agent: AGENTS[secure ? "https:" : "http:"],
        headers: {
          ...init.headers,
          ...(body === undefined ? {} : { "content-length": String(body.length) }),
        },
      },
      (response) => {
        const status = response.statusCode ?? 0;
        const declared = declaredLength(response.headers["content-length"]);
        if (declared !== null && declared > maxBytes) {
          fail(new ReplyTooLarge(maxBytes, status, declared));
          request.destroy();
          return;
        }
        const chunks: Buffer[] = [];
        let received = 0;
        response.on("data", (chunk: Buffer) => {
          received += chunk.length;
          // Past the cap the connection goes, and with it whatever the server still meant to send.
          if (received > maxBytes) {
            fail(new ReplyTooLarge(maxBytes, status, null));
            request.destroy();
            return;
          }
          chunks.push(chunk);
        });
        response.on("error", fail);
        response.on("aborted", () =>
          fail(Object.assign(new Error("socket hang up"), { code: "ECONNRESET" })),
        );
        response.on("end", () => {
          if (settled) return;
          settled = true;
          init.signal.removeEventListener("abort", onAbort);
          const bytes = Buffer.concat(chunks);
          resolve({
            status,
            ok: status >= 200 && status < 300,
            headers: toHeaders(response.headers),
            text: bytes.toString("utf8"),
            bytes,
          });
        });
      },
    );
    let settled = false;
    function fail(error: Error): void {
      if (settled) return;
      settled = true;
      init.signal.removeEventListener("abort", onAbort);
      reject(error);
    }
    function onAbort(): void {
      request.destroy(abortError(init.signal));
    }
    init.signal.addEventListener("abort", onAbort, { once: true });
    request.on("error", fail);
    // A host that is off drops the connection attempt silently: give up on connecting long before
    // the reply's timeout, as refused, so an endpoint that is gone is known as such.
    request.on("socket", (socket) => {
      if (!socket.connecting) return;
      const timer = setTimeout(() => {
        const error = new Error(`connect timed out after ${CONNECT_TIMEOUT_MS / 1000} s`);
        request.destroy(Object.assign(error, { code: CONNECT_TIMEOUT }));
      }, CONNECT_TIMEOUT_MS);
      socket.once("connect", () => clearTimeout(timer));
      socket.once("close", () => clearTimeout(timer));
    });
    request.end(body);
  });
}

function abortError(signal: AbortSignal): Error {
  return Object.assign(new Error("the request was aborted"), {
    name: "AbortError",
    cause: signal.reason,
  });
}

function toHeaders(raw: http.IncomingHttpHeaders): Headers {
  const headers = new Headers();
  for (const [name, value] of Object.entries(raw)) {
    if (value === undefined) continue;
    if (Array.isArray(value)) for (const each of value) headers.append(name, each);
    else headers.set(name, value);
  }
  return headers;
}

/** The body as bytes; a request's bytes as they are, not copied (half a megabyte an image). */
function bodyBytes(body: string | Uint8Array | undefined): Buffer | undefined {
  if (body === undefined) return undefined;
  if (typeof body === "string") return Buffer.from(body);
  return Buffer.from(body.buffer, body.byteOffset, body.byteLength);
}
