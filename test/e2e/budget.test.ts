import path from "node:path";
import { describe, expect, it } from "vitest";
import { fakeTotals } from "../helpers/fake-endpoint/usage.js";
import { useFakeEndpoint } from "../helpers/fake-endpoint/use.js";
import { jsonSummaryOf, runCli } from "../helpers/run-cli.js";
import {
  expectOneRowEach,
  makeDistinctImages,
  readCsv,
  useWorkspace,
} from "../helpers/workspace.js";

const ws = useWorkspace();
const fake = useFakeEndpoint("manual");

/** Tokens the fake said its answers cost, prompt and completion together. */
function tokensSent(): number {
  const totals = fakeTotals(fake);
  return totals.prompt + totals.completion;
}

describe("a budget", () => {
  it("stops sending once the next image would pass it, within an image per request in flight, and a rerun goes on", async () => {
    const images = await makeDistinctImages(ws.dir, 40);
    await fake.start({ latencyMs: 30 });
    // Some five images' worth: each costs about 35 tokens, its prompt and caption together.
    const budget = 180;
    const first = await runCli(
      ["photos", "-o", "out.csv", "-c", "4", "--budget-tokens", String(budget)],
      { cwd: ws.dir, baseUrl: fake.baseUrl },
    );
    expect(first.code, first.stderr).toBe(4);
    const spent = tokensSent();
    const answers = fake.requests.length;
    const perImage = spent / answers;
    // It may pass the budget only by what was already in flight when it stopped: -c 4.
    expect(spent).toBeLessThanOrEqual(budget + 4 * perImage);
    expect(spent).toBeGreaterThan(budget - 2 * perImage);
    const kept = await readCsv(path.join(ws.dir, "out.csv"));
    expect(kept.length).toBe(answers);
    expect(kept.length).toBeLessThan(images.length);
    expect(first.stderr).toMatch(
      new RegExp(
        `budget of ${budget} tokens reached \\(${spent} spent\\): ${answers} captioned, 0 failed.*${images.length - answers} left for the next run`,
      ),
    );

    // A fresh budget goes on where it stopped, and never sends an image twice.
    fake.resetStats();
    const rest = await runCli(["photos", "-o", "out.csv", "--budget-tokens", "1000000"], {
      cwd: ws.dir,
      baseUrl: fake.baseUrl,
    });
    expect(rest.code, rest.stderr).toBe(0);
    expect(fake.requests.length).toBe(images.length - answers);
    expectOneRowEach(await readCsv(path.join(ws.dir, "out.csv")), images);
  });

  it("keeps a looping answer it paid for when the budget stops the retry that would replace it", async () => {
    await makeDistinctImages(ws.dir, 3);
    // The first answer loops: a retry with a penalty would follow, but that answer alone passes
    // the budget, so nothing more is sent and the paid answer is kept with its flag.
    await fake.start({
      script: [{ kind: "ok", content: "a cat a cat a cat a cat a cat a cat a cat a cat a cat" }],
    });
    const result = await runCli(["photos", "-o", "out.csv", "-c", "1", "--budget-tokens", "10"], {
      cwd: ws.dir,
      baseUrl: fake.baseUrl,
    });
    expect(result.code, result.stderr).toBe(4);
    expect(fake.requests).toHaveLength(1);
    const rows = await readCsv(path.join(ws.dir, "out.csv"));
    expect(rows).toHaveLength(1);
    expect(rows[0]?.flags).toContain("repetition");
  });

  it("stops on cost at the prices given, and refuses a budget of nothing", async () => {
    await makeDistinctImages(ws.dir, 30);
    await fake.start({ latencyMs: 20 });
    // At 1000 a million tokens, about 0.035 an image: 0.1 is some three images.
    const result = await runCli(
      [
        "photos",
        "-o",
        "out.csv",
        "-c",
        "2",
        "--input-price",
        "1000",
        "--output-price",
        "1000",
        "--budget-cost",
        "0.1",
      ],
      { cwd: ws.dir, baseUrl: fake.baseUrl },
    );
    expect(result.code, result.stderr).toBe(4);
    expect(result.stderr).toMatch(/budget of 0\.1 reached \(0\.\d+ spent\)/);
    expect(fake.requests.length).toBeLessThan(30);
    const refused = await runCli(
      ["photos", "-o", "out.csv", "--budget-cost", "0", "--input-price", "1"],
      { cwd: ws.dir, baseUrl: fake.baseUrl },
    );
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/--budget-cost: .*(more than|greater than|over) 0/);
    const unpriced = await runCli(["photos", "-o", "out.csv", "--budget-cost", "5"], {
      cwd: ws.dir,
      baseUrl: fake.baseUrl,
    });
    expect(unpriced.code).toBe(2);
    expect(unpriced.stderr).toMatch(/--budget-cost: .*--input-price/);
  });

  it("that the last images in flight pass holds nothing back: exit 0, no budget line", async () => {
    const images = await makeDistinctImages(ws.dir, 3);
    await fake.start({ latencyMs: 50 });
    // All three are in flight at once; the first answer puts the next past the budget.
    const result = await runCli(
      ["photos", "-o", "out.csv", "-c", "8", "--budget-tokens", "60", "--log-format", "json"],
      { cwd: ws.dir, baseUrl: fake.baseUrl },
    );
    expect(result.code, result.stderr).toBe(0);
    expectOneRowEach(await readCsv(path.join(ws.dir, "out.csv")), images);
    const summary = jsonSummaryOf(result.stderr);
    expect(summary.budget_reached).toBeNull();
    expect(String(summary.message)).not.toMatch(/budget|interrupted/);
  });
});
