/**
 * Issue 22, what comes back and what the run reads because it was named: each case drives the real
 * CLI against a server (or a file) built to attack it, and checks what the user is left with.
 */
import { execFileSync, spawn } from "node:child_process";
import { mkdir, readdir, readFile, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";
import { DOMParser } from "@xmldom/xmldom";
import { afterEach, describe, expect, it } from "vitest";
import { createClient } from "../../src/send/client.js";
import { useFakeEndpoint } from "../helpers/fake-endpoint/use.js";
import { type CliOptions, collect, runCli, startCli, TEST_KEY } from "../helpers/run-cli.js";
import { makeDistinctImages, readCsv, readJsonl, useWorkspace } from "../helpers/workspace.js";

const EXIFTOOL = fileURLToPath(
  new URL("../../node_modules/exiftool-vendored.pl/bin/exiftool", import.meta.url),
);

const ws = useWorkspace();
const fake = useFakeEndpoint("manual");
let server: Server | null = null;
afterEach(async () => {
  server?.closeAllConnections();
  await new Promise((resolve) => (server ? server.close(resolve) : resolve(null)));
  server = null;
});

/**
 * Runs the CLI but kills it after `limitMs`: a regression to reading /dev/zero whole must fail the
 * test, not take the machine's memory. The limit is generous; it is no speed check.
 */
async function runWithin(limitMs: number, args: string[], options: Partial<CliOptions> = {}) {
  const child = startCli(args, { cwd: ws.dir, ...options });
  const killer = setTimeout(() => child.kill("SIGKILL"), limitMs);
  const result = await collect(child);
  clearTimeout(killer);
  return result;
}

/** Every control character but tab and newline: what a terminal acts on. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: finding them is the point.
const CONTROLS = /[\u0000-\u0008\u000B-\u001F\u007F-\u009F]/;

/** What XML 1.0 forbids in a document, as the file reads back (a lone surrogate was written as U+FFFD). */
// biome-ignore lint/suspicious/noControlCharactersInRegex: finding them is the point.
const XML_FORBIDDEN = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]/;

describe("files named for the run to read", () => {
  it("refuses a device, a pipe, a folder and a huge file by name, with exit 2, unread", async () => {
    await makeDistinctImages(ws.dir, 1);
    execFileSync("mkfifo", [path.join(ws.dir, "prompt.fifo")]);
    await mkdir(path.join(ws.dir, "schema-folder"));
    await writeFile(path.join(ws.dir, "huge.txt"), Buffer.alloc(2 * 1024 * 1024, "a"));
    await writeFile(path.join(ws.dir, "huge.json"), `{"model": "${"m".repeat(2 * 1024 * 1024)}"}`);
    const cases: [string[], RegExp][] = [
      [["--prompt-file", "/dev/zero"], /--prompt-file \/dev\/zero: not a regular file/],
      [["--config", "/dev/urandom"], /--config \/dev\/urandom: not a regular file/],
      [
        ["--prompt-file", "prompt.fifo"],
        /--prompt-file prompt\.fifo: not a regular file \(a named pipe\)/,
      ],
      [
        ["--json-schema", "schema-folder"],
        /--json-schema \S*schema-folder: not a regular file \(a folder\)/,
      ],
      [["--prompt-file", "huge.txt"], /--prompt-file huge\.txt: larger than 1 MiB/],
      [["--config", "huge.json"], /--config huge\.json: larger than 1 MiB/],
    ];
    for (const [flags, message] of cases) {
      const result = await runWithin(60_000, ["photos", "-o", "out.csv", ...flags]);
      expect(result.signal, `${flags.join(" ")} was killed`).toBeNull();
      expect(result.code, result.stderr).toBe(2);
      expect(result.stderr).toMatch(message);
    }
  }, 240_000);
});

describe("a caption that echoes the key", () => {
  it("is kept with [redacted] in OUT, the sidecar, the XMP, the metadata and stderr", async () => {
    await makeDistinctImages(ws.dir, 2, "data");
    const credential = "urlsecret-0987654321";
    await fake.start({
      apiKey: TEST_KEY,
      caption: () => `A cat. Authorization: Bearer ${TEST_KEY}; also ${credential} and ${TEST_KEY}`,
    });
    const baseUrl = fake.baseUrl.replace("http://", `http://user:${credential}@`);
    const result = await runCli(
      ["data", "-o", "out.csv", "--sidecar", "--xmp", "--hf-metadata", "-v"],
      { cwd: ws.dir, baseUrl },
    );
    expect(result.code, result.stderr).toBe(0);
    const written = [
      await readFile(path.join(ws.dir, "out.csv"), "utf8"),
      await readFile(path.join(ws.dir, "data", "img-0000.txt"), "utf8"),
      await readFile(path.join(ws.dir, "data", "img-0001.jpg.xmp"), "utf8"),
      await readFile(path.join(ws.dir, "data", "metadata.jsonl"), "utf8"),
      result.stderr,
    ];
    for (const text of written) {
      expect(text).not.toContain(TEST_KEY);
      expect(text).not.toContain(credential);
    }
    const rows = await readCsv(path.join(ws.dir, "out.csv"));
    expect(rows[0]?.caption).toBe(
      "A cat. Authorization: Bearer [redacted]; also [redacted] and [redacted]",
    );
    expect(written[1]).toContain("Bearer [redacted]");
    expect(written[2]).toContain("Bearer [redacted]");
  }, 60_000);

  it("is masked in a structured answer's tags, in OUT, XMP and the JSON log", async () => {
    await makeDistinctImages(ws.dir, 1);
    await fake.start({
      apiKey: TEST_KEY,
      respond: () => ({ kind: "ok", content: JSON.stringify({ tags: ["cat", TEST_KEY] }) }),
    });
    const result = await runCli(
      ["photos", "-o", "out.jsonl", "--tags", "--xmp", "--log-format", "json"],
      { cwd: ws.dir, baseUrl: fake.baseUrl },
    );
    expect(result.code, result.stderr).toBe(0);
    const [row] = await readJsonl(path.join(ws.dir, "out.jsonl"));
    expect(row?.tags).toEqual(["cat", "[redacted]"]);
    expect(JSON.stringify(row)).not.toContain(TEST_KEY);
    const xmp = await readFile(path.join(ws.dir, "photos", "img-0000.jpg.xmp"), "utf8");
    expect(xmp).not.toContain(TEST_KEY);
    expect(result.stderr).not.toContain(TEST_KEY);
  }, 60_000);
});

describe("a key in another shape or place", () => {
  it("is masked in tags though they are lowercased, whatever the key's case", async () => {
    await makeDistinctImages(ws.dir, 1);
    const key = "sk-ABCDEF0123456789xyz";
    await fake.start({
      apiKey: key,
      respond: () => ({ kind: "ok", content: JSON.stringify({ tags: ["cat", key] }) }),
    });
    const result = await runCli(["photos", "-o", "out.jsonl", "--tags", "--sidecar"], {
      cwd: ws.dir,
      baseUrl: fake.baseUrl,
      env: { MINICPM_API_KEY: key },
    });
    expect(result.code, result.stderr).toBe(0);
    const written = [
      await readFile(path.join(ws.dir, "out.jsonl"), "utf8"),
      await readFile(path.join(ws.dir, "photos", "img-0000.txt"), "utf8"),
    ];
    for (const text of written) expect(text.toLowerCase()).not.toContain(key.toLowerCase());
    const [row] = await readJsonl(path.join(ws.dir, "out.jsonl"));
    expect(row?.tags).toEqual(["cat", "[redacted]"]);
  }, 60_000);

  it("is masked as the Basic auth a base URL's password is sent as, when a server echoes it", async () => {
    await makeDistinctImages(ws.dir, 1);
    const password = "sk-UrlPassw0rd99";
    await fake.start({
      caption: (record) => `auth was ${String(record.headers.authorization)}`,
    });
    const baseUrl = fake.baseUrl.replace("http://", `http://u:${password}@`);
    const result = await runCli(["photos", "-o", "out.csv", "--sidecar"], {
      cwd: ws.dir,
      baseUrl,
      env: { MINICPM_API_KEY: undefined },
    });
    expect(result.code, result.stderr).toBe(0);
    const basic = Buffer.from(`u:${password}`).toString("base64");
    expect(fake.requests[0]?.headers.authorization).toBe(`Basic ${basic}`);
    const [row] = await readCsv(path.join(ws.dir, "out.csv"));
    expect(row?.caption).toBe("auth was Basic [redacted]");
    const sidecar = await readFile(path.join(ws.dir, "photos", "img-0000.txt"), "utf8");
    expect(sidecar).not.toContain(basic);
  }, 60_000);

  it("is masked in what caption models shows of a server's list", async () => {
    await fake.start({
      apiKey: TEST_KEY,
      models: [{ id: `leak-${TEST_KEY}`, owned_by: `owner-${TEST_KEY}\u001b[31m` }],
    });
    const result = await runCli(["models"], { cwd: ws.dir, baseUrl: fake.baseUrl });
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain("leak-[redacted]\towner-[redacted]\\x1b[31m");
    expect(result.stdout + result.stderr).not.toContain(TEST_KEY);
  }, 60_000);
});

describe("a caption holding what XML forbids", () => {
  it("is written to XMP without it: the file parses, the user's rating and tags kept", async () => {
    const [image] = await makeDistinctImages(ws.dir, 1);
    const packet = `<?xml version="1.0" encoding="UTF-8"?>
<x:xmpmeta xmlns:x="adobe:ns:meta/">
 <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
  <rdf:Description rdf:about="" xmlns:xmp="http://ns.adobe.com/xap/1.0/"
    xmlns:dc="http://purl.org/dc/elements/1.1/" xmp:Rating="4">
   <dc:subject><rdf:Bag><rdf:li>holiday</rdf:li><rdf:li>beach</rdf:li></rdf:Bag></dc:subject>
  </rdf:Description>
 </rdf:RDF>
</x:xmpmeta>
`;
    const sidecar = path.join(ws.dir, `${image}.xmp`);
    await writeFile(sidecar, packet);
    await fake.start({
      apiKey: TEST_KEY,
      caption: () => "A\u0000 red\u0001 kite\u000b over \ufffe the sea \ud800at dusk.",
    });
    const result = await runCli(["photos", "-o", "out.jsonl", "--xmp"], {
      cwd: ws.dir,
      baseUrl: fake.baseUrl,
    });
    expect(result.code, result.stderr).toBe(0);
    const written = await readFile(sidecar, "utf8");
    const problems: string[] = [];
    new DOMParser({
      onError: (level, message) => {
        if (level !== "warning") problems.push(message);
      },
    }).parseFromString(written, "text/xml");
    expect(problems).toEqual([]);
    // What expat checks (xmldom lets these through): XML 1.0's Char production, whole file.
    expect(written).not.toMatch(XML_FORBIDDEN);
    const exif = await collect(
      spawn("perl", [EXIFTOOL, "-j", "-struct", "-XMP:all", sidecar], { cwd: ws.dir }),
    );
    expect(exif.code, exif.stderr).toBe(0);
    const [read] = JSON.parse(exif.stdout) as Record<string, unknown>[];
    expect(read?.Warning).toBeUndefined();
    expect(read?.Rating).toBe(4);
    expect(read?.Subject).toEqual(["holiday", "beach"]);
    expect(read?.Description).toBe("A red kite over  the sea at dusk.");
  }, 60_000);
});

describe("a reply body past the cap", () => {
  const HUNDRED_MB = 100 * 1024 * 1024;

  it("fails its image as reply_too_large, the connection closed long before 100 MB", async () => {
    await makeDistinctImages(ws.dir, 1);
    const ends: { sent: number; finished: boolean }[] = [];
    await fake.start({
      apiKey: TEST_KEY,
      respond: () => ({
        kind: "flood",
        bytes: HUNDRED_MB,
        onEnd: (sent, finished) => ends.push({ sent, finished }),
      }),
    });
    const result = await runWithin(120_000, ["photos", "-o", "out.csv", "--retries", "3"], {
      baseUrl: fake.baseUrl,
    });
    expect(result.code, result.stderr).toBe(3);
    const [failure] = await readJsonl(path.join(ws.dir, "out.errors.jsonl"));
    expect(failure?.code).toBe("reply_too_large");
    // Not asked again: the next 100 MB would be the same.
    expect(failure?.attempts).toBe(1);
    expect(String(failure?.message)).toMatch(/larger than 4 MiB.*--max-reply-bytes/);
    await expect.poll(() => ends.length, { timeout: 20_000 }).toBe(1);
    expect(ends[0]?.finished).toBe(false);
    expect(ends[0]?.sent).toBeLessThan(HUNDRED_MB / 4);
  }, 150_000);

  it("refuses a declared content-length over the cap before reading, and takes --max-reply-bytes", async () => {
    await makeDistinctImages(ws.dir, 2);
    const ends: { sent: number; finished: boolean }[] = [];
    await fake.start({
      apiKey: TEST_KEY,
      respond: (request) =>
        request.index === 0
          ? {
              kind: "flood",
              bytes: HUNDRED_MB,
              declareLength: true,
              onEnd: (sent, finished) => ends.push({ sent, finished }),
            }
          : { kind: "ok", content: "x".repeat(8 * 1024) },
    });
    const result = await runWithin(
      120_000,
      ["photos", "-o", "out.jsonl", "-c", "1", "--max-reply-bytes", "4096"],
      { baseUrl: fake.baseUrl },
    );
    expect(result.code, result.stderr).toBe(3);
    const failures = await readJsonl(path.join(ws.dir, "out.errors.jsonl"));
    expect(failures.map((failure) => failure.code)).toEqual(["reply_too_large", "reply_too_large"]);
    expect(String(failures[0]?.message)).toMatch(/declared 104857600 bytes/);
    expect(String(failures[1]?.message)).toMatch(/larger than 4 KiB/);
    await expect.poll(() => ends.length, { timeout: 20_000 }).toBe(1);
    expect(ends[0]?.finished).toBe(false);

    const bad = await runCli(["photos", "-o", "o.csv", "--max-reply-bytes", "10"], { cwd: ws.dir });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--max-reply-bytes: .*1024/);
  }, 150_000);

  it("refuses a /models list past the cap without reading it whole", async () => {
    let finished: boolean | null = null;
    server = createServer((req, res) => {
      if (req.method !== "GET") {
        res.writeHead(404).end();
        return;
      }
      res.writeHead(200, { "content-type": "application/json" });
      const chunk = Buffer.alloc(64 * 1024, " ");
      let sent = 0;
      const pump = () => {
        while (sent < HUNDRED_MB && !res.destroyed) {
          sent += chunk.length;
          if (!res.write(chunk)) return;
        }
        if (!res.destroyed) res.end();
        finished ??= !res.destroyed;
      };
      res.on("drain", pump);
      res.on("close", () => {
        finished ??= sent >= HUNDRED_MB;
      });
      pump();
    });
    await new Promise<void>((resolve) => server?.listen(0, "127.0.0.1", resolve));
    const port = (server.address() as AddressInfo).port;
    const result = await runWithin(60_000, ["models"], {
      baseUrl: `http://127.0.0.1:${port}/v1`,
    });
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/larger than 4 MiB.*--max-reply-bytes/);
    await expect.poll(() => finished, { timeout: 20_000 }).toBe(false);
  }, 90_000);
});

describe("names and error bodies shown on a terminal", () => {
  it("escapes control characters on stderr and describes a binary body, the errors file exact", async () => {
    const [image] = await makeDistinctImages(ws.dir, 2);
    const evil = "evil\u001b[31mred\u001b[0m\u0007.jpg";
    const other = "bell\u001b]0;owned\u0007\r.jpg";
    const names = [evil, other];
    const files = await readdir(path.join(ws.dir, "photos"));
    await writeFile(
      path.join(ws.dir, "photos", evil),
      await readFile(path.join(ws.dir, String(image))),
    );
    await writeFile(
      path.join(ws.dir, "photos", other),
      await readFile(path.join(ws.dir, "photos", files[1] ?? "")),
    );
    const gzip = gzipSync(Buffer.from(JSON.stringify({ error: { message: "x".repeat(300) } })));
    await fake.start({
      apiKey: TEST_KEY,
      respond: (request) =>
        request.index % 2 === 0
          ? {
              kind: "status",
              status: 500,
              body: gzip,
              headers: { "content-type": "application/json", "content-encoding": "gzip" },
            }
          : { kind: "status", status: 400, body: Buffer.from("oops\u0000\u001b[2J\u00ff\u00fe") },
    });
    const args = ["photos/evil*", "photos/bell*", "-o", "out.csv", "--retries", "0", "-c", "1"];
    const text = await runCli(args, { cwd: ws.dir, baseUrl: fake.baseUrl });
    expect(text.code, text.stderr).toBe(3);
    expect(text.stderr).not.toMatch(CONTROLS);
    expect(text.stderr).toContain("photos/evil\\x1b[31mred\\x1b[0m\\x07.jpg");
    expect(text.stderr).toContain("photos/bell\\x1b]0;owned\\x07\\r.jpg");
    expect(text.stderr).toContain(`a binary reply of ${gzip.length} bytes (gzip)`);
    expect(text.stderr).toMatch(/a binary reply of \d+ bytes/);
    const failures = await readJsonl(path.join(ws.dir, "out.errors.jsonl"));
    // The errors file keeps names exact (JSON escapes them) and holds no raw bytes of a body.
    expect(failures.map((failure) => failure.path).sort()).toEqual(
      names.map((name) => `photos/${name}`).sort(),
    );
    for (const failure of failures) {
      expect(String(failure.message)).toMatch(/a binary reply of \d+ bytes/);
      expect(String(failure.message)).not.toMatch(CONTROLS);
      expect(String(failure.message)).not.toContain("\ufffd");
    }

    // JSON logs keep the name exact too, escaped by JSON itself.
    const json = await runCli([...args, "--log-format", "json", "--overwrite"], {
      cwd: ws.dir,
      baseUrl: fake.baseUrl,
    });
    const failed = json.stderr
      .split("\n")
      .filter((line) => line.startsWith("{"))
      .map((line) => JSON.parse(line) as Record<string, unknown>)
      .filter((event) => event.event === "failed");
    expect(failed.map((event) => event.path).sort()).toEqual(
      names.map((name) => `photos/${name}`).sort(),
    );
    expect(json.stderr).not.toContain("\u001b");
  }, 90_000);
});

describe("a library caller's injected fetch", () => {
  it("reads a reply body up to the cap and cancels the stream past it", async () => {
    let pulled = 0;
    let cancelled = false;
    const endless = () =>
      new ReadableStream<Uint8Array>({
        pull(controller) {
          pulled += 1;
          controller.enqueue(new Uint8Array(64 * 1024).fill(0x20));
        },
        cancel() {
          cancelled = true;
        },
      });
    const client = createClient({
      baseUrl: "http://127.0.0.1:9/v1",
      timeoutMs: 30_000,
      maxReplyBytes: 1024 * 1024,
      fetch: async () => new Response(endless(), { status: 200 }),
    });
    await expect(client.chat({ model: "m", messages: [] })).rejects.toMatchObject({
      code: "reply_too_large",
      message: expect.stringMatching(/larger than 1 MiB.*maxReplyBytes/),
    });
    expect(cancelled).toBe(true);
    expect(pulled).toBeLessThan(40);
    const listed = await client.models(5_000);
    expect(listed.body).toBeNull();
    expect(listed.problem).toMatch(/larger than 1 MiB/);

    const declared = createClient({
      baseUrl: "http://127.0.0.1:9/v1",
      timeoutMs: 30_000,
      fetch: async () =>
        new Response(endless(), { status: 200, headers: { "content-length": "104857600" } }),
    });
    await expect(declared.chat({ model: "m", messages: [] })).rejects.toMatchObject({
      code: "reply_too_large",
      message: expect.stringMatching(/declared 104857600 bytes/),
    });
  });
});
