/**
 * Degenerate captions through the real CLI: a loop or a refusal is asked again once with a
 * penalty on repetition; what stays degenerate is kept with its flags in every output, or fails
 * with --reject-flagged and is asked again on the next run.
 */
import { readFile } from "node:fs/promises";
import path from "node:path";
import { parse } from "csv-parse/sync";
import { describe, expect, it } from "vitest";
import { useFakeEndpoint } from "../helpers/fake-endpoint/use.js";
import { runCli } from "../helpers/run-cli.js";
import { makeDistinctImages, readCsv, readJsonl, useWorkspace } from "../helpers/workspace.js";

const ws = useWorkspace();
const fake = useFakeEndpoint("manual");

const run = (args: string[]) => runCli(args, { cwd: ws.dir, baseUrl: fake.current?.baseUrl ?? "" });
const requests = () => fake.current?.requests ?? [];

describe("degenerate captions", () => {
  it("asks a looping caption again once with a frequency penalty, and keeps the clean answer unflagged", async () => {
    await fake.start({ degenerate: "loop", degenerateUnlessPenalized: true });
    await makeDistinctImages(ws.dir, 1);
    const result = await run(["photos", "-o", "out.csv", "--temperature", "0.3"]);
    expect(result.code, result.stderr).toBe(0);
    expect(requests()).toHaveLength(2);
    expect(requests()[0]?.frequencyPenalty).toBeNull();
    expect(requests()[1]?.frequencyPenalty).toBeGreaterThan(0);
    const temperatures = requests().map(
      (request) => (request.body as { temperature: number }).temperature,
    );
    expect(temperatures[1]).toBeGreaterThan(temperatures[0] ?? 0);
    const [row] = await readCsv(path.join(ws.dir, "out.csv"));
    expect(row?.caption).toMatch(/^A test caption/);
    expect(row?.flags).toBe("");
    expect(row?.attempts).toBe("2");
    expect(result.stderr).not.toMatch(/flagged/);
  });

  it("keeps a caption that stays a loop, flagged in OUT, in the metadata and in the summary", async () => {
    await fake.start({ degenerate: "loop" });
    await makeDistinctImages(ws.dir, 2);
    const result = await run(["photos", "-o", "out.jsonl", "--hf-metadata", "csv"]);
    expect(result.code, result.stderr).toBe(0);
    expect(requests()).toHaveLength(4);
    const rows = await readJsonl(path.join(ws.dir, "out.jsonl"));
    expect(rows.map((row) => row.flags)).toEqual([["repetition"], ["repetition"]]);
    const metadata = parse(await readFile(path.join(ws.dir, "photos", "metadata.csv"), "utf8"), {
      columns: true,
    }) as Record<string, string>[];
    expect(metadata.map((row) => row.flags)).toEqual(["repetition", "repetition"]);
    expect(result.stderr).toMatch(/2 captioned, 0 failed, flagged: 2 repetition/);
  });

  it("flags a refusal, and --reject-flagged fails it so the next run asks again", async () => {
    await fake.start({ degenerate: "refusal" });
    await makeDistinctImages(ws.dir, 2);
    const rejected = await run(["photos", "-o", "out.csv", "--reject-flagged"]);
    expect(rejected.code).toBe(3);
    const failures = await readJsonl(path.join(ws.dir, "out.errors.jsonl"));
    expect(failures.map((failure) => failure.code)).toEqual(["flagged", "flagged"]);
    expect(String(failures[0]?.message)).toMatch(/flagged \(refusal\).*I'm sorry/);
    expect(failures[0]?.attempts).toBe(2);

    await fake.start({});
    const again = await run(["photos", "-o", "out.csv", "--reject-flagged"]);
    expect(again.code, again.stderr).toBe(0);
    expect(requests()).toHaveLength(2);
    const rows = await readCsv(path.join(ws.dir, "out.csv"));
    expect(rows.map((row) => row.flags)).toEqual(["", ""]);

    await fake.start({ degenerate: "refusal" });
    await makeDistinctImages(ws.dir, 3);
    const kept = await run(["photos", "-o", "out.csv"]);
    expect(kept.code).toBe(0);
    const flagged = (await readCsv(path.join(ws.dir, "out.csv"))).filter((row) => row.flags !== "");
    expect(flagged.map((row) => row.flags)).toEqual(["refusal"]);
  });

  it("asks an empty caption again once with a penalty, then fails it", async () => {
    await fake.start({ respond: () => ({ kind: "ok", content: "  " }) });
    await makeDistinctImages(ws.dir, 1);
    const result = await run(["photos", "-o", "out.csv"]);
    expect(result.code).toBe(3);
    expect(requests()).toHaveLength(2);
    expect(requests()[1]?.frequencyPenalty).toBeGreaterThan(0);
    const [failure] = await readJsonl(path.join(ws.dir, "out.errors.jsonl"));
    expect(failure?.code).toBe("empty_caption");
    expect(failure?.attempts).toBe(2);
  });

  it("marks a reply cut at max_tokens as truncated without asking again", async () => {
    await fake.start({
      respond: () => ({
        kind: "ok",
        content: "A lighthouse on a rocky point, its",
        finishReason: "length",
      }),
    });
    await makeDistinctImages(ws.dir, 1);
    const result = await run(["photos", "-o", "out.csv"]);
    expect(result.code).toBe(0);
    expect(requests()).toHaveLength(1);
    const [row] = await readCsv(path.join(ws.dir, "out.csv"));
    expect(row?.flags).toBe("truncated");
    expect(row?.truncated).toBe("true");
    expect(result.stderr).toMatch(/flagged: 1 truncated/);
  });
});
