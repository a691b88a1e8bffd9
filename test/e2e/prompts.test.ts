/**
 * Prompt templates and structured answers through the real CLI: what reached the server, what
 * the rows hold (read back by a real CSV parser), and how a server without structured output is
 * worked around.
 */
import { mkdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { parse } from "csv-parse/sync";
import sharp from "sharp";
import { describe, expect, it } from "vitest";
import { useFakeEndpoint } from "../helpers/fake-endpoint/use.js";
import { runCli } from "../helpers/run-cli.js";
import { makeDistinctImages, readCsv, readJsonl, useWorkspace } from "../helpers/workspace.js";

const ws = useWorkspace();
const fake = useFakeEndpoint("manual");

const run = (args: string[]) => runCli(args, { cwd: ws.dir, baseUrl: fake.current?.baseUrl ?? "" });
const promptsSent = () => (fake.current?.requests ?? []).map((request) => String(request.prompt));

const SCHEMA = {
  type: "object",
  properties: {
    description: { type: "string" },
    objects: { type: "array", items: { type: "string" } },
    has_text: { type: "boolean" },
    details: { type: "object", properties: { light: { type: "string" } } },
  },
  required: ["description", "objects", "has_text"],
};

async function writeSchema(schema: object = SCHEMA): Promise<string> {
  await writeFile(path.join(ws.dir, "schema.json"), JSON.stringify(schema));
  return "schema.json";
}

describe("prompt templates", () => {
  it("fills every placeholder per image, and {{ }} are braces", async () => {
    await fake.start();
    const folder = path.join(ws.dir, "set", "10_ohwx person");
    await mkdir(folder, { recursive: true });
    // Sent at a quarter of its size: {width} and {height} are the original's.
    await sharp({ create: { width: 300, height: 200, channels: 3, background: "#884422" } })
      .png()
      .toFile(path.join(folder, "shot.01.png"));
    await writeFile(path.join(folder, "shot.01.txt"), "  1girl, red hat \n");
    const template =
      "path={path} file={file} stem={stem} ext={ext} dir={dir} folder={folder} size={width}x{height} existing=[{existing}] {{literal}}";
    const result = await run(["set", "-o", "out.csv", "-p", template, "--max-pixels", "15000"]);
    expect(result.code, result.stderr).toBe(0);
    expect(promptsSent()).toEqual([
      "path=set/10_ohwx person/shot.01.png file=shot.01.png stem=shot.01 ext=png dir=set/10_ohwx person folder=10_ohwx person size=300x200 existing=[1girl, red hat] {literal}",
    ]);
    const [row] = await readCsv(path.join(ws.dir, "out.csv"));
    expect(Number(row?.width)).toBeLessThan(300);
  });

  it("asks about each of two identical files itself when the prompt names the file", async () => {
    await fake.start();
    const [image] = await makeDistinctImages(ws.dir, 1);
    await writeFile(
      path.join(ws.dir, "photos", "twin.jpg"),
      await readFile(path.join(ws.dir, String(image))),
    );
    const result = await run(["photos", "-o", "out.csv", "-p", "Describe {stem}."]);
    expect(result.code, result.stderr).toBe(0);
    expect(promptsSent().sort()).toEqual(["Describe img-0000.", "Describe twin."]);
    const rows = await readCsv(path.join(ws.dir, "out.csv"));
    expect(rows.map((row) => row.attempts)).toEqual(["1", "1"]);
  });

  it("reads {existing} from the sidecar the run writes, empty when there is none", async () => {
    await fake.start();
    const images = await makeDistinctImages(ws.dir, 2);
    await writeFile(path.join(ws.dir, "photos", "img-0000.caption"), "old words");
    const result = await run([
      "photos",
      "-p",
      "Rewrite as one sentence: {existing}",
      "--sidecar",
      ".caption",
      "--sidecar-policy",
      "overwrite",
    ]);
    expect(result.code, result.stderr).toBe(0);
    expect(images).toHaveLength(2);
    expect(promptsSent().sort()).toEqual([
      "Rewrite as one sentence: ",
      "Rewrite as one sentence: old words",
    ]);
  });

  it("refuses an unknown placeholder or a lone brace with exit 2, listing the valid ones, and sends nothing", async () => {
    await fake.start();
    await makeDistinctImages(ws.dir, 1);
    const unknown = await run(["photos", "-o", "out.csv", "-p", "Describe {stme}."]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(
      /--prompt: unknown placeholder \{stme\} \(did you mean \{stem\}\?\); the placeholders are \{path\}, \{file\}, \{stem\}/,
    );
    expect(unknown.stderr).toContain("{existing}");
    await writeFile(path.join(ws.dir, "prompt.txt"), 'Answer like {"caption": "..."}');
    const lone = await run(["photos", "-o", "out.csv", "--prompt-file", "prompt.txt"]);
    expect(lone.code).toBe(2);
    expect(lone.stderr).toMatch(
      /--prompt-file: "\{"caption": "..."\}" at character 13 is not a placeholder; write "\{\{" and "\}\}"/,
    );
    expect(fake.requests).toHaveLength(0);
  });

  it("warns once on resume when OUT was made with another prompt, and not when it was the same", async () => {
    await fake.start();
    await makeDistinctImages(ws.dir, 2);
    expect((await run(["photos", "-o", "out.csv", "-p", "Describe {stem}."])).code).toBe(0);
    await makeDistinctImages(ws.dir, 3);
    const same = await run(["photos", "-o", "out.csv", "-p", "Describe {stem}."]);
    expect(same.code).toBe(0);
    expect(same.stderr).not.toMatch(/another prompt/);
    await makeDistinctImages(ws.dir, 4);
    // A dry run says what the real run would.
    const preview = await run(["photos", "-o", "out.csv", "-p", "Tag {stem}.", "--dry-run"]);
    expect(preview.code).toBe(0);
    expect(preview.stderr).toMatch(/3 rows of .*out\.csv were made with another prompt/);
    const changed = await run(["photos", "-o", "out.csv", "-p", "Tag {stem}."]);
    expect(changed.code).toBe(0);
    const warnings = changed.stderr.match(/made with another prompt or schema/g) ?? [];
    expect(warnings).toHaveLength(1);
    expect(changed.stderr).toMatch(/3 rows of .*out\.csv were made with another prompt/);
    expect(await readCsv(path.join(ws.dir, "out.csv"))).toHaveLength(4);
  });
});

describe("--json-schema", () => {
  it("gives one row per image with the properties as CSV columns, sending the schema as response_format", async () => {
    await fake.start();
    const images = await makeDistinctImages(ws.dir, 3);
    const result = await run(["photos", "-o", "out.csv", "--json-schema", await writeSchema()]);
    expect(result.code, result.stderr).toBe(0);
    const text = await readFile(path.join(ws.dir, "out.csv"), "utf8");
    const rows = parse(text, { columns: true }) as Record<string, string>[];
    expect(rows.map((row) => row.path).sort()).toEqual(images.sort());
    for (const row of rows) {
      expect(row.caption).toMatch(/^A test caption for [0-9a-f]{12}\.$/);
      expect(row.description).toBe(row.caption);
      expect(row.objects).toMatch(/^\w+ 1, \w+ 2, \w+ 3$/);
      expect(row.has_text).toBe("true");
      expect(JSON.parse(String(row.details))).toEqual({ light: `light of ${row.caption}` });
    }
    const format = fake.requests[0]?.responseFormat as {
      type: string;
      json_schema: { name: string; schema: unknown; strict: boolean };
    };
    expect(format.type).toBe("json_schema");
    expect(format.json_schema.schema).toEqual(SCHEMA);
    expect(format.json_schema.strict).toBe(true);
    expect(format.json_schema.name).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(promptsSent()[0]).toContain("JSON Schema");
  });

  it("keeps the parsed answer under data in JSONL", async () => {
    await fake.start();
    await makeDistinctImages(ws.dir, 2);
    const result = await run(["photos", "-o", "out.jsonl", "--json-schema", await writeSchema()]);
    expect(result.code, result.stderr).toBe(0);
    const rows = await readJsonl(path.join(ws.dir, "out.jsonl"));
    expect(rows).toHaveLength(2);
    for (const row of rows) {
      const data = row.data as Record<string, unknown>;
      expect(data.description).toBe(row.caption);
      expect(data.objects).toHaveLength(3);
      expect(data.has_text).toBe(true);
    }
  });

  it("takes the JSON text as the caption when no property is caption, description or text", async () => {
    await fake.start();
    await makeDistinctImages(ws.dir, 1);
    const schema = { type: "object", properties: { mood: { type: "string" } }, required: ["mood"] };
    const result = await run([
      "photos",
      "-o",
      "out.jsonl",
      "--json-schema",
      await writeSchema(schema),
    ]);
    expect(result.code, result.stderr).toBe(0);
    const [row] = await readJsonl(path.join(ws.dir, "out.jsonl"));
    expect(JSON.parse(String(row?.caption))).toEqual(row?.data);
  });

  it("retries answers that are not JSON or do not match, then reports them as invalid_json", async () => {
    await fake.start({ invalidJsonRate: 1 });
    await makeDistinctImages(ws.dir, 2);
    const schemaFile = await writeSchema();
    const broken = await run([
      "photos",
      "-o",
      "out.csv",
      "--json-schema",
      schemaFile,
      "--retries",
      "2",
    ]);
    expect(broken.code).toBe(3);
    const failures = await readJsonl(path.join(ws.dir, "out.errors.jsonl"));
    expect(failures).toHaveLength(2);
    for (const failure of failures) {
      expect(failure.code).toBe("invalid_json");
      expect(failure.attempts).toBe(3);
      expect(String(failure.message)).toMatch(/not a JSON object/);
    }
    expect(fake.requests).toHaveLength(6);

    await fake.close();
    // Valid JSON of the wrong shape: the validator's own words name what is wrong.
    await fake.start({
      respond: () => ({ kind: "ok", content: '{"description": 7, "objects": []}' }),
    });
    const mismatch = await run([
      "photos",
      "-o",
      "out.csv",
      "--json-schema",
      schemaFile,
      "--retries",
      "1",
    ]);
    expect(mismatch.code).toBe(3);
    const [failure] = await readJsonl(path.join(ws.dir, "out.errors.jsonl"));
    expect(failure?.code).toBe("invalid_json");
    expect(String(failure?.message)).toMatch(/must have required property 'has_text'/);
    expect(String(failure?.message)).toMatch(/\/description must be string/);

    await fake.close();
    // Half the answers broken (seeded): retries bring every image home.
    await fake.start({ invalidJsonRate: 0.5, seed: 7 });
    const flaky = await run(["photos", "-o", "out.csv", "--json-schema", schemaFile]);
    expect(flaky.code, flaky.stderr).toBe(0);
    expect(await readCsv(path.join(ws.dir, "out.csv"))).toHaveLength(2);
    expect(fake.requests.length > 2).toBe(true);
  });

  it("falls back once for the run when the server answers 400 to response_format", async () => {
    await fake.start({ responseFormat: "reject" });
    await makeDistinctImages(ws.dir, 4);
    const result = await run([
      "photos",
      "-o",
      "out.csv",
      "--json-schema",
      await writeSchema(),
      "-c",
      "1",
    ]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr.match(/refused response_format/g)).toHaveLength(1);
    const rows = parse(await readFile(path.join(ws.dir, "out.csv"), "utf8"), {
      columns: true,
    }) as Record<string, string>[];
    expect(rows).toHaveLength(4);
    for (const row of rows) expect(row.has_text).toBe("true");
    const requests = fake.requests;
    // The first image is asked twice (with, then without); the others only without.
    expect(requests).toHaveLength(5);
    expect(requests[0]?.responseFormat).toBeDefined();
    for (const request of requests.slice(1)) expect(request.responseFormat).toBeUndefined();
  });

  it("re-sends without response_format a request refused after the run already fell back", async () => {
    // The first image's refusal comes back at once; the others' requests, already built with
    // response_format, are refused only after the run has decided to stop sending it.
    const refusal = {
      error: {
        message: "response_format type json_schema is not supported by this server",
        type: "invalid_request_error",
        param: null,
        code: null,
      },
    };
    await fake.start({
      respond: (record) =>
        record.responseFormat === undefined
          ? undefined
          : { kind: "status", status: 400, body: refusal, latencyMs: record.index === 0 ? 0 : 400 },
    });
    await makeDistinctImages(ws.dir, 4);
    const result = await run([
      "photos",
      "-o",
      "out.csv",
      "--json-schema",
      await writeSchema(),
      "-c",
      "4",
    ]);
    expect(result.code, result.stderr).toBe(0);
    expect(await readCsv(path.join(ws.dir, "out.csv"))).toHaveLength(4);
    const requests = fake.requests;
    const refused = requests.filter((request) => request.responseFormat !== undefined);
    // Each image was sent with response_format at most once.
    expect(refused.length).toBeLessThanOrEqual(4);
    expect(requests.length - refused.length).toBe(4);
  });

  it("falls back once for the run when the server ignores response_format and answers prose", async () => {
    await fake.start({ responseFormat: "ignore" });
    await makeDistinctImages(ws.dir, 3);
    const result = await run([
      "photos",
      "-o",
      "out.jsonl",
      "--json-schema",
      await writeSchema(),
      "-c",
      "1",
    ]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr.match(/answered prose to a request with response_format/g)).toHaveLength(
      1,
    );
    const rows = await readJsonl(path.join(ws.dir, "out.jsonl"));
    expect(rows).toHaveLength(3);
    for (const row of rows) expect((row.data as Record<string, unknown>).has_text).toBe(true);
    // No image was asked twice: the first JSON object in the prose was the answer.
    expect(fake.requests).toHaveLength(3);
    for (const request of fake.requests.slice(1)) {
      expect(request.responseFormat).toBeUndefined();
    }
  });

  it("refuses bad schema files and bad combinations with exit 2, naming the flags", async () => {
    await fake.start();
    await makeDistinctImages(ws.dir, 1);
    const missing = await run(["photos", "-o", "out.csv", "--json-schema", "nope.json"]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/--json-schema: cannot read .*nope\.json/);
    await writeFile(path.join(ws.dir, "bad.json"), "{ type: object");
    const invalid = await run(["photos", "-o", "out.csv", "--json-schema", "bad.json"]);
    expect(invalid.code).toBe(2);
    expect(invalid.stderr).toMatch(/--json-schema: .*bad\.json is not valid JSON/);
    await writeFile(path.join(ws.dir, "list.json"), JSON.stringify({ type: "array" }));
    const notObject = await run(["photos", "-o", "out.csv", "--json-schema", "list.json"]);
    expect(notObject.code).toBe(2);
    expect(notObject.stderr).toMatch(/--json-schema: the schema's top level must be/);
    await writeFile(
      path.join(ws.dir, "wrong.json"),
      JSON.stringify({ type: "object", properties: { a: { type: "strnig" } } }),
    );
    const wrong = await run(["photos", "-o", "out.csv", "--json-schema", "wrong.json"]);
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toMatch(/--json-schema: not a valid JSON Schema/);
    const both = await run([
      "photos",
      "-o",
      "out.csv",
      "--json-schema",
      await writeSchema(),
      "--tags",
    ]);
    expect(both.code).toBe(2);
    expect(both.stderr).toMatch(/--tags: .*cannot be combined with --json-schema/);
    expect(fake.requests).toHaveLength(0);
  });
});

describe("--tags", () => {
  it("asks for tags, writes a tags column, and puts the comma-separated tags in the sidecar", async () => {
    await fake.start({
      respond: () => ({
        kind: "ok",
        content: '{"tags": ["Red Hat", "outdoors", "red hat", " 1girl "]}',
      }),
    });
    const images = await makeDistinctImages(ws.dir, 2);
    const result = await run(["photos", "-o", "out.csv", "--tags", "--sidecar"]);
    expect(result.code, result.stderr).toBe(0);
    const rows = await readCsv(path.join(ws.dir, "out.csv"));
    expect(rows).toHaveLength(2);
    for (const row of rows) {
      expect(row.tags).toBe("red hat, outdoors, 1girl");
      expect(row.caption).toBe("red hat, outdoors, 1girl");
    }
    for (const image of images) {
      const sidecar = await readFile(path.join(ws.dir, image.replace(/\.jpg$/, ".txt")), "utf8");
      expect(sidecar).toBe("red hat, outdoors, 1girl\n");
    }
    const format = fake.requests[0]?.responseFormat as {
      json_schema: { schema: { properties: { tags: { type: string } } } };
    };
    expect(format.json_schema.schema.properties.tags.type).toBe("array");
    expect(promptsSent()[0]).toMatch(/lowercase tags/);
  });
});

describe("structured runs over time", () => {
  it("keeps sending response_format when an answer is merely broken JSON", async () => {
    await fake.start({ invalidJsonRate: 0.3, seed: 3 });
    await makeDistinctImages(ws.dir, 12);
    const result = await run([
      "photos",
      "-o",
      "out.csv",
      "--json-schema",
      await writeSchema(),
      "-c",
      "1",
    ]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr).not.toMatch(/answered prose/);
    const requests = fake.requests;
    expect(requests.length).toBeGreaterThan(12);
    for (const request of requests) expect(request.responseFormat).toBeDefined();
  });

  it("gives copies of an image the same answer, but never one made with another schema", async () => {
    await fake.start();
    const [image] = await makeDistinctImages(ws.dir, 2);
    const bytes = await readFile(path.join(ws.dir, String(image)));
    await writeFile(path.join(ws.dir, "photos", "copy-in-run.jpg"), bytes);
    const schemaFile = await writeSchema();
    expect((await run(["photos", "-o", "out.jsonl", "--json-schema", schemaFile])).code).toBe(0);
    expect(fake.requests).toHaveLength(2);
    await writeFile(path.join(ws.dir, "photos", "copy-later.jpg"), bytes);
    expect((await run(["photos", "-o", "out.jsonl", "--json-schema", schemaFile])).code).toBe(0);
    expect(fake.requests).toHaveLength(2);
    const rows = await readJsonl(path.join(ws.dir, "out.jsonl"));
    const byPath = new Map(rows.map((row) => [row.path, row]));
    const original = byPath.get(image);
    for (const copy of ["photos/copy-in-run.jpg", "photos/copy-later.jpg"]) {
      expect(byPath.get(copy)?.data).toEqual(original?.data);
    }
    // Whichever of the two in the first run came first was sent; the other, and the later copy, not.
    const attempts = ["photos/copy-in-run.jpg", image].map((name) => byPath.get(name)?.attempts);
    expect(attempts.sort()).toEqual([0, 1]);
    expect(byPath.get("photos/copy-later.jpg")?.attempts).toBe(0);

    const other = { type: "object", properties: { mood: { type: "string" } }, required: ["mood"] };
    await writeFile(path.join(ws.dir, "other.json"), JSON.stringify(other));
    await writeFile(path.join(ws.dir, "photos", "copy-other.jpg"), bytes);
    const changed = await run(["photos", "-o", "out.jsonl", "--json-schema", "other.json"]);
    expect(changed.code, changed.stderr).toBe(0);
    expect(changed.stderr).toMatch(/made with another prompt or schema/);
    expect(fake.requests).toHaveLength(3);
    const [last] = (await readJsonl(path.join(ws.dir, "out.jsonl"))).filter(
      (row) => row.path === "photos/copy-other.jpg",
    );
    expect(Object.keys(last?.data as object)).toEqual(["mood"]);
  });

  it("moves properties named like OUT's own columns to data.<name>, and resumes the file", async () => {
    await fake.start();
    await makeDistinctImages(ws.dir, 2);
    const schema = {
      type: "object",
      properties: {
        path: { type: "string" },
        "data.path": { type: "string" },
        model: { type: "string" },
        text: { type: "string" },
      },
      required: ["path", "data.path", "model", "text"],
    };
    const schemaFile = await writeSchema(schema);
    expect((await run(["photos", "-o", "out.csv", "--json-schema", schemaFile])).code).toBe(0);
    const text = await readFile(path.join(ws.dir, "out.csv"), "utf8");
    const [header] = parse(text, { to_line: 1 }) as string[][];
    // "path" goes to data.path, which the property of that name holds already: one level more.
    expect(header?.slice(-4)).toEqual(["data.data.path", "data.path", "data.model", "text"]);
    const rows = parse(text, { columns: true }) as Record<string, string>[];
    for (const row of rows) {
      expect(row.path).toMatch(/^photos\/img-000\d\.jpg$/);
      expect(row["data.data.path"]).toBe(`path of ${row.caption}`);
      expect(row["data.path"]).toBe(`data.path of ${row.caption}`);
      expect(row.caption).toBe(row.text);
    }
    const again = await run(["photos", "-o", "out.csv", "--json-schema", schemaFile]);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stderr).toMatch(/nothing to do/);
  });

  it("refuses to add answers to a CSV that has no columns for them, and keeps older columns when there are fewer", async () => {
    await fake.start();
    await makeDistinctImages(ws.dir, 1);
    expect((await run(["photos", "-o", "plain.csv"])).code).toBe(0);
    await makeDistinctImages(ws.dir, 2);
    const schemaFile = await writeSchema();
    const added = await run(["photos", "-o", "plain.csv", "--json-schema", schemaFile]);
    expect(added.code).toBe(2);
    expect(added.stderr).toMatch(
      /plain\.csv: has no column for description, objects, has_text, details, so it was begun with another schema or none; .*--overwrite/,
    );

    expect((await run(["photos", "-o", "rich.csv", "--json-schema", schemaFile])).code).toBe(0);
    await makeDistinctImages(ws.dir, 3);
    const fewer = await run(["photos", "-o", "rich.csv"]);
    expect(fewer.code, fewer.stderr).toBe(0);
    expect(fewer.stderr).toMatch(/2 rows of .*rich\.csv were made with another prompt or schema/);
    const rows = parse(await readFile(path.join(ws.dir, "rich.csv"), "utf8"), {
      columns: true,
    }) as Record<string, string>[];
    expect(rows).toHaveLength(3);
    expect(rows.filter((row) => row.objects === "")).toHaveLength(1);
    expect(fake.requests).toHaveLength(4);
  });

  it("reads jsonSchema from a config file, relative to it, and names the key when it cannot", async () => {
    await fake.start();
    await makeDistinctImages(ws.dir, 1);
    await mkdir(path.join(ws.dir, "conf"));
    await writeFile(path.join(ws.dir, "conf", "schema.json"), JSON.stringify(SCHEMA));
    await writeFile(
      path.join(ws.dir, "conf", "run.json"),
      JSON.stringify({ jsonSchema: "schema.json" }),
    );
    await writeFile(
      path.join(ws.dir, "conf", "bad.json"),
      JSON.stringify({ jsonSchema: "nope.json" }),
    );
    const good = await run(["photos", "-o", "out.csv", "--config", "conf/run.json"]);
    expect(good.code, good.stderr).toBe(0);
    expect((await readCsv(path.join(ws.dir, "out.csv")))[0]?.has_text).toBe("true");
    const bad = await run(["photos", "-o", "out2.csv", "--config", "conf/bad.json"]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(
      /conf\/bad\.json: jsonSchema: cannot read .*nope\.json \(no such file\)/,
    );
  });
});
