import { createHash } from "node:crypto";
import sharp from "sharp";
import { describe, expect, it, vi } from "vitest";
import { useFakeEndpoint } from "./fake-endpoint/use.js";
import { type FakeEndpoint, type FakeEndpointOptions, startFakeEndpoint } from "./fake-endpoint.js";

const fakes = useFakeEndpoint("manual");
/** A fake for this test alone, closed after it. */
const start = (options?: FakeEndpointOptions) => fakes.startAnother(options);

function chatBody(content: unknown): string {
  return JSON.stringify({
    model: "test-model",
    messages: [{ role: "user", content }],
  });
}

function post(
  endpoint: FakeEndpoint,
  body: string,
  headers: Record<string, string> = {},
  signal?: AbortSignal,
): Promise<Response> {
  return fetch(`${endpoint.baseUrl}/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body,
    ...(signal ? { signal } : {}),
  });
}

interface ChatCompletion {
  id: string;
  object: string;
  model: string;
  choices: {
    index: number;
    message: Record<string, unknown>;
    finish_reason: string | null;
  }[];
  usage?: { prompt_tokens: number; completion_tokens: number; total_tokens: number };
}

describe("fake endpoint", () => {
  it("listens on 127.0.0.1 and captions a real JPEG", async () => {
    const endpoint = await start();
    expect(endpoint.baseUrl).toBe(`http://127.0.0.1:${endpoint.port}/v1`);
    const jpeg = await sharp({
      create: { width: 32, height: 24, channels: 3, background: { r: 200, g: 80, b: 40 } },
    })
      .jpeg()
      .toBuffer();
    const sha = createHash("sha256").update(jpeg).digest("hex");

    const res = await post(
      endpoint,
      chatBody([
        { type: "text", text: "Describe this image." },
        {
          type: "image_url",
          image_url: { url: `data:image/jpeg;base64,${jpeg.toString("base64")}` },
        },
      ]),
    );
    expect(res.status).toBe(200);
    const json = (await res.json()) as ChatCompletion;
    const caption = `A test caption for ${sha.slice(0, 12)}.`;
    expect(json.object).toBe("chat.completion");
    expect(json.id).toMatch(/^chatcmpl-\d+$/);
    expect(json.model).toBe("test-model");
    expect(json.choices[0]?.message).toEqual({ role: "assistant", content: caption });
    expect(json.choices[0]?.finish_reason).toBe("stop");
    // The prompt's 3 words and the 32×24 image's one 28-pixel patch, as a vision server counts.
    expect(json.usage).toEqual({ prompt_tokens: 4, completion_tokens: 5, total_tokens: 9 });

    expect(endpoint.requests).toHaveLength(1);
    expect(endpoint.requests[0]).toMatchObject({
      index: 0,
      method: "POST",
      url: "/v1/chat/completions",
      model: "test-model",
      prompt: "Describe this image.",
      behavior: "ok",
      image: { mime: "image/jpeg", bytes: jpeg.length, width: 32, height: 24, sha256: sha },
    });

    const models = await fetch(`${endpoint.baseUrl}/models`);
    expect(await models.json()).toEqual({
      object: "list",
      data: [{ id: "MiniCPM-V-4.6-Instruct", object: "model" }],
    });
    const missing = await fetch(`${endpoint.baseUrl}/nope`);
    expect(missing.status).toBe(404);
    expect(await missing.json()).toMatchObject({ error: { param: null, code: null } });
    // undici may open a second socket right after a POST, so check that later requests reuse them.
    const connections = endpoint.connectionCount;
    for (let i = 0; i < 3; i++) await (await fetch(`${endpoint.baseUrl}/models`)).arrayBuffer();
    expect(endpoint.connectionCount).toBe(connections);
  });

  it("rejects line-wrapped or non-image data URLs with 400", async () => {
    const endpoint = await start();
    for (const url of ["data:image/png;base64,AAAA\nAAAA", "data:text/plain;base64,AAAA"]) {
      const res = await post(endpoint, chatBody([{ type: "image_url", image_url: { url } }]));
      expect(res.status).toBe(400);
      expect(await res.json()).toMatchObject({ error: { message: "invalid image data URL" } });
    }
  });

  it("plays the script in order, then falls back to the default", async () => {
    const endpoint = await start({
      script: [
        { kind: "status", status: 500 },
        { kind: "ok", content: "second" },
        {
          kind: "ok",
          content: null,
          reasoning: "thinking",
          reasoningField: "reasoning_content",
          finishReason: "length",
          usage: null,
        },
        { kind: "html502" },
        { kind: "malformed" },
      ],
    });
    const body = chatBody("hello");

    const first = await post(endpoint, body);
    expect(first.status).toBe(500);
    expect(await first.json()).toMatchObject({ error: { type: "server_error" } });

    const second = (await (await post(endpoint, body)).json()) as ChatCompletion;
    expect(second.choices[0]?.message.content).toBe("second");

    const thirdText = await (await post(endpoint, body)).text();
    expect(thirdText).toContain('"content":null');
    const third = JSON.parse(thirdText) as ChatCompletion;
    expect(third.choices[0]?.message.reasoning_content).toBe("thinking");
    expect(third.choices[0]?.finish_reason).toBe("length");
    expect(third).not.toHaveProperty("usage");

    const fourth = await post(endpoint, body);
    expect(fourth.status).toBe(502);
    expect(fourth.headers.get("content-type")).toBe("text/html");
    expect(await fourth.text()).toContain("502 Bad Gateway");

    const fifth = await post(endpoint, body);
    expect(fifth.status).toBe(200);
    expect(fifth.headers.get("content-type")).toBe("application/json");
    await expect(fifth.json()).rejects.toThrow();

    const sixth = (await (await post(endpoint, body)).json()) as ChatCompletion;
    expect(sixth.choices[0]?.message.content).toBe("ready");
    expect(endpoint.requests.map((r) => r.behavior)).toEqual([
      "status",
      "ok",
      "ok",
      "html502",
      "malformed",
      "ok",
    ]);
    expect(endpoint.requests.map((r) => r.index)).toEqual([0, 1, 2, 3, 4, 5]);
  });

  it("answers 401 with an OpenAI envelope when the API key is wrong", async () => {
    const endpoint = await start({ apiKey: "sk-right", script: [{ kind: "ok", content: "x" }] });
    const attempts: Record<string, string>[] = [{ authorization: "Bearer sk-wrong" }, {}];
    for (const headers of attempts) {
      const res = await post(endpoint, chatBody("hi"), headers);
      expect(res.status).toBe(401);
      expect(await res.json()).toEqual({
        error: {
          message: "Incorrect API key provided",
          type: "invalid_request_error",
          param: null,
          code: "invalid_api_key",
        },
      });
    }
    // The rejected requests must not have consumed the script.
    const ok = await post(endpoint, chatBody("hi"), { authorization: "Bearer sk-right" });
    expect(((await ok.json()) as ChatCompletion).choices[0]?.message.content).toBe("x");
  });

  it("sends rate-limit headers from the script, random faults and the token bucket", async () => {
    const scripted = await start({
      script: [{ kind: "rate-limit", retryAfter: "2", retryAfterMs: "1500" }],
      faultRate: 1,
      faults: ["429"],
      retryAfter: "3",
    });
    const first = await post(scripted, chatBody("hi"));
    expect(first.status).toBe(429);
    expect(first.headers.get("retry-after")).toBe("2");
    expect(first.headers.get("retry-after-ms")).toBe("1500");
    const random = await post(scripted, chatBody("hi"));
    expect(random.status).toBe(429);
    expect(random.headers.get("retry-after")).toBe("3");
    expect(scripted.requests.map((r) => r.behavior)).toEqual(["rate-limit", "429"]);

    const bucket = await start({ rateLimit: { perSecond: 2 } });
    const statuses: number[] = [];
    for (let i = 0; i < 3; i++) {
      const res = await post(bucket, chatBody("hi"));
      statuses.push(res.status);
      if (res.status === 429) expect(res.headers.get("retry-after")).toBe("1");
      await res.arrayBuffer();
    }
    expect(statuses).toEqual([200, 200, 429]);
  });

  it("returns a valid completion with no choices", async () => {
    const endpoint = await start({ script: [{ kind: "empty-choices" }] });
    const res = await post(endpoint, chatBody("hi"));
    expect(res.status).toBe(200);
    const json = (await res.json()) as ChatCompletion;
    expect(json.object).toBe("chat.completion");
    expect(json.choices).toEqual([]);
  });

  it("keeps a hung request open until close(), which still resolves", async () => {
    const endpoint = await start({ script: [{ kind: "hang" }] });
    const pending = post(endpoint, chatBody("hi"));
    let settled = false;
    const settle = () => {
      settled = true;
    };
    pending.then(settle, settle);
    await vi.waitFor(() => expect(endpoint.requests[0]?.behavior).toBe("hang"));
    expect(endpoint.inFlight).toBe(1);
    expect(settled).toBe(false);

    // A hung socket would keep server.close() waiting forever: close() must end it, not wait for
    // it, so this resolves well within the test's limit and the client sees its socket die.
    await endpoint.close();
    await expect(pending).rejects.toThrow();
    expect(endpoint.inFlight).toBe(0);
  }, 5_000);

  it("tracks in-flight requests and resets the socket on a reset fault", async () => {
    const endpoint = await start({ latencyMs: 150 });
    const responses = await Promise.all([1, 2, 3].map(() => post(endpoint, chatBody("hi"))));
    expect(responses.map((r) => r.status)).toEqual([200, 200, 200]);
    await Promise.all(responses.map((r) => r.arrayBuffer()));
    expect(endpoint.maxInFlight).toBe(3);
    await vi.waitFor(() => expect(endpoint.inFlight).toBe(0));

    endpoint.resetStats();
    expect(endpoint.requests).toHaveLength(0);
    expect(endpoint.maxInFlight).toBe(0);

    const faulty = await start({ faultRate: 1, faults: ["reset"] });
    await expect(post(faulty, chatBody("hi"))).rejects.toThrow();
    expect(faulty.requests[0]?.behavior).toBe("reset");
  });

  it("in batching mode shares its time beyond the batch, and slows each answer with the batch's size", async () => {
    const timed = async (endpoint: FakeEndpoint, count: number) => {
      const started = performance.now();
      const statuses = await Promise.all(
        Array.from({ length: count }, async () => {
          const res = await post(endpoint, chatBody("hi"));
          await res.arrayBuffer();
          return { status: res.status, ms: performance.now() - started };
        }),
      );
      expect(statuses.every((answer) => answer.status === 200)).toBe(true);
      // The last answer: however the requests' arrivals are staggered, the batch's work is all done
      // no sooner than this.
      return Math.max(...statuses.map((answer) => answer.ms));
    };
    // Timers never fire early, so only lower bounds are asserted.
    const flat = await start({ latencyMs: 200, batch: 2 });
    expect(await timed(flat, 4)).toBeGreaterThanOrEqual(390); // 4 sharing 2 lanes: twice as long
    const slowing = await start({ latencyMs: 200, batch: 4, slowdown: 0.5 });
    expect(await timed(slowing, 1)).toBeGreaterThanOrEqual(195);
    expect(await timed(slowing, 4)).toBeGreaterThanOrEqual(480); // 1 + 0.5 × 3 = 2.5 times
    await expect(startFakeEndpoint({ slowdown: 0.1 })).rejects.toThrow(/needs batch/);
  });
});
