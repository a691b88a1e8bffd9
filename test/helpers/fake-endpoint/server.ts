/**
 * The HTTP server: routes each request, records what the client sent, counts what is in flight,
 * and closes without waiting for hung or idle sockets.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { performance } from "node:perf_hooks";
import { createAdmission } from "./admission.js";
import { batchingWaiter, waitWhileOpen } from "./delays.js";
import { createPrng } from "./faults.js";
import { errorEnvelope, HOST, readBody, sendJson } from "./http.js";
import { answerModels, isModelListing, servedModelsOf } from "./models.js";
import { checkOptions, type FakeEndpointOptions } from "./options.js";
import { createPerformer } from "./perform.js";
import { createRateLimiter } from "./rate-limit.js";
import { createReplies } from "./replies.js";
import { type Analysis, analyzeChatBody, emptyAnalysis } from "./request.js";
import type { FakeEndpoint, RecordedRequest } from "./types.js";

const CHAT_PATHS = new Set(["/v1/chat/completions", "/chat/completions"]);
const V1_CHAT_PATHS = new Set(["/v1/chat/completions"]);

export async function startFakeEndpoint(options: FakeEndpointOptions = {}): Promise<FakeEndpoint> {
  checkOptions(options);
  const random = createPrng(options.seed ?? 1);
  const servedModels = servedModelsOf(options);
  const limiter = createRateLimiter(options.rateLimit);
  const admit = createAdmission(options, limiter, random);
  const perform = createPerformer({
    wait:
      options.batch === undefined
        ? waitWhileOpen
        : batchingWaiter(options.batch, options.slowdown ?? 0),
    defaultLatency: options.latencyMs ?? 0,
    replies: createReplies(options, random),
    limiter,
  });
  const chatPaths = options.v1Only ? V1_CHAT_PATHS : CHAT_PATHS;

  const requests: RecordedRequest[] = [];
  const sockets = new Set<Socket>();
  let modelListings = 0;
  let nextIndex = 0;
  let inFlight = 0;
  let maxInFlight = 0;
  let connectionCount = 0;
  const drainWaiters: (() => void)[] = [];
  // Requests that arrived before resetStats() must not reappear in the cleared list when they finish.
  let generation = 0;

  // Records finish parsing out of order (sharp and ffprobe are async), so insert by index to keep arrival order.
  function addRecord(record: RecordedRequest, recordGeneration: number): void {
    if (recordGeneration !== generation) return;
    let position = requests.length;
    while (position > 0 && (requests[position - 1]?.index ?? -1) > record.index) position--;
    requests.splice(position, 0, record);
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const recordGeneration = generation;
    const url = req.url ?? "/";
    const method = req.method ?? "GET";
    const path = new URL(url, "http://fake.invalid").pathname;
    const isModels = isModelListing(method, path);
    // Model listings take no index: `index` counts what `requests` holds.
    const index = isModels ? -1 : nextIndex++;
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
      ? await analyzeChatBody(body, options.inspectImages ?? true, options.video !== false)
      : emptyAnalysis();
    const record: RecordedRequest = {
      index,
      method,
      url,
      headers: { ...req.headers },
      body: options.keepBodies === false ? null : body,
      model: analysis.model,
      prompt: analysis.prompt,
      image: analysis.image,
      images: analysis.images,
      video: analysis.video,
      responseFormat: analysis.responseFormat,
      frequencyPenalty: analysis.frequencyPenalty ?? null,
      behavior: "ok",
      decidedAt: performance.now(),
    };

    if (isModels) {
      // Kept apart from `requests`, which tests count as the images sent.
      modelListings += 1;
      answerModels(req, res, options, servedModels, path);
      return;
    }
    if (!isChat) {
      record.behavior = "status";
      addRecord(record, recordGeneration);
      const message = `Unknown request URL: ${method} ${path}`;
      sendJson(res, 404, errorEnvelope(message, "invalid_request_error"));
      return;
    }

    const { plan, release } = admit({
      authorization: req.headers.authorization,
      body,
      bodyIsJson,
      analysis,
      record,
      res,
    });
    record.behavior = plan.label;
    addRecord(record, recordGeneration);
    await perform(plan.behavior, record, req, res, release);
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
