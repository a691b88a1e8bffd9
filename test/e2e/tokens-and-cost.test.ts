import { writeFile } from "node:fs/promises";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { fakeTotals } from "../helpers/fake-endpoint/usage.js";
import { useFakeEndpoint } from "../helpers/fake-endpoint/use.js";
import { jsonSummaryOf, runCli } from "../helpers/run-cli.js";
import { makeDistinctImages, readCsv, readJsonl, useWorkspace } from "../helpers/workspace.js";

const ws = useWorkspace();
const fake = useFakeEndpoint("manual");

describe("tokens and cost", () => {
  it("totals every answer the servers counted, retried ones too, and says the mean of an image", async () => {
    // Images of very different sizes cost different prompt tokens, as on a real server.
    await makeDistinctImages(ws.dir, 6, "small", 32);
    await makeDistinctImages(ws.dir, 3, "large", 600);
    // The first answer loops; its retry with a penalty is kept. Both cost tokens.
    await fake.start({
      script: [
        {
          kind: "ok",
          content:
            "the the the the the the the the the the the the the the the the the the the the the the the the the the the the the the",
        },
      ],
    });
    const result = await runCli(["small", "large", "-o", "out.jsonl", "--log-format", "json"], {
      cwd: ws.dir,
      baseUrl: fake.baseUrl,
    });
    expect(result.code, result.stderr).toBe(0);
    const expected = fakeTotals(fake);
    expect(expected.answers).toBe(10);
    const summary = jsonSummaryOf(result.stderr);
    expect(summary.tokens).toEqual({
      answers: 10,
      prompt: expected.prompt,
      completion: expected.completion,
      reasoning: 0,
      // The mean of an image: nine images, one of them asked twice.
      mean_prompt: Math.round((expected.prompt / 9) * 10) / 10,
      mean_completion: Math.round((expected.completion / 9) * 10) / 10,
    });
    expect(summary.cost).toBeNull();
    expect(summary.message).toContain(`tokens ${expected.prompt} in, ${expected.completion} out`);
    // A 600-pixel image costs far more prompt tokens than a 32-pixel one.
    const rows = await readJsonl(path.join(ws.dir, "out.jsonl"));
    const tokensOf = (prefix: string) =>
      rows
        .filter((row) => String(row.path).startsWith(prefix))
        .map((row) => Number(row.prompt_tokens));
    expect(Math.min(...tokensOf("large/"))).toBeGreaterThan(10 * Math.max(...tokensOf("small/")));
  });

  it("counts answers whose text is no caption too: JSON that does not match, a reply cut off thinking", async () => {
    await makeDistinctImages(ws.dir, 4);
    await writeFile(
      path.join(ws.dir, "schema.json"),
      JSON.stringify({
        type: "object",
        properties: { caption: { type: "string" } },
        required: ["caption"],
      }),
    );
    // Two answers that are no JSON at all, then one cut off mid-thought: each is billed, none kept.
    await fake.start({
      script: [
        { kind: "ok", content: "Sorry, here is prose." },
        { kind: "ok", content: "Still prose, not JSON." },
        { kind: "ok", content: null, reasoning: "thinking and thinking", finishReason: "length" },
      ],
    });
    const result = await runCli(
      ["photos", "-o", "out.jsonl", "--json-schema", "schema.json", "--log-format", "json"],
      { cwd: ws.dir, baseUrl: fake.baseUrl },
    );
    expect([0, 3]).toContain(result.code);
    const expected = fakeTotals(fake);
    expect(expected.answers).toBeGreaterThan(4);
    expect(jsonSummaryOf(result.stderr).tokens).toMatchObject({
      answers: expected.answers,
      prompt: expected.prompt,
      completion: expected.completion,
    });
  });

  it("keeps a Thinking model's reasoning tokens in each row and in the totals", async () => {
    await makeDistinctImages(ws.dir, 3);
    await fake.start({
      script: Array.from({ length: 3 }, () => ({
        kind: "ok" as const,
        content: "A red square.",
        reasoning: "It looks red to me, and square.",
      })),
    });
    const result = await runCli(["photos", "-o", "out.csv", "--log-format", "json"], {
      cwd: ws.dir,
      baseUrl: fake.baseUrl,
    });
    expect(result.code, result.stderr).toBe(0);
    const rows = await readCsv(path.join(ws.dir, "out.csv"));
    expect(rows.map((row) => row.reasoning_tokens)).toEqual(["7", "7", "7"]);
    expect(rows.map((row) => row.completion_tokens)).toEqual(["10", "10", "10"]);
    expect(jsonSummaryOf(result.stderr).tokens).toMatchObject({ reasoning: 21, completion: 30 });
  });

  it("prices each endpoint's tokens at its own prices, and the run's where it names none", async () => {
    await makeDistinctImages(ws.dir, 12);
    const cheap = await fake.startAnother({ latencyMs: 20 });
    const dear = await fake.startAnother({ latencyMs: 20 });
    await writeFile(
      path.join(ws.dir, "two.json"),
      JSON.stringify({
        inputPrice: 1,
        outputPrice: 2,
        endpoints: [
          { baseUrl: cheap.baseUrl },
          { baseUrl: dear.baseUrl, inputPrice: 10, outputPrice: 40 },
        ],
      }),
    );
    const result = await runCli(
      ["photos", "-o", "out.csv", "--config", "two.json", "--log-format", "json"],
      { cwd: ws.dir },
    );
    expect(result.code, result.stderr).toBe(0);
    const a = fakeTotals(cheap);
    const b = fakeTotals(dear);
    expect(a.answers + b.answers).toBe(12);
    // Both took some, so each endpoint's prices were used.
    expect(a.answers).toBeGreaterThan(0);
    expect(b.answers).toBeGreaterThan(0);
    const cost = (a.prompt * 1 + a.completion * 2 + b.prompt * 10 + b.completion * 40) / 1e6;
    const summary = jsonSummaryOf(result.stderr);
    expect(summary.cost).toBeCloseTo(cost, 12);
    expect(summary.message).toMatch(/, cost 0\.\d+/);
  });

  it("refuses a price that is not a number of zero or more, naming where it is", async () => {
    await makeDistinctImages(ws.dir, 1);
    await writeFile(
      path.join(ws.dir, "bad.json"),
      JSON.stringify({ endpoints: [{ baseUrl: "http://127.0.0.1:9/v1", outputPrice: -1 }] }),
    );
    const result = await runCli(
      ["photos", "-o", "out.csv", "--config", "bad.json", "--input-price", "cheap"],
      { cwd: ws.dir },
    );
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/endpoints\[0\]\.outputPrice: /);
    expect(result.stderr).toMatch(/--input-price: /);
  });
});
