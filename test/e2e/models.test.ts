/**
 * Models by name through the real CLI: `caption models`, the aliases, and a wrong model id found
 * before the first image (or at the first answer) instead of failing every image one by one.
 */
import { existsSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { useFakeEndpoint } from "../helpers/fake-endpoint/use.js";
import { FAKE_MODEL_ID } from "../helpers/fake-endpoint.js";
import { runCli } from "../helpers/run-cli.js";
import { makeDistinctImages, readCsv, useWorkspace } from "../helpers/workspace.js";

const ws = useWorkspace();
const fake = useFakeEndpoint("manual");

const run = (args: string[]) => runCli(args, { cwd: ws.dir, baseUrl: fake.current?.baseUrl ?? "" });
const SEVERAL = [
  { id: "MiniCPM-V-4.6-Instruct", owned_by: "vllm", created: 1780000000 },
  { id: "MiniCPM-V-4.6-Thinking", owned_by: "vllm" },
  { id: "Qwen2.5-VL-7B-Instruct", owned_by: "vllm" },
];

describe("caption models", () => {
  it("lists the ids the endpoint serves, one a line, with owner, date and the short name", async () => {
    await fake.start({ models: SEVERAL });
    const result = await run(["models"]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout.trimEnd().split("\n")).toEqual([
      "MiniCPM-V-4.6-Instruct\tvllm\t2026-05-28\t(instruct, the default)",
      "MiniCPM-V-4.6-Thinking\tvllm\t(thinking)",
      "Qwen2.5-VL-7B-Instruct\tvllm",
    ]);
    expect(result.stderr).toMatch(/serves 3 models/);
  });

  it("names the family of a self-hosted server's ids, and which one its short name asks for", async () => {
    await fake.start({
      models: [
        { id: "openbmb/minicpm-v4.6:latest" },
        { id: "MiniCPM-V-4.6-Instruct" },
        { id: "openbmb/minicpm-v4.6-thinking:latest" },
        { id: "llama3.2:latest" },
      ],
    });
    const result = await run(["models"]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout.trimEnd().split("\n")).toEqual([
      "openbmb/minicpm-v4.6:latest\t(of the instruct family; -m instruct asks for MiniCPM-V-4.6-Instruct)",
      "MiniCPM-V-4.6-Instruct\t(instruct, the default)",
      "openbmb/minicpm-v4.6-thinking:latest\t(thinking)",
      "llama3.2:latest",
    ]);
  });

  it("gives up on a /models that never answers within 15 s at most, and says so plainly", async () => {
    await fake.start({ modelsReply: "hang" });
    const result = await run(["models", "--timeout", "2"]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/\/models gave no answer within 2 s/);
    expect(result.stderr).not.toMatch(/\b23\b/);
  });

  it("gives up after 15 s with the default --timeout of two minutes", async () => {
    await fake.start({ modelsReply: "hang" });
    const result = await run(["models"]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/\/models gave no answer within 15 s/);
  }, 40_000);

  it("never shows a password written in the base URL", async () => {
    await fake.start({ models: SEVERAL });
    const withPassword = fake.baseUrl.replace("http://", "http://user:sk-URLSECRET42@");
    const listed = await runCli(["models", "--base-url", withPassword], { cwd: ws.dir });
    expect(listed.code, listed.stderr).toBe(0);
    expect(listed.stderr).toMatch(/serves 3 models/);
    await makeDistinctImages(ws.dir, 1);
    const wrong = await runCli(
      ["photos", "-o", "out.csv", "--base-url", withPassword, "-m", "nope"],
      {
        cwd: ws.dir,
      },
    );
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toMatch(/does not serve nope/);
    for (const result of [listed, wrong]) {
      expect(result.stdout + result.stderr).not.toContain("sk-URLSECRET42");
    }
  });

  it("says so, exit 1, when the endpoint has no /models", async () => {
    await fake.start({ noModels: true });
    const result = await run(["models"]);
    expect(result.code).toBe(1);
    expect(result.stdout).toBe("");
    expect(result.stderr).toMatch(/gave no model list \(.*\/models answered HTTP 404/);
  });
});

describe("the model of a run", () => {
  it("takes instruct, thinking and omni as aliases and records the real id", async () => {
    await fake.start({ models: [...SEVERAL, { id: "MiniCPM-o-4.5" }], rejectUnknownModel: true });
    await makeDistinctImages(ws.dir, 1);
    for (const [alias, id] of [
      ["instruct", "MiniCPM-V-4.6-Instruct"],
      ["thinking", "MiniCPM-V-4.6-Thinking"],
      ["omni", "MiniCPM-o-4.5"],
    ] as const) {
      const result = await run(["photos", "-o", `${alias}.csv`, "-m", alias]);
      expect(result.code, result.stderr).toBe(0);
      const [row] = await readCsv(path.join(ws.dir, `${alias}.csv`));
      expect(row?.model).toBe(id);
      expect(fake.requests.at(-1)?.model).toBe(id);
    }
    // The Thinking alias gets the Thinking budget.
    expect((fake.requests[1]?.body as { max_tokens?: number } | undefined)?.max_tokens).toBe(2048);
  });

  it("asks a self-hosted server for the name it gives the family, with no -m or a short name", async () => {
    await fake.start({
      models: [{ id: "openbmb/MiniCPM-V-4.6" }, { id: "openbmb/MiniCPM-V-4.6-Thinking" }],
      rejectUnknownModel: true,
    });
    await makeDistinctImages(ws.dir, 1);
    for (const [out, args, id] of [
      ["default.csv", [], "openbmb/MiniCPM-V-4.6"],
      ["thinking.csv", ["-m", "thinking"], "openbmb/MiniCPM-V-4.6-Thinking"],
    ] as const) {
      const result = await run(["photos", "-o", out, ...args]);
      expect(result.code, result.stderr).toBe(0);
      const [row] = await readCsv(path.join(ws.dir, out));
      expect(row?.model).toBe(id);
    }
  });

  it("refuses a model id the endpoint does not list, exit 2 with the closest ids, before any image", async () => {
    await fake.start({ models: SEVERAL, rejectUnknownModel: true });
    await makeDistinctImages(ws.dir, 30);
    const result = await run(["photos", "-o", "out.csv", "-m", "MiniCPM-V-4.6-Instruc"]);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(
      /--model: .* does not serve MiniCPM-V-4\.6-Instruc \(did you mean MiniCPM-V-4\.6-Instruct\?\); it serves MiniCPM-V-4\.6-Instruct, MiniCPM-V-4\.6-Thinking, Qwen2\.5-VL-7B-Instruct/,
    );
    expect(fake.requests).toHaveLength(0);
    expect(fake.modelListings).toBe(1);
  });

  it("only warns when the list holds one model, as llama.cpp's does, and goes on", async () => {
    await fake.start({ models: [{ id: "minicpm-v-4.6-q4_k_m.gguf", owned_by: "llamacpp" }] });
    await makeDistinctImages(ws.dir, 3);
    const result = await run(["photos", "-o", "out.csv", "-m", "whatever"]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr).toMatch(
      /lists only the model minicpm-v-4\.6-q4_k_m\.gguf, not whatever; going on/,
    );
    expect(await readCsv(path.join(ws.dir, "out.csv"))).toHaveLength(3);
  });

  it("stops at the first answer that says the model does not exist, exit 2, when there is no list", async () => {
    await fake.start({ noModels: true, rejectUnknownModel: true });
    await makeDistinctImages(ws.dir, 40);
    const result = await run(["photos", "-o", "out.csv", "-m", "MiniCPM-V-4.6-Thinkin", "-c", "4"]);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(
      /says the model MiniCPM-V-4\.6-Thinkin does not exist \(HTTP 404: The model `MiniCPM-V-4\.6-Thinkin` does not exist\.\)/,
    );
    expect(result.stderr).not.toMatch(/failed photos/);
    expect(result.stderr).toMatch(/stopped early: 0 captioned.*; nothing was written to out\.csv/);
    expect(existsSync(path.join(ws.dir, "out.csv"))).toBe(false);
    expect(fake.requests.length).toBeLessThanOrEqual(4);

    // Without /models nothing else changes: the right id captions as always.
    const right = await run(["photos", "-o", "out.csv", "-m", FAKE_MODEL_ID]);
    expect(right.code, right.stderr).toBe(0);
    expect(await readCsv(path.join(ws.dir, "out.csv"))).toHaveLength(40);
  });

  it("goes on when /models answers a web page instead of JSON", async () => {
    await fake.start({ modelsReply: "html" });
    await makeDistinctImages(ws.dir, 3);
    const result = await run(["photos", "-o", "out.csv", "-m", "thinking"]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr).not.toMatch(/does not list|did you mean/);
    const rows = await readCsv(path.join(ws.dir, "out.csv"));
    expect(rows.map((row) => row.model)).toEqual(Array(3).fill("MiniCPM-V-4.6-Thinking"));
  });

  it("gives up on a /models that never answers after a short wait, and captions", async () => {
    await fake.start({ modelsReply: "hang" });
    await makeDistinctImages(ws.dir, 3);
    const result = await run(["photos", "-o", "out.csv", "--timeout", "60"]);
    expect(result.code, result.stderr).toBe(0);
    expect(await readCsv(path.join(ws.dir, "out.csv"))).toHaveLength(3);
    // The check's own short wait, not the run's 60 s request timeout, let it go on.
    expect(fake.modelListings).toBe(1);
  }, 30_000);

  it("asks for a short name the server itself lists rather than the id it stands for", async () => {
    await fake.start({ models: [{ id: "omni" }, { id: "llava" }] });
    await makeDistinctImages(ws.dir, 2);
    const result = await run(["photos", "-o", "out.csv", "-m", "MiniCPM-o-4.5"]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr).toMatch(/lists omni, not MiniCPM-o-4\.5: asking it for omni/);
    const rows = await readCsv(path.join(ws.dir, "out.csv"));
    expect(rows.map((row) => row.model)).toEqual(["omni", "omni"]);
    expect(fake.requests.map((request) => request.model)).toEqual(["omni", "omni"]);
  });

  it("check asks for the short name a server lists, as a run does", async () => {
    await fake.start({ models: [{ id: "omni" }, { id: "llava" }], inspectImages: true });
    const result = await run(["check", "-m", "omni"]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr).toMatch(/answered as omni in/);
    expect(fake.requests.map((request) => request.model)).toEqual(["omni"]);
  });

  it("takes an untagged id for the :latest one Ollama lists", async () => {
    await fake.start({
      models: [{ id: "openbmb/minicpm-v4.6:latest" }, { id: "llama3.2:latest" }],
    });
    await makeDistinctImages(ws.dir, 1);
    const result = await run(["photos", "-o", "out.csv", "-m", "openbmb/minicpm-v4.6"]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr).not.toMatch(/does not serve/);
  });

  it.each([
    [
      "the code model_not_found, whatever the words",
      404,
      {
        error: {
          message: "Model 'instruc' is not available on this server",
          code: "model_not_found",
        },
      },
    ],
    [
      "a 400 that calls the model invalid",
      400,
      { error: { message: "invalid model ID", type: "invalid_request_error" } },
    ],
  ])("stops at the first answer that says so: %s", async (_, status, body) => {
    await fake.start({ noModels: true, respond: () => ({ kind: "status", status, body }) });
    await makeDistinctImages(ws.dir, 12);
    const result = await run(["photos", "-o", "out.csv", "-m", "instruc", "-c", "2"]);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/says the model instruc does not exist/);
    expect(fake.requests.length).toBeLessThanOrEqual(2);
  });
});
