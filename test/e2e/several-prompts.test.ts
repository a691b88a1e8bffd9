import { readFile, symlink, writeFile } from "node:fs/promises";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { useFakeEndpoint } from "../helpers/fake-endpoint/use.js";
import { runCli } from "../helpers/run-cli.js";
import { makeDistinctImages, readCsv, readJsonl, useWorkspace } from "../helpers/workspace.js";

const ws = useWorkspace();
const fake = useFakeEndpoint("manual");

const TWO = `short: One sentence about the image.
long:
  prompt: "Describe it in detail. In short it is: {answer.short}"
  max_tokens: 700
  temperature: 0.2
`;

/** Each request's image, as the fake saw it: width×height, distinct per image here. */
const sizeOf = (request: { image: { width: number | null; height: number | null } | null }) =>
  `${request.image?.width}x${request.image?.height}`;

describe("--prompts", () => {
  it("asks two prompts of each image, the second with the first's answer: two columns on every row, one request each; a third prompt added later sends one request an image", async () => {
    await makeDistinctImages(ws.dir, 5);
    await writeFile(path.join(ws.dir, "prompts.yaml"), TWO);
    await fake.start({});
    const first = await runCli(["photos", "-o", "out.csv", "--prompts", "prompts.yaml"], {
      cwd: ws.dir,
      baseUrl: fake.baseUrl,
    });
    expect(first.code, first.stderr).toBe(0);
    expect(fake.requests).toHaveLength(10);
    const rows = await readCsv(path.join(ws.dir, "out.csv"));
    expect(rows).toHaveLength(5);
    for (const row of rows) {
      expect(row.caption_short).not.toBe("");
      expect(row.caption_long).not.toBe("");
      // The first prompt's answer is the caption, unless told otherwise.
      expect(row.caption).toBe(row.caption_short);
      const size = `${row.width}x${row.height}`;
      const asked = fake.requests.filter((request) => sizeOf(request) === size);
      expect(asked.map((request) => request.prompt)).toEqual([
        "One sentence about the image.",
        `Describe it in detail. In short it is: ${row.caption_short}`,
      ]);
      // The long prompt's own settings went with it alone.
      const bodies = asked.map((request) => request.body as Record<string, unknown>);
      expect(bodies.map((body) => body.max_tokens)).toEqual([512, 700]);
      expect(bodies.map((body) => body.temperature)).toEqual([undefined, 0.2]);
    }

    await writeFile(
      path.join(ws.dir, "prompts.yaml"),
      `${TWO}tags:\n  tags: true\n  prompt: "List the tags of this image."\n`,
    );
    const sent = fake.requests.length;
    const third = await runCli(["photos", "-o", "out.csv", "--prompts", "prompts.yaml"], {
      cwd: ws.dir,
      baseUrl: fake.baseUrl,
    });
    expect(third.code, third.stderr).toBe(0);
    const again = fake.requests.slice(sent);
    expect(again).toHaveLength(5);
    expect(new Set(again.map(sizeOf)).size).toBe(5);
    expect(again.every((request) => request.prompt?.startsWith("List the tags"))).toBe(true);
    // Adding a prompt is no change of the prompts that made the answers kept.
    expect(third.stderr).not.toContain("another prompt");
    const after = await readCsv(path.join(ws.dir, "out.csv"));
    expect(after).toHaveLength(5);
    expect(new Set(after.map((row) => row.path)).size).toBe(5);
    for (const row of after) {
      const before = rows.find((earlier) => earlier.path === row.path);
      expect(row.caption_short).toBe(before?.caption_short);
      expect(row.caption_long).toBe(before?.caption_long);
      expect(row.caption_tags).not.toBe("");
      expect(row["tags.tags"]).not.toBe("");
    }
    // Everything answered: a rerun sends nothing.
    const none = await runCli(["photos", "-o", "out.csv", "--prompts", "prompts.yaml"], {
      cwd: ws.dir,
      baseUrl: fake.baseUrl,
    });
    expect(none.code, none.stderr).toBe(0);
    expect(fake.requests).toHaveLength(sent + 5);
  });

  it("keeps each answer's own prompt hash: a prompt changed since is found by --redo prompt-changed, which may also give it a larger budget", async () => {
    await makeDistinctImages(ws.dir, 3);
    await writeFile(path.join(ws.dir, "prompts.yaml"), TWO);
    await fake.start({});
    const first = await runCli(["photos", "-o", "out.csv", "--prompts", "prompts.yaml"], {
      cwd: ws.dir,
      baseUrl: fake.baseUrl,
    });
    expect(first.code, first.stderr).toBe(0);
    // The short prompt is reworded and a third added: the run adds the third alone...
    await writeFile(
      path.join(ws.dir, "prompts.yaml"),
      `${TWO.replace("One sentence about the image.", "One short sentence.")}third: Name the colours.\n`,
    );
    const sent = fake.requests.length;
    const third = await runCli(["photos", "-o", "out.csv", "--prompts", "prompts.yaml"], {
      cwd: ws.dir,
      baseUrl: fake.baseUrl,
    });
    expect(third.code, third.stderr).toBe(0);
    expect(fake.requests.length).toBe(sent + 3);
    expect(third.stderr).toContain("--redo to prompt-changed");
    // ...and the answers of the old short prompt are still known as such.
    const redo = await runCli(
      [
        "photos",
        "-o",
        "out.csv",
        "--prompts",
        "prompts.yaml",
        "--redo",
        "prompt-changed",
        "--max-tokens",
        "900",
      ],
      { cwd: ws.dir, baseUrl: fake.baseUrl },
    );
    expect(redo.code, redo.stderr).toBe(0);
    const again = fake.requests.slice(sent + 3);
    expect(again).toHaveLength(9);
    // A redo's own budget goes with every prompt of its images, the long one's own included.
    expect(
      new Set(again.map((request) => (request.body as { max_tokens?: number }).max_tokens)),
    ).toEqual(new Set([900]));
    const rows = await readCsv(path.join(ws.dir, "out.csv"));
    expect(rows).toHaveLength(3);
    // Nothing is left to redo now.
    const none = await runCli(
      ["photos", "-o", "out.csv", "--prompts", "prompts.yaml", "--redo", "prompt-changed"],
      { cwd: ws.dir, baseUrl: fake.baseUrl },
    );
    expect(none.code, none.stderr).toBe(0);
    expect(fake.requests.length).toBe(sent + 12);
  });

  it("lets an image whose first prompt was answered finish its others when a budget stops the run, and a dry run counts what a new prompt would send", async () => {
    await makeDistinctImages(ws.dir, 12);
    await writeFile(path.join(ws.dir, "prompts.yaml"), TWO);
    await fake.start({ latencyMs: 20 });
    const stopped = await runCli(
      ["photos", "-o", "out.csv", "--prompts", "prompts.yaml", "-c", "2", "--budget-tokens", "200"],
      { cwd: ws.dir, baseUrl: fake.baseUrl },
    );
    expect(stopped.code, stopped.stderr).toBe(4);
    const rows = await readCsv(path.join(ws.dir, "out.csv"));
    expect(rows.length).toBeGreaterThan(0);
    expect(rows.length).toBeLessThan(12);
    // Every image begun was finished: no answer paid for was left behind.
    for (const row of rows) expect(row.caption_long).not.toBe("");
    expect(fake.requests).toHaveLength(2 * rows.length);

    await writeFile(path.join(ws.dir, "prompts.yaml"), `${TWO}third: Name the colours.\n`);
    const dry = await runCli(
      ["photos", "-o", "out.csv", "--prompts", "prompts.yaml", "--dry-run"],
      { cwd: ws.dir, baseUrl: fake.baseUrl },
    );
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stderr).toContain("dry run: 12 images would be sent");
  });

  it("turns rows of one prompt into rows of several: the sidecar takes the new caption, the old flags go", async () => {
    await makeDistinctImages(ws.dir, 3);
    let looping = true;
    await fake.start({
      respond: () =>
        looping
          ? {
              kind: "ok" as const,
              content: "a dog a dog a dog a dog a dog a dog a dog a dog a dog",
            }
          : undefined,
    });
    const plain = await runCli(["photos", "-o", "out.csv", "--sidecar"], {
      cwd: ws.dir,
      baseUrl: fake.baseUrl,
    });
    expect(plain.code, plain.stderr).toBe(0);
    expect((await readCsv(path.join(ws.dir, "out.csv"))).every((row) => row.flags !== "")).toBe(
      true,
    );
    looping = false;
    await writeFile(path.join(ws.dir, "prompts.yaml"), TWO);
    const several = await runCli(
      ["photos", "-o", "out.csv", "--sidecar", "--prompts", "prompts.yaml"],
      { cwd: ws.dir, baseUrl: fake.baseUrl },
    );
    expect(several.code, several.stderr).toBe(0);
    const rows = await readCsv(path.join(ws.dir, "out.csv"));
    expect(rows).toHaveLength(3);
    for (const row of rows) {
      expect(row.flags).toBe("");
      expect(row.caption).toBe(row.caption_short);
      const sidecar = path.join(ws.dir, String(row.path).replace(/\.jpg$/, ".txt"));
      expect((await readFile(sidecar, "utf8")).trim()).toBe(row.caption);
    }
  });

  it("gives a prompt's Thinking model room to think, keeps a prompt's own budget through a redo that names none, and will not rewrite a symlinked OUT", async () => {
    await makeDistinctImages(ws.dir, 2);
    await writeFile(
      path.join(ws.dir, "prompts.yaml"),
      "short: One sentence.\nthink:\n  prompt: Think it over.\n  model: MiniCPM-V-4.6-Thinking\nlong:\n  prompt: All of it.\n  max_tokens: 1500\n",
    );
    await fake.start({});
    const first = await runCli(["photos", "-o", "out.csv", "--prompts", "prompts.yaml"], {
      cwd: ws.dir,
      baseUrl: fake.baseUrl,
    });
    expect(first.code, first.stderr).toBe(0);
    const budgetOf = (requests: typeof fake.requests, prompt: string) =>
      new Set(
        requests
          .filter((request) => request.prompt === prompt)
          .map((request) => (request.body as { max_tokens?: number }).max_tokens),
      );
    expect(budgetOf(fake.requests, "One sentence.")).toEqual(new Set([512]));
    expect(budgetOf(fake.requests, "Think it over.")).toEqual(new Set([2048]));
    expect(budgetOf(fake.requests, "All of it.")).toEqual(new Set([1500]));
    const sent = fake.requests.length;
    const redo = await runCli(
      [
        "photos",
        "-o",
        "out.csv",
        "--prompts",
        "prompts.yaml",
        "--redo",
        "prompt-changed",
        "-p",
        "x",
      ],
      { cwd: ws.dir, baseUrl: fake.baseUrl },
    );
    // A prompt beside the file is refused; without it, nothing changed and nothing is redone.
    expect(redo.code).toBe(2);
    await writeFile(
      path.join(ws.dir, "prompts.yaml"),
      "short: One short sentence.\nthink:\n  prompt: Think it over.\n  model: MiniCPM-V-4.6-Thinking\nlong:\n  prompt: All of it.\n  max_tokens: 1500\n",
    );
    const again = await runCli(
      ["photos", "-o", "out.csv", "--prompts", "prompts.yaml", "--redo", "prompt-changed"],
      { cwd: ws.dir, baseUrl: fake.baseUrl },
    );
    expect(again.code, again.stderr).toBe(0);
    expect(budgetOf(fake.requests.slice(sent), "All of it.")).toEqual(new Set([1500]));

    await symlink(path.join(ws.dir, "out.csv"), path.join(ws.dir, "link.csv"));
    await writeFile(
      path.join(ws.dir, "more.yaml"),
      "short: One short sentence.\nlong:\n  prompt: All of it.\n  max_tokens: 1500\ncolours: Name the colours.\n",
    );
    const linked = await runCli(["photos", "-o", "link.csv", "--prompts", "more.yaml"], {
      cwd: ws.dir,
      baseUrl: fake.baseUrl,
    });
    expect(linked.code).toBe(2);
    expect(linked.stderr).toContain("link.csv: cannot give it the columns of the prompts added");
    expect(linked.stderr).toContain("it is a symlink");
  });

  it("writes JSONL's answers as a captions object, and a sidecar from the prompt named", async () => {
    await makeDistinctImages(ws.dir, 2);
    await writeFile(
      path.join(ws.dir, "prompts.json"),
      JSON.stringify({ short: "One sentence.", long: { prompt: "All of it: {answer.short}" } }),
    );
    await fake.start({ caption: (request) => `Answer to ${request.prompt?.split(" ")[0]}` });
    const result = await runCli(
      [
        "photos",
        "-o",
        "out.jsonl",
        "--prompts",
        "prompts.json",
        "--caption-prompt",
        "long",
        "--sidecar",
        "--hf-metadata",
      ],
      { cwd: ws.dir, baseUrl: fake.baseUrl },
    );
    expect(result.code, result.stderr).toBe(0);
    const rows = await readJsonl(path.join(ws.dir, "out.jsonl"));
    expect(rows).toHaveLength(2);
    for (const row of rows) {
      expect(row.captions).toEqual({ short: "Answer to One", long: "Answer to All" });
      expect(row.caption).toBe("Answer to All");
      const sidecar = path.join(ws.dir, String(row.path).replace(/\.jpg$/, ".txt"));
      expect((await readFile(sidecar, "utf8")).trim()).toBe("Answer to All");
    }
    // The dataset's metadata: the caption prompt's text, and every prompt as a column of its own.
    const metadata = await readJsonl(path.join(ws.dir, "photos", "metadata.jsonl"));
    expect(metadata).toHaveLength(2);
    for (const row of metadata) {
      expect(row).toMatchObject({
        text: "Answer to All",
        caption_short: "Answer to One",
        caption_long: "Answer to All",
      });
    }
  });

  it("refuses a cycle, an unknown answer and a prompt beside the file with exit 2, before anything is sent", async () => {
    await makeDistinctImages(ws.dir, 2);
    await fake.start({});
    const run = (file: string, text: string, extra: string[] = []) =>
      writeFile(path.join(ws.dir, file), text).then(() =>
        runCli(["photos", "-o", "out.csv", "--prompts", file, ...extra], {
          cwd: ws.dir,
          baseUrl: fake.baseUrl,
        }),
      );
    const cycle = await run("cycle.yaml", 'a: "x {answer.b}"\nb: "y {answer.a}"\n');
    expect(cycle.code).toBe(2);
    expect(cycle.stderr).toContain("--prompts: a uses {answer.b}; b uses {answer.a}: a cycle");
    const unknown = await run("unknown.yaml", 'a: "x"\nb: "y {answer.c}"\n');
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain("--prompts: b.prompt: {answer.c} names no other prompt");
    expect(unknown.stderr).toContain("the other prompts are a");
    const beside = await run("ok.yaml", 'a: "x"\n', ["-p", "Describe."]);
    expect(beside.code).toBe(2);
    expect(beside.stderr).toContain("--prompt cannot be given beside it");
    const broken = await run("broken.yaml", "a: [unclosed\n");
    expect(broken.code).toBe(2);
    expect(broken.stderr).toMatch(/--prompts: \S*broken.yaml is not valid YAML \(.*line 2/);
    expect(fake.requests).toHaveLength(0);
  });
});
