import { writeFile } from "node:fs/promises";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { fakeTotals } from "../helpers/fake-endpoint/usage.js";
import { useFakeEndpoint } from "../helpers/fake-endpoint/use.js";
import { runCli } from "../helpers/run-cli.js";
import { makeDistinctImages, readCsv, readJsonl, useWorkspace } from "../helpers/workspace.js";

const ws = useWorkspace();
const fake = useFakeEndpoint("manual");

interface Range {
  low: number;
  expected: number;
  high: number;
}

describe("caption estimate", () => {
  it("forecasts the prompt tokens of 2,000 images of very different sizes within 10 % of the real run's, which then sends none of the sample again", async () => {
    // Thumbnails, medium images, and photos larger than the pixel budget (shrunk to it): a mean
    // per image would be as wrong as the sample's mix is unlike the whole.
    await makeDistinctImages(ws.dir, 1200, "thumbs", 24);
    await makeDistinctImages(ws.dir, 500, "medium", 200);
    await makeDistinctImages(ws.dir, 300, "large", 700);
    await fake.start({});
    const settings = ["-o", "out.jsonl", "--max-pixels", "100000", "-c", "16"];
    const estimate = await runCli(
      ["estimate", "thumbs", "medium", "large", ...settings, "--json"],
      {
        cwd: ws.dir,
        baseUrl: fake.baseUrl,
      },
    );
    expect(estimate.code, estimate.stderr).toBe(0);
    const forecast = JSON.parse(estimate.stdout) as {
      images: Record<string, number>;
      prompt_tokens: Range;
      completion_tokens: Range;
      seconds: Range;
    };
    expect(forecast.images).toEqual({
      found: 2000,
      alreadyDone: 0,
      sampled: 20,
      left: 1980,
      unreadable: 0,
    });
    expect(fake.requests).toHaveLength(20);
    expect(await readJsonl(path.join(ws.dir, "out.jsonl"))).toHaveLength(20);
    expect(forecast.prompt_tokens.low).toBeLessThanOrEqual(forecast.prompt_tokens.expected);
    expect(forecast.prompt_tokens.high).toBeGreaterThanOrEqual(forecast.prompt_tokens.expected);
    expect(forecast.seconds.expected).toBeGreaterThan(0);

    const run = await runCli(["thumbs", "medium", "large", ...settings], {
      cwd: ws.dir,
      baseUrl: fake.baseUrl,
    });
    expect(run.code, run.stderr).toBe(0);
    // The sample's rows stood: the run sent only the other 1,980.
    expect(fake.requests).toHaveLength(2000);
    const rows = await readJsonl(path.join(ws.dir, "out.jsonl"));
    expect(rows).toHaveLength(2000);
    const actual = rows.reduce((sum, row) => sum + Number(row.prompt_tokens), 0);
    expect(actual).toBe(fakeTotals(fake).prompt);
    expect(Math.abs(forecast.prompt_tokens.expected - actual) / actual).toBeLessThan(0.1);
    const completion = rows.reduce((sum, row) => sum + Number(row.completion_tokens), 0);
    expect(Math.abs(forecast.completion_tokens.expected - completion) / completion).toBeLessThan(
      0.1,
    );
  });

  it("prints the forecast with its ranges and the cost at the prices given", async () => {
    await makeDistinctImages(ws.dir, 12, "photos", 40);
    await fake.start({});
    const result = await runCli(
      [
        "estimate",
        "photos",
        "-o",
        "out.csv",
        "--sample",
        "5",
        "--input-price",
        "2",
        "--output-price",
        "8",
      ],
      { cwd: ws.dir, baseUrl: fake.baseUrl },
    );
    expect(result.code, result.stderr).toBe(0);
    expect(fake.requests).toHaveLength(5);
    expect(result.stdout).toContain(
      "estimate for the 12 images of the inputs: 0 already in OUT, 5 in this sample (their rows are in OUT), 7 left",
    );
    expect(result.stdout).toMatch(/^ {2}tokens in +[\d,]+ {3}\([\d,]+ to [\d,]+\)$/m);
    expect(result.stdout).toMatch(/^ {2}tokens out +[\d,]+ {3}\(/m);
    expect(result.stdout).toMatch(/^ {2}time +[\d.]+ s {3}\(/m);
    expect(result.stdout).toMatch(/^ {2}cost +0\.\d+ {3}\(0\.\d+ to 0\.\d+\)$/m);
    // The sample's run says what it did, as a run does.
    expect(result.stderr).toContain("5 captioned");

    // Once everything is in OUT, there is nothing left to forecast, and nothing is sent.
    await runCli(["photos", "-o", "out.csv"], { cwd: ws.dir, baseUrl: fake.baseUrl });
    const again = await runCli(["estimate", "photos", "-o", "out.csv", "--json"], {
      cwd: ws.dir,
      baseUrl: fake.baseUrl,
    });
    expect(again.code, again.stderr).toBe(0);
    expect(fake.requests).toHaveLength(12);
    expect(JSON.parse(again.stdout)).toMatchObject({
      images: { found: 12, alreadyDone: 12, sampled: 0, left: 0 },
      rest: null,
    });
  });

  it("forecasts what a prompt added to --prompts will cost, not the rows' earlier answers", async () => {
    await makeDistinctImages(ws.dir, 30, "photos", 60);
    await fake.start({});
    await writeFile(path.join(ws.dir, "two.yaml"), "short: One sentence.\nlong: Every detail.\n");
    const first = await runCli(["photos", "-o", "out.csv", "--prompts", "two.yaml"], {
      cwd: ws.dir,
      baseUrl: fake.baseUrl,
    });
    expect(first.code, first.stderr).toBe(0);
    await writeFile(
      path.join(ws.dir, "three.yaml"),
      "short: One sentence.\nlong: Every detail.\ncolours: Name the colours.\n",
    );
    const estimate = await runCli(
      ["estimate", "photos", "-o", "out.csv", "--prompts", "three.yaml", "--sample", "5", "--json"],
      { cwd: ws.dir, baseUrl: fake.baseUrl },
    );
    expect(estimate.code, estimate.stderr).toBe(0);
    const forecast = JSON.parse(estimate.stdout) as { prompt_tokens: Range };
    fake.resetStats();
    const run = await runCli(["photos", "-o", "out.csv", "--prompts", "three.yaml"], {
      cwd: ws.dir,
      baseUrl: fake.baseUrl,
    });
    expect(run.code, run.stderr).toBe(0);
    expect(fake.requests).toHaveLength(25);
    const sample = (await readCsv(path.join(ws.dir, "out.csv"))).length;
    expect(sample).toBe(30);
    // The whole forecast: the sample's five requests, and the 25 the run sent.
    const rest = fakeTotals(fake).prompt;
    const whole = forecast.prompt_tokens.expected;
    expect(whole).toBeGreaterThan(rest);
    expect(Math.abs(whole - rest * (30 / 25)) / (rest * (30 / 25))).toBeLessThan(0.1);
  });

  it("refuses a sample of no images and --dry-run, naming the flag", async () => {
    await makeDistinctImages(ws.dir, 2);
    const zero = await runCli(["estimate", "photos", "-o", "out.csv", "--sample", "0"], {
      cwd: ws.dir,
    });
    expect(zero.code).toBe(2);
    expect(zero.stderr).toContain("--sample: expected a whole number of images of at least 1");
    const dry = await runCli(["estimate", "photos", "-o", "out.csv", "--dry-run"], {
      cwd: ws.dir,
    });
    expect(dry.code).toBe(2);
    expect(dry.stderr).toContain("--dry-run: no such flag");
  });
});
