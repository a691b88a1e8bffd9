import { readdir, readFile, stat, writeFile } from "node:fs/promises";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { useFakeEndpoint } from "../helpers/fake-endpoint/use.js";
import { runCli, TEST_KEY } from "../helpers/run-cli.js";
import { copyFixtures, readCsv, readJsonl, useWorkspace } from "../helpers/workspace.js";

const FIXTURE_IMAGE_COUNT = 11;

const ws = useWorkspace();
const fake = useFakeEndpoint("manual");

async function countImages(folder: string): Promise<number> {
  const entries = await readdir(folder, { recursive: true, withFileTypes: true });
  return entries.filter((e) => e.isFile()).length;
}

describe("captioning a folder", () => {
  it("writes one row per image, then a rerun sends nothing and says so", async () => {
    await copyFixtures(ws.dir, "images");
    expect(await countImages(path.join(ws.dir, "images"))).toBe(FIXTURE_IMAGE_COUNT);
    await fake.start({ apiKey: TEST_KEY });

    const first = await runCli(["images", "-o", "out.csv"], { cwd: ws.dir, baseUrl: fake.baseUrl });
    expect(first.stderr).not.toMatch(/at .*\.ts:\d+/);
    expect(first.code).toBe(0);
    const rows = await readCsv(path.join(ws.dir, "out.csv"));
    expect(rows).toHaveLength(FIXTURE_IMAGE_COUNT);
    expect(new Set(rows.map((r) => r.path)).size).toBe(FIXTURE_IMAGE_COUNT);
    expect(rows.map((r) => r.path)).toContain("images/nested/deeper/inner.png");
    expect(rows.map((r) => r.path)).toContain('images/names/comma, "quoted" and ünïcødé 🎉.jpg');
    for (const row of rows) {
      expect(row.caption).toMatch(/^A test caption for [0-9a-f]{12}\.$/);
      expect(row.model).toBe("MiniCPM-V-4.6-Instruct");
      expect(Number(row.width)).toBeGreaterThan(0);
      expect(Number(row.attempts)).toBe(1);
      expect(row.truncated).toBe("false");
      expect(Number.isNaN(Date.parse(row.created_at ?? ""))).toBe(false);
    }
    const rotated = rows.find((r) => r.path === "images/rotated-exif.jpg");
    expect([rotated?.width, rotated?.height]).toEqual(["200", "300"]);
    expect(fake.requests).toHaveLength(FIXTURE_IMAGE_COUNT);
    expect(first.stderr).toMatch(/11 captioned, 0 failed/);
    await expect(stat(path.join(ws.dir, "out.errors.jsonl"))).rejects.toThrow();

    fake.resetStats();
    const second = await runCli(["images", "-o", "out.csv"], {
      cwd: ws.dir,
      baseUrl: fake.baseUrl,
    });
    expect(second.code).toBe(0);
    expect(fake.requests).toHaveLength(0);
    expect(second.stderr).toMatch(/nothing to do: all 11 images are already in out\.csv/);
    expect(await readCsv(path.join(ws.dir, "out.csv"))).toEqual(rows);
  });

  it("sends what the endpoint contract asks for: model, prompt, max_tokens and a resized JPEG data URL", async () => {
    await copyFixtures(ws.dir, "images");
    await fake.start();
    const result = await runCli(
      [
        "images/photo.jpg",
        "-o",
        "out.jsonl",
        "-m",
        "my-model",
        "-p",
        "Say cat.",
        "--max-tokens",
        "77",
        "--max-pixels",
        "40000",
      ],
      { cwd: ws.dir, baseUrl: fake.baseUrl },
    );
    expect(result.code).toBe(0);
    const [request] = fake.requests;
    expect(request?.url).toBe("/v1/chat/completions");
    expect(request?.headers.authorization).toBe(`Bearer ${TEST_KEY}`);
    expect(request?.model).toBe("my-model");
    expect(request?.prompt).toBe("Say cat.");
    expect(request?.body).toMatchObject({ max_tokens: 77 });
    expect(request?.image?.mime).toBe("image/jpeg");
    const { width, height } = request?.image ?? {};
    expect((width ?? 0) * (height ?? 0)).toBeLessThanOrEqual(40_000);
    const [row] = await readJsonl(path.join(ws.dir, "out.jsonl"));
    expect(row).toMatchObject({
      path: "images/photo.jpg",
      model: "my-model",
      width,
      height,
      truncated: false,
    });
  });

  it("--quality sends a shrunk JPEG at that quality, from the flag or a config file", async () => {
    await copyFixtures(ws.dir, "images");
    await fake.start();
    const bytesSent = async (args: string[]) => {
      fake.resetStats();
      const result = await runCli(
        ["images/photo.jpg", "-o", "out.jsonl", "--overwrite", "--max-pixels", "40000", ...args],
        { cwd: ws.dir, baseUrl: fake.baseUrl },
      );
      expect(result.code, result.stderr).toBe(0);
      return fake.requests[0]?.image?.bytes ?? 0;
    };
    const atDefault = await bytesSent([]);
    const atTen = await bytesSent(["--quality", "10"]);
    expect(atTen).toBeGreaterThan(0);
    expect(atTen).toBeLessThan(atDefault * 0.7);
    await writeFile(path.join(ws.dir, "low.json"), JSON.stringify({ quality: 10 }));
    expect(await bytesSent(["--config", "low.json"])).toBe(atTen);
    const refused = await runCli(["images", "-o", "x.csv", "--quality", "0"], {
      cwd: ws.dir,
      baseUrl: fake.baseUrl,
    });
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/--quality: .*1 to 100/);
  });

  it("keeps the caption free of reasoning from a Thinking model", async () => {
    await copyFixtures(ws.dir, "images");
    await fake.start({
      script: [
        {
          kind: "ok",
          content: "Looking closely, it is a gradient.</think>\n\nA colourful gradient.",
        },
        { kind: "ok", content: "A gradient photo.", reasoning: "SECRET REASONING" },
        { kind: "ok", content: "<think>hmm</think>A grey square.", finishReason: "length" },
      ],
    });
    const result = await runCli(
      ["images/photo.jpg", "images/grey.png", "images/alpha.png", "-o", "out.csv", "-c", "1"],
      {
        cwd: ws.dir,
        baseUrl: fake.baseUrl,
      },
    );
    expect(result.code).toBe(0);
    const rows = await readCsv(path.join(ws.dir, "out.csv"));
    expect(rows.map((r) => r.caption).sort()).toEqual([
      "A colourful gradient.",
      "A gradient photo.",
      "A grey square.",
    ]);
    expect(rows.find((r) => r.caption === "A grey square.")?.truncated).toBe("true");
    expect(await readFile(path.join(ws.dir, "out.csv"), "utf8")).not.toMatch(
      /REASONING|Looking closely|hmm/,
    );
  });

  it("round-trips captions and file names with commas, quotes, newlines and unicode through a CSV parser", async () => {
    await copyFixtures(ws.dir, "images");
    const captions = new Map<string, string>();
    await fake.start({
      caption: (req) => {
        const text = `Line one, with "quotes"\nline two 🎉 ünïcødé; =1+2 ${req.image?.sha256.slice(0, 6)}`;
        captions.set(req.image?.sha256 ?? "", text);
        return text;
      },
    });
    const result = await runCli(["images/names", "-o", "out.csv"], {
      cwd: ws.dir,
      baseUrl: fake.baseUrl,
    });
    expect(result.code).toBe(0);
    const rows = await readCsv(path.join(ws.dir, "out.csv"));
    expect(rows.map((r) => r.path).sort()).toEqual([
      'images/names/comma, "quoted" and ünïcødé 🎉.jpg',
      "images/names/space in name.png",
    ]);
    expect(rows.map((r) => r.caption).sort()).toEqual([...captions.values()].sort());
  });

  it("writes JSONL when asked with --format", async () => {
    await copyFixtures(ws.dir, "images");
    await fake.start();
    const result = await runCli(["images", "-o", "captions.txt", "--format", "jsonl"], {
      cwd: ws.dir,
      baseUrl: fake.baseUrl,
    });
    expect(result.code).toBe(0);
    const rows = await readJsonl(path.join(ws.dir, "captions.txt"));
    expect(rows).toHaveLength(FIXTURE_IMAGE_COUNT);
    expect(rows[0]).toHaveProperty("prompt_tokens");
  });

  it("--overwrite starts fresh", async () => {
    await copyFixtures(ws.dir, "images");
    await fake.start();
    await runCli(["images", "-o", "out.csv"], { cwd: ws.dir, baseUrl: fake.baseUrl });
    fake.resetStats();
    const again = await runCli(["images", "-o", "out.csv", "--overwrite"], {
      cwd: ws.dir,
      baseUrl: fake.baseUrl,
    });
    expect(again.code).toBe(0);
    expect(fake.requests).toHaveLength(FIXTURE_IMAGE_COUNT);
    expect(await readCsv(path.join(ws.dir, "out.csv"))).toHaveLength(FIXTURE_IMAGE_COUNT);
  });

  it("accepts glob patterns and explicit files, and captions a file matched twice once", async () => {
    await copyFixtures(ws.dir, "images");
    await fake.start();
    const result = await runCli(
      ["images/**/*.PNG", "images/grey.png", "images/*.jpg", "-o", "out.csv"],
      {
        cwd: ws.dir,
        baseUrl: fake.baseUrl,
      },
    );
    expect(result.code).toBe(0);
    const paths = (await readCsv(path.join(ws.dir, "out.csv"))).map((r) => r.path).sort();
    expect(paths).toEqual([
      "images/UPPER.JPG",
      "images/alpha.png",
      "images/grey.png",
      "images/names/space in name.png",
      "images/nested/deeper/inner.png",
      "images/photo.jpg",
      "images/rotated-exif.jpg",
    ]);
    expect(fake.requests).toHaveLength(paths.length);
  });
});

describe("failures", () => {
  it("lists a corrupt image in the errors file and exits 3, captioning the rest", async () => {
    await copyFixtures(ws.dir, "images");
    await copyFixtures(ws.dir, "broken");
    await fake.start();
    const result = await runCli(["images", "broken", "-o", "out.csv"], {
      cwd: ws.dir,
      baseUrl: fake.baseUrl,
    });
    expect(result.code).toBe(3);
    expect(await readCsv(path.join(ws.dir, "out.csv"))).toHaveLength(FIXTURE_IMAGE_COUNT);
    const failures = await readJsonl(path.join(ws.dir, "out.errors.jsonl"));
    expect(failures.map((f) => f.path).sort()).toEqual([
      "broken/corrupt.jpg",
      "broken/empty.jpg",
      "broken/not-an-image.png",
      "broken/truncated.jpg",
    ]);
    for (const failure of failures) {
      expect(failure).toMatchObject({ attempts: 0, status: null });
      expect(failure.code).toMatch(/^[a-z_]+$/);
      expect(String(failure.message).length).toBeGreaterThan(10);
    }
    expect(result.stderr).toMatch(/failed broken\/corrupt\.jpg: /);
    expect(result.stderr).toMatch(
      /11 captioned, 4 failed, tokens \d+ in, \d+ out.*; failures are listed in out\.errors\.jsonl/,
    );
    expect(fake.requests).toHaveLength(FIXTURE_IMAGE_COUNT);
  });

  it("fails an image the server refuses with a 4xx, with the server's message, and retries it next run", async () => {
    await copyFixtures(ws.dir, "images");
    await fake.start({
      script: [
        {
          kind: "status",
          status: 400,
          body: { error: { message: "image could not be decoded", type: "invalid_request_error" } },
        },
      ],
    });
    const first = await runCli(
      ["images/photo.jpg", "images/grey.png", "-o", "out.csv", "-c", "1"],
      {
        cwd: ws.dir,
        baseUrl: fake.baseUrl,
      },
    );
    expect(first.code).toBe(3);
    const [failure] = await readJsonl(path.join(ws.dir, "out.errors.jsonl"));
    expect(failure).toMatchObject({ code: "http_400", status: 400, attempts: 1 });
    expect(failure?.message).toMatch(/image could not be decoded/);
    expect(fake.requests).toHaveLength(2);

    const second = await runCli(["images/photo.jpg", "images/grey.png", "-o", "out.csv"], {
      cwd: ws.dir,
      baseUrl: fake.baseUrl,
    });
    expect(second.code).toBe(0);
    expect(await readCsv(path.join(ws.dir, "out.csv"))).toHaveLength(2);
    await expect(stat(path.join(ws.dir, "out.errors.jsonl"))).rejects.toThrow();
  });

  it("stops at once with exit 1 when the key is rejected, without printing the key", async () => {
    await copyFixtures(ws.dir, "images");
    await fake.start({ apiKey: "the-right-key", latencyMs: 50 });
    const result = await runCli(["images", "-o", "out.csv", "-c", "4"], {
      cwd: ws.dir,
      baseUrl: fake.baseUrl,
    });
    expect(result.code).toBe(1);
    // "At once": about the first -c requests, each sent once; not one per image, nor any retry.
    expect(fake.requests.length).toBeGreaterThan(0);
    expect(fake.requests.length).toBeLessThan(8);
    expect(new Set(fake.requests.map((r) => r.image?.sha256)).size).toBe(fake.requests.length);
    expect(result.stderr).toMatch(/rejected the API key \(HTTP 401/);
    expect(`${result.stdout}${result.stderr}`).not.toContain(TEST_KEY);
    const errorsFile = await readFile(path.join(ws.dir, "out.errors.jsonl"), "utf8").catch(
      () => "",
    );
    expect(errorsFile).not.toContain(TEST_KEY);
  });

  it("retries a hung request after --timeout and captions it", async () => {
    await copyFixtures(ws.dir, "images");
    await fake.start({ script: [{ kind: "hang" }] });
    const result = await runCli(["images/photo.jpg", "-o", "out.csv", "--timeout", "0.5", "-v"], {
      cwd: ws.dir,
      baseUrl: fake.baseUrl,
    });
    expect(result.code).toBe(0);
    expect(result.stderr).toMatch(/retrying images\/photo\.jpg .*no complete reply within 0\.5 s/);
    const [row] = await readCsv(path.join(ws.dir, "out.csv"));
    expect(row?.attempts).toBe("2");
  });

  it("fails an image whose requests all time out, as a timeout row", async () => {
    await copyFixtures(ws.dir, "images");
    await fake.start({ respond: () => ({ kind: "hang" }) });
    const result = await runCli(
      ["images/photo.jpg", "-o", "out.csv", "--timeout", "0.3", "--retries", "1"],
      {
        cwd: ws.dir,
        baseUrl: fake.baseUrl,
      },
    );
    expect(result.code).toBe(3);
    const [failure] = await readJsonl(path.join(ws.dir, "out.errors.jsonl"));
    expect(failure).toMatchObject({ path: "images/photo.jpg", code: "timeout", attempts: 2 });
  });

  it("says what is wrong with bad flags and exits 2 without a stack trace", async () => {
    const cases: [string[], RegExp][] = [
      [
        ["x", "-o", "out.csv", "-c", "0"],
        /--concurrency: expected a whole number from 1 to 1024 or auto, got 0/,
      ],
      [["x", "-o", "out.txt"], /--format: cannot tell the format of out\.txt from its name/],
      [["x"], /-o\/--output is required/],
      [[], /no inputs given/],
      [["missing-folder", "-o", "out.csv"], /input not found: missing-folder/],
      [["x", "-o", "o.csv", "--bogus"], /--bogus: no such flag/],
      [["x", "-o", "o.csv", "--config", "nope.json"], /--config: cannot read nope\.json/],
    ];
    await writeFile(path.join(ws.dir, "x"), "");
    for (const [args, message] of cases) {
      const result = await runCli(args, { cwd: ws.dir, baseUrl: "http://127.0.0.1:9/v1" });
      expect(result.code, args.join(" ")).toBe(2);
      expect(result.stderr, args.join(" ")).toMatch(message);
      expect(result.stderr).not.toMatch(/\n\s+at /);
    }
  });
});

describe("other commands", () => {
  it("--help prints the usage", async () => {
    const result = await runCli(["--help"], { cwd: ws.dir });
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/caption <inputs\.\.> -o OUT/);
    expect(result.stdout).toMatch(/--concurrency/);
    expect(result.stdout).toMatch(/Exit codes/);
    // Each setting's default, as the table holds it.
    expect(result.stdout).toMatch(/--retries\s+Further attempts[^[]*\[default: 5\]/);
    expect(result.stdout).toMatch(/--quality\s+JPEG quality[^[]*\[default: 90\]/);
  });

  it("--dry-run lists what would be sent and sends nothing", async () => {
    await copyFixtures(ws.dir, "images");
    await fake.start();
    const result = await runCli(["images", "-o", "out.csv", "--dry-run"], {
      cwd: ws.dir,
      baseUrl: fake.baseUrl,
    });
    expect(result.code).toBe(0);
    expect(fake.requests).toHaveLength(0);
    const lines = result.stdout.trim().split("\n");
    expect(lines).toHaveLength(FIXTURE_IMAGE_COUNT);
    expect(lines).toContain(
      "images/rotated-exif.jpg\t200x300\t" +
        lines.find((l) => l.startsWith("images/rotated-exif.jpg"))?.split("\t")[2],
    );
    expect(result.stderr).toMatch(
      /dry run: 11 images would be sent \([\d.]+ [KM]B after resizing\)/,
    );
    await expect(stat(path.join(ws.dir, "out.csv"))).rejects.toThrow();
  });

  it("check sends one text-only request and prints the reply and latency", async () => {
    await fake.start({ apiKey: TEST_KEY });
    const result = await runCli(["check"], { cwd: ws.dir, baseUrl: fake.baseUrl });
    expect(result.code).toBe(0);
    expect(result.stdout.trim()).toBe("ready");
    expect(result.stderr).toMatch(/answered as MiniCPM-V-4\.6-Instruct in \d+ ms/);
    expect(fake.requests).toHaveLength(1);
    expect(fake.requests[0]?.image).toBeNull();

    const rejected = await runCli(["check", "--api-key", "wrong-key-123"], {
      cwd: ws.dir,
      baseUrl: fake.baseUrl,
    });
    expect(rejected.code).toBe(1);
    expect(rejected.stderr).toMatch(/rejected the API key/);
    expect(rejected.stderr).not.toContain("wrong-key-123");
  });
});

describe("what a message tells the user to change", () => {
  const outOfTokens = () => ({
    kind: "ok" as const,
    content: null,
    reasoning: "Let me think about the image",
    finishReason: "length",
  });

  it("names flags on the command line: the errors file, a damaged OUT, a rejected key", async () => {
    await fake.start({ apiKey: TEST_KEY, respond: outOfTokens });
    await copyFixtures(ws.dir, "images");
    const run = await runCli(["images/names", "-o", "out.jsonl"], {
      cwd: ws.dir,
      baseUrl: fake.baseUrl,
    });
    expect(run.code).toBe(3);
    const [failure] = await readJsonl(path.join(ws.dir, "out.errors.jsonl"));
    expect(failure?.code).toBe("truncated_thinking");
    expect(String(failure?.message)).toMatch(/raise --max-tokens \(/);

    await writeFile(path.join(ws.dir, "out.jsonl"), '{"oops": 1}\n');
    const damaged = await runCli(["images", "-o", "out.jsonl"], {
      cwd: ws.dir,
      baseUrl: fake.baseUrl,
    });
    expect(damaged.code).toBe(2);
    expect(damaged.stderr).toMatch(
      /line 1 is not a JSON object.*or set --overwrite to start a fresh one/,
    );

    const key = await runCli(["images", "-o", "other.jsonl", "--api-key", "wrong-key-123"], {
      cwd: ws.dir,
      baseUrl: fake.baseUrl,
    });
    expect(key.code).toBe(1);
    expect(key.stderr).toMatch(/check MINICPM_API_KEY or --api-key/);
  });

  it("names a setting where it lives when the config file or a variable gave it", async () => {
    await fake.start({ apiKey: TEST_KEY, respond: outOfTokens });
    await copyFixtures(ws.dir, "images");
    await writeFile(
      path.join(ws.dir, "run.json"),
      JSON.stringify({ baseUrl: fake.baseUrl, maxTokens: 64 }),
    );
    const fromFile = await runCli(["images/names", "-o", "file.jsonl", "--config", "run.json"], {
      cwd: ws.dir,
    });
    expect(fromFile.code).toBe(3);
    const [failure] = await readJsonl(path.join(ws.dir, "file.errors.jsonl"));
    expect(String(failure?.message)).toMatch(/raise maxTokens in run\.json \(/);

    // A flag given for this run is named as the flag, whatever the file says.
    const fromFlag = await runCli(
      ["images/names", "-o", "flag.jsonl", "--config", "run.json", "--max-tokens", "64"],
      { cwd: ws.dir },
    );
    const [flagged] = await readJsonl(path.join(ws.dir, "flag.errors.jsonl"));
    expect(fromFlag.code).toBe(3);
    expect(String(flagged?.message)).toMatch(/raise --max-tokens \(/);

    // A server that is gone, named by the exported variable.
    const gone = await fake.startAnother({});
    await gone.close();
    const dead = await runCli(["images/names", "-o", "dead.jsonl", "--retries", "0"], {
      cwd: ws.dir,
      baseUrl: gone.baseUrl,
    });
    expect(dead.code).toBe(1);
    expect(dead.stderr).toMatch(/check MINICPM_BASE_URL and that the server is up/);

    // The file's list of servers overrules the exported variable, so the list is what to check.
    await writeFile(
      path.join(ws.dir, "list.json"),
      JSON.stringify({ endpoints: [{ baseUrl: gone.baseUrl }] }),
    );
    const listed = await runCli(
      ["images/names", "-o", "list.jsonl", "--retries", "0", "--config", "list.json"],
      { cwd: ws.dir, baseUrl: fake.baseUrl },
    );
    expect(listed.code).toBe(1);
    expect(listed.stderr).toMatch(/check endpoints in list\.json and that the server is up/);

    // An example config given by name lives in the package: the flag is what to change.
    const example = await runCli(
      ["images/names", "-o", "example.jsonl", "--config", "hosted-minicpm-thinking"],
      { cwd: ws.dir, baseUrl: fake.baseUrl },
    );
    expect(example.code).toBe(3);
    const [fromExample] = await readJsonl(path.join(ws.dir, "example.errors.jsonl"));
    expect(String(fromExample?.message)).toMatch(/raise --max-tokens \(/);
  });

  it("names options in the library, where there are no flags", async () => {
    await fake.start({ respond: outOfTokens });
    await copyFixtures(ws.dir, "images");
    const { captionImages } = await import("../../src/index.js");
    const errorsPath = path.join(ws.dir, "lib.errors.jsonl");
    const summary = await captionImages({
      inputs: ["images/names"],
      cwd: ws.dir,
      output: "lib.jsonl",
      errorsPath,
      baseUrl: fake.baseUrl,
      retries: 0,
    });
    expect(summary.failed).toBeGreaterThan(0);
    const [failure] = await readJsonl(errorsPath);
    expect(String(failure?.message)).toMatch(/raise maxTokens \(/);
    await writeFile(path.join(ws.dir, "lib.jsonl"), '{"oops": 1}\n');
    await expect(
      captionImages({
        inputs: ["images"],
        cwd: ws.dir,
        output: "lib.jsonl",
        baseUrl: fake.baseUrl,
      }),
    ).rejects.toThrow(/or set overwrite to start a fresh one/);
  });
});
