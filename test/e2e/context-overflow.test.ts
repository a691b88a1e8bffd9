/**
 * A server that runs out of context (its KV cache): first what the client makes of each server's
 * words, then whole runs against the fake's model of it, then against the real llama.cpp server.
 */

import type { ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, readFile } from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { errorFromStatus } from "../../src/errors.js";
import { contextOverflowOf } from "../../src/send/context-overflow.js";
import { useFakeEndpoint } from "../helpers/fake-endpoint/use.js";
import { LLAMA_PEER, startLlamaPeer } from "../helpers/llama-peer.js";
import { runCli } from "../helpers/run-cli.js";
import { writeVariedPhotos } from "../helpers/varied-photos.js";
import { makeDistinctImages, readCsv, readJsonl, useWorkspace } from "../helpers/workspace.js";

const error = (status: number, message: string) => errorFromStatus(status, message, new Headers());

describe("contextOverflowOf", () => {
  it("reads llama.cpp's shared cache running out as a matter of how many are in flight", () => {
    // llama.cpp tools/server (the peer in ../shared/peers/llama, commit 3f545bec), HTTP 500.
    expect(contextOverflowOf(error(500, "Context size has been exceeded."))).toEqual({
      kind: "shared",
    });
    expect(contextOverflowOf(error(500, "failed to process mtmd chunk"))).toEqual({
      kind: "shared",
    });
  });

  it("reads a request too large alone, with the sizes each server names", () => {
    // llama.cpp, HTTP 400, type exceed_context_size_error.
    expect(
      contextOverflowOf(
        error(
          400,
          "request (682 tokens) exceeds the available context size (512 tokens), try increasing it",
        ),
      ),
    ).toEqual({ kind: "alone", requestTokens: 682, contextTokens: 512, promptOnly: true });
    // vLLM's OpenAI server, HTTP 400.
    expect(
      contextOverflowOf(
        error(
          400,
          "This model's maximum context length is 4096 tokens. However, you requested 4700 tokens (4188 in the messages, 512 in the completion). Please reduce the length of the messages or completion.",
        ),
      ),
    ).toEqual({ kind: "alone", requestTokens: 4700, contextTokens: 4096, promptOnly: false });
    // vLLM's newer wording.
    expect(
      contextOverflowOf(
        error(
          400,
          "'max_tokens' or 'max_completion_tokens' is too large: 512. This model's maximum context length is 4096 tokens and your request has 3800 input tokens (512 > 4096 - 3800).",
        ),
      ),
    ).toEqual({ kind: "alone", requestTokens: 3800, contextTokens: 4096, promptOnly: false });
    // SGLang.
    expect(
      contextOverflowOf(
        error(
          400,
          "Requested token count exceeds the model's maximum context length of 4096 tokens. You requested a total of 4700 tokens: 4188 tokens from the input messages and 512 tokens for the completion.",
        ),
      ),
    ).toEqual({ kind: "alone", requestTokens: 4700, contextTokens: 4096, promptOnly: false });
  });

  it("leaves every other failure alone", () => {
    expect(contextOverflowOf(error(500, "The server had an error"))).toBeNull();
    expect(contextOverflowOf(error(400, "Failed to load image or audio file"))).toBeNull();
    expect(contextOverflowOf(error(503, "Loading model"))).toBeNull();
    // The words at a status that does not mean them.
    expect(contextOverflowOf(error(429, "Context size has been exceeded."))).toBeNull();
    expect(contextOverflowOf(new Error("Context size has been exceeded."))).toBeNull();
  });
});

describe("a run against a server that runs out of context", () => {
  const ws = useWorkspace();
  const fake = useFakeEndpoint("manual");

  const run = (args: string[]) =>
    runCli(args, { cwd: ws.dir, baseUrl: fake.current?.baseUrl ?? "" });

  it("brings what is in flight down and captions every image, saying how far it came down", async () => {
    // Each small image costs 64 image tokens, its words and 512 of answer: three fit in 2000.
    await fake.start({ latencyMs: 150, context: { tokens: 2000 } });
    const images = await makeDistinctImages(ws.dir, 16);
    const result = await run(["photos", "-o", "out.csv", "-c", "4"]);
    expect(result.code, result.stderr).toBe(0);
    expect((await readCsv(path.join(ws.dir, "out.csv"))).map((row) => row.path).sort()).toEqual(
      images.sort(),
    );
    expect(result.stderr).toMatch(
      /concurrency at 127\.0\.0\.1:\d+ came down from 4 to 3 \(it ran out of context once; 1 request sent again\)/,
    );
    const refused = fake.requests.filter((request) => request.behavior === "status");
    expect(refused.length).toBeGreaterThan(0);
    // A refused image cost none of its attempts: every row says so.
    const rows = await readCsv(path.join(ws.dir, "out.csv"));
    expect(rows.every((row) => row.attempts === "1")).toBe(true);
    // Once down, it stays below the figure that ran out for the rest of this short run.
    const lastRefusal = Math.max(...refused.map((request) => request.index));
    expect(lastRefusal).toBeLessThan(fake.requests.length - 4);
  });

  it("finds its way under the default concurrency too", async () => {
    await fake.start({ latencyMs: 150, context: { tokens: 2000 } });
    await makeDistinctImages(ws.dir, 24);
    const result = await run(["photos", "-o", "out.csv"]);
    expect(result.code, result.stderr).toBe(0);
    expect(await readCsv(path.join(ws.dir, "out.csv"))).toHaveLength(24);
    expect(result.stderr).toMatch(/came down from \d+ to [1-3] \(it ran out of context/);
  });

  it("fails an image too large for the context alone at once, and explains it once", async () => {
    // llama.cpp's 400: the prompt alone is larger than the context.
    await fake.start({ context: { tokens: 60 } });
    await makeDistinctImages(ws.dir, 5);
    const result = await run(["photos", "-o", "out.csv", "-c", "2"]);
    expect(result.code, result.stderr).toBe(3);
    // One request an image: nothing retried.
    expect(fake.requests).toHaveLength(5);
    const failures = await readJsonl(path.join(ws.dir, "out.errors.jsonl"));
    expect(failures).toHaveLength(5);
    for (const failure of failures) expect(failure.code).toBe("context_exceeded");
    const advice = result.stderr.match(/has too little context for one image at a time/g) ?? [];
    expect(advice).toHaveLength(1);
    expect(result.stderr).toMatch(/it has 60 tokens for a request/);
    expect(result.stderr).toMatch(/--max-side/);
    // The prompt alone fills the context: a smaller answer would not help, so it is not offered.
    expect(result.stderr).toMatch(/a prompt of \d+ tokens/);
    expect(result.stderr).not.toMatch(/--max-tokens/);
    expect(result.stderr).toMatch(/-np\/--parallel/);
    expect(result.stderr).toMatch(/--max-model-len/);
  });

  it("fails an image that runs out of context alone, after two waits rather than six attempts", async () => {
    // Its prompt fits, but not with its 512 tokens of answer: llama.cpp's 500 even alone. The
    // model list says how much context there is, as llama.cpp's does.
    await fake.start({
      context: { tokens: 300 },
      models: [{ id: "tiny-vlm", owned_by: "llamacpp", meta: { n_ctx: 300 } }],
    });
    await makeDistinctImages(ws.dir, 2);
    const result = await run(["photos", "-o", "out.csv", "-c", "1"]);
    expect(result.code, result.stderr).toBe(3);
    const failures = await readJsonl(path.join(ws.dir, "out.errors.jsonl"));
    expect(failures).toHaveLength(2);
    for (const failure of failures) {
      expect(failure.code).toBe("context_exceeded");
      expect(failure.attempts).toBe(1);
    }
    // Sent three times each: twice more after a wait, in case another client held the context.
    expect(fake.requests).toHaveLength(6);
    expect(result.stderr.match(/has too little context for one image at a time/g)).toHaveLength(1);
    expect(result.stderr).toMatch(/max_tokens 512/);
    expect(result.stderr).toMatch(/its model list gives 300 tokens of context/);
  });

  it("captions every image when two runs share a server whose context holds one request", async () => {
    // Each run is alone in its process; the other run holds the context. Before, each image
    // refused that way failed at once as too large.
    await fake.start({ latencyMs: 300, context: { tokens: 700 } });
    await makeDistinctImages(ws.dir, 4, "one");
    await makeDistinctImages(ws.dir, 4, "two");
    const [first, second] = await Promise.all([
      run(["one", "-o", "one.csv", "-c", "1"]),
      run(["two", "-o", "two.csv", "-c", "1"]),
    ]);
    expect(first.code, first.stderr).toBe(0);
    expect(second.code, second.stderr).toBe(0);
    expect(await readCsv(path.join(ws.dir, "one.csv"))).toHaveLength(4);
    expect(await readCsv(path.join(ws.dir, "two.csv"))).toHaveLength(4);
    const refused = fake.requests.filter((request) => request.behavior === "status");
    expect(refused.length).toBeGreaterThan(0);
    expect(first.stderr + second.stderr).toMatch(/ran out of context \(\d+ requests? sent again\)/);
  });

  it("says the same of vLLM's words, naming its sizes", async () => {
    await fake.start({ context: { tokens: 400, server: "vllm" } });
    await makeDistinctImages(ws.dir, 3);
    const result = await run(["photos", "-o", "out.csv", "-c", "1"]);
    expect(result.code, result.stderr).toBe(3);
    expect(fake.requests).toHaveLength(3);
    expect(result.stderr).toMatch(/it has 400 tokens for a request/);
    expect(result.stderr).toMatch(/a request of \d+ tokens/);
    expect(result.stderr).toMatch(/a smaller --max-tokens/);
    const failures = await readJsonl(path.join(ws.dir, "out.errors.jsonl"));
    for (const failure of failures) expect(failure.code).toBe("context_exceeded");
  });
});

const havePeer = existsSync(LLAMA_PEER);
if (!havePeer && process.env.CI) {
  throw new Error(`CI: the llama.cpp peer is not at ${LLAMA_PEER}; CI must run beside ../shared`);
}

describe.skipIf(!havePeer)("a run against the real llama.cpp server (MiniCPM-V pair)", () => {
  const ws = useWorkspace({ scope: "all" });
  let server: ChildProcess | null = null;
  let baseUrl = "";
  let log = "";

  beforeAll(async () => {
    await writeVariedPhotos(path.join(ws.dir, "photos"), 40);
    log = path.join(ws.dir, "llama.log");
    await mkdir(path.dirname(log), { recursive: true });
    ({ server, baseUrl } = await startLlamaPeer(log));
  }, 120_000);

  afterAll(async () => {
    server?.kill("SIGTERM");
  });

  const run = (args: string[]) =>
    runCli(args, { cwd: ws.dir, baseUrl, env: { MINICPM_API_KEY: "k-peer" } });

  it.each([
    ["-c 4", ["-c", "4"], 4],
    ["the default concurrency", [], 8],
  ] as const)(
    "captions 40 varied photos with %s, coming down where the server ran out of context",
    async (_name, flags, start) => {
      const out = `out-${start}.csv`;
      const result = await run(["photos", "-o", out, ...flags]);
      expect(result.code, result.stderr).toBe(0);
      const rows = await readCsv(path.join(ws.dir, out));
      expect(rows).toHaveLength(40);
      // The first four photos in flight are large (nine slices each, about 700 prompt tokens)
      // and each answer runs to 512 tokens: together more than the 4096 the server has.
      const said = await readFile(log, "utf8");
      expect(said).toMatch(/Context size has been exceeded|failed to process mtmd chunk/);
      expect(result.stderr).toMatch(
        new RegExp(`came down from ${start} to [1-3] \\(it ran out of context`),
      );
    },
    240_000,
  );
});
