/**
 * The hosted API as each revision of the provider's guide has it, through the real CLI: its model
 * ids changed with each revision (issue 21), and a run with no `-m`, or with a family's short
 * name, must caption whichever revision the server is at.
 */
import path from "node:path";
import { describe, expect, it } from "vitest";
import { useFakeEndpoint } from "../helpers/fake-endpoint/use.js";
import {
  GUIDE_REVISIONS,
  REVISION_MODELS,
  THINKING_TOKENS,
  THINKING_TRACE,
} from "../helpers/guide-revisions.js";
import { runCli } from "../helpers/run-cli.js";
import { makeDistinctImages, readCsv, readJsonl, useWorkspace } from "../helpers/workspace.js";

const ws = useWorkspace();
const fake = useFakeEndpoint("manual");

const run = (args: string[]) => runCli(args, { cwd: ws.dir, baseUrl: fake.current?.baseUrl ?? "" });
const sentModels = () => [...new Set(fake.current?.requests.map((request) => request.model))];

describe.each(GUIDE_REVISIONS)("the hosted API of the guide's %s revision", (revision) => {
  const served = REVISION_MODELS[revision];

  it("captions with no -m, asking for that revision's instruct id", async () => {
    await fake.start({ revision });
    await makeDistinctImages(ws.dir, 2);
    const result = await run(["photos", "-o", "out.csv"]);
    expect(result.code, result.stderr).toBe(0);
    const rows = await readCsv(path.join(ws.dir, "out.csv"));
    expect(rows.map((row) => row.model)).toEqual([served.instruct, served.instruct]);
    expect(sentModels()).toEqual([served.instruct]);
    // An alias (the default is one) is no news: the rows say which id answered.
    expect(result.stderr).not.toMatch(/asking it for/);
  });

  it("captions with no -m and no model list, trying the family's ids in turn", async () => {
    await fake.start({ revision, noModels: true });
    await makeDistinctImages(ws.dir, 3);
    const result = await run(["photos", "-o", "out.csv", "-c", "2"]);
    expect(result.code, result.stderr).toBe(0);
    const rows = await readCsv(path.join(ws.dir, "out.csv"));
    expect(rows.map((row) => row.model)).toEqual([
      served.instruct,
      served.instruct,
      served.instruct,
    ]);
    // Each refused id is said once; none cost an image its attempts.
    for (const row of rows) expect(row.attempts).toBe("1");
    const switches = result.stderr.match(/lists no models and says .* does not exist/g) ?? [];
    expect(switches.length).toBe(sentModels().indexOf(served.instruct));
  });

  it("check answers with no model list too, trying the family's ids as a run does", async () => {
    await fake.start({ revision, noModels: true });
    const result = await run(["check"]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr).toContain(`answered as ${served.instruct}`);
  });

  it("resolves thinking, omni and v4.5 where the revision serves them", async () => {
    await fake.start({ revision });
    await makeDistinctImages(ws.dir, 1);
    const wanted: [string, string | undefined][] = [
      ["thinking", served.thinking],
      ["omni", served.omni],
      ["v4.5", served.v45],
    ];
    for (const [alias, id] of wanted) {
      const out = `${alias}.csv`;
      const result = await run(["photos", "-o", out, "-m", alias]);
      if (id === undefined) {
        // Not in this revision's list of several: refused before any image, as any unknown id.
        expect(result.code, alias).toBe(2);
        expect(result.stderr).toMatch(new RegExp(`--model: .* does not serve the ${alias} model`));
        continue;
      }
      expect(result.code, `${alias}: ${result.stderr}`).toBe(0);
      const [row] = await readCsv(path.join(ws.dir, out));
      expect(row?.model).toBe(id);
      expect(fake.requests.at(-1)?.model).toBe(id);
    }
  });

  it("keeps the Thinking model's reasoning out of the caption", async () => {
    await fake.start({ revision });
    await makeDistinctImages(ws.dir, 2);
    const result = await run(["photos", "-o", "out.jsonl", "-m", "thinking"]);
    expect(result.code, result.stderr).toBe(0);
    const rows = await readJsonl(path.join(ws.dir, "out.jsonl"));
    expect(rows).toHaveLength(2);
    for (const row of rows) {
      expect(row.model).toBe(served.thinking);
      expect(String(row.caption)).toMatch(/^A test caption for [0-9a-f]{12}\.$/);
      expect(String(row.caption)).not.toContain(THINKING_TRACE);
    }
    // The Thinking budget, which leaves the fake room to answer after reasoning.
    expect((fake.requests[0]?.body as { max_tokens?: number } | undefined)?.max_tokens).toBe(2048);
  });

  it("fails a Thinking reply cut off while reasoning as truncated_thinking", async () => {
    await fake.start({ revision });
    await makeDistinctImages(ws.dir, 1);
    const result = await run([
      "photos",
      "-o",
      "out.csv",
      "-m",
      "thinking",
      "--max-tokens",
      String(THINKING_TOKENS / 2),
    ]);
    expect(result.code).toBe(3);
    const [failure] = await readJsonl(path.join(ws.dir, "out.errors.jsonl"));
    expect(failure?.code).toBe("truncated_thinking");
    expect(String(failure?.message)).toMatch(/raise --max-tokens/);
    expect(result.stdout + result.stderr).not.toContain(THINKING_TRACE);
  });
});

describe("the hosted API of the guide's 2026-07-23 revision", () => {
  const served = REVISION_MODELS["2026-07-23"];

  it("puts the Thinking model's reasoning in message.reasoning, as that revision says", async () => {
    await fake.start({ revision: "2026-07-23" });
    const ask = async (model: string) => {
      const response = await fetch(`${fake.baseUrl}/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ model, messages: [{ role: "user", content: "hi" }] }),
      });
      return {
        status: response.status,
        body: (await response.json()) as {
          choices?: { message: { content: string | null; reasoning?: string } }[];
          error?: { code: string };
        },
      };
    };
    const thinking = await ask(served.thinking);
    expect(thinking.body.choices?.[0]?.message).toEqual({
      role: "assistant",
      content: "ready",
      reasoning: THINKING_TRACE,
    });
    // The ids an earlier revision gave are gone from this one, as vLLM says of any unknown id.
    const old = await ask("MiniCPM-V-4.6-Instruct");
    expect(old.status).toBe(404);
    expect(old.body.error?.code).toBe("model_not_found");
  });

  it("asks for MiniCPM-V-4.6-1B when -m names the earlier MiniCPM-V-4.6-Instruct, in one line", async () => {
    await fake.start({ revision: "2026-07-23" });
    await makeDistinctImages(ws.dir, 2);
    const result = await run(["photos", "-o", "out.csv", "-m", "MiniCPM-V-4.6-Instruct"]);
    expect(result.code, result.stderr).toBe(0);
    const said = result.stderr
      .split("\n")
      .filter((line) => /MiniCPM-V-4\.6-Instruct/.test(line) && /MiniCPM-V-4\.6-1B/.test(line));
    expect(said).toEqual([
      `caption: ${fake.baseUrl} serves the instruct model as MiniCPM-V-4.6-1B, not MiniCPM-V-4.6-Instruct: asking it for MiniCPM-V-4.6-1B`,
    ]);
    const rows = await readCsv(path.join(ws.dir, "out.csv"));
    expect(rows.map((row) => row.model)).toEqual([served.instruct, served.instruct]);
    expect(sentModels()).toEqual(["MiniCPM-V-4.6-1B"]);
  });

  it("refuses an id of no family it does not list, exit 2 with suggestions, before any image", async () => {
    await fake.start({ revision: "2026-07-23" });
    await makeDistinctImages(ws.dir, 3);
    const result = await run(["photos", "-o", "out.csv", "-m", "MiniCPM-V-4.6-2B"]);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(
      /--model: .* does not serve MiniCPM-V-4\.6-2B \(did you mean MiniCPM-V-4\.6-1B\?\); it serves MiniCPM-V-4\.5-9B, MiniCPM-V-4\.6-1B, MiniCPM-V-4\.6-Thinking, MiniCPM-O-4\.5-9B/,
    );
    expect(fake.requests).toHaveLength(0);
  });

  it("fails a reply with reasoning but no caption as empty_caption", async () => {
    await fake.start({
      revision: "2026-07-23",
      respond: () => ({ kind: "ok", content: "", reasoning: THINKING_TRACE, finishReason: "stop" }),
    });
    await makeDistinctImages(ws.dir, 1);
    const result = await run(["photos", "-o", "out.csv", "-m", "thinking"]);
    expect(result.code).toBe(3);
    const [failure] = await readJsonl(path.join(ws.dir, "out.errors.jsonl"));
    expect(failure?.code).toBe("empty_caption");
    expect(String(failure?.message)).toMatch(/the reply held only reasoning/);
    expect(sentModels()).toEqual([served.thinking]);
  });

  it("captions with no -m where the server gives no list, asking for the newest instruct id", async () => {
    await fake.start({ revision: "2026-07-23", noModels: true });
    await makeDistinctImages(ws.dir, 2);
    const result = await run(["photos", "-o", "out.csv"]);
    expect(result.code, result.stderr).toBe(0);
    const rows = await readCsv(path.join(ws.dir, "out.csv"));
    expect(rows.map((row) => row.model)).toEqual([served.instruct, served.instruct]);
  });

  it("check answers as the listed instruct id", async () => {
    await fake.start({ revision: "2026-07-23" });
    const result = await run(["check"]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr).toMatch(/answered as MiniCPM-V-4\.6-1B in \d+ ms/);
    const refused = await run(["check", "-m", "v4.6"]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/--model: .* does not serve v4\.6/);
  });

  it("caption models says which short name each id answers to", async () => {
    await fake.start({ revision: "2026-07-23" });
    const result = await run(["models"]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout.trimEnd().split("\n")).toEqual([
      "MiniCPM-V-4.5-9B\tvllm\t(v4.5)",
      "MiniCPM-V-4.6-1B\tvllm\t(instruct, the default)",
      "MiniCPM-V-4.6-Thinking\tvllm\t(thinking)",
      "MiniCPM-O-4.5-9B\tvllm\t(omni)",
    ]);
    // Scripts that take the first field still get the ids.
    expect(result.stdout.split("\n").map((line) => line.split("\t")[0])).toContain(served.instruct);
  });
});
