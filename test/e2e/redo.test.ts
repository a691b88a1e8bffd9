import { appendFile, readFile, rename, writeFile } from "node:fs/promises";
import path from "node:path";
import { describe, expect, it } from "vitest";
import type { RecordedRequest } from "../helpers/fake-endpoint/types.js";
import { useFakeEndpoint } from "../helpers/fake-endpoint/use.js";
import { runCli } from "../helpers/run-cli.js";
import { makeDistinctImages, readCsv, readJsonl, useWorkspace } from "../helpers/workspace.js";

const ws = useWorkspace();
const fake = useFakeEndpoint("manual");

/** Cuts off the answer for every image whose width is a multiple of three: those rows are flagged. */
const cutOffSome = (request: RecordedRequest) =>
  (request.image?.width ?? 1) % 3 === 0
    ? { kind: "ok" as const, content: "A dog on a", finishReason: "length" }
    : undefined;

const sizeOf = (row: Record<string, unknown>) => `${row.width}x${row.height}`;

describe("--redo", () => {
  it("flagged: sends exactly the flagged rows again, with the request changed, and leaves one row per image", async () => {
    await makeDistinctImages(ws.dir, 9);
    let cutting = true;
    await fake.start({ respond: (request) => (cutting ? cutOffSome(request) : undefined) });
    const first = await runCli(["photos", "-o", "out.csv", "--sidecar"], {
      cwd: ws.dir,
      baseUrl: fake.baseUrl,
    });
    expect(first.code, first.stderr).toBe(0);
    const before = await readCsv(path.join(ws.dir, "out.csv"));
    const flagged = before.filter((row) => row.flags !== "");
    expect(flagged.length).toBe(3);
    expect(new Set(flagged.map((row) => row.flags))).toEqual(new Set(["truncated"]));

    // One flagged image's sidecar the user has rewritten by hand: theirs, kept.
    const edited = path.join(ws.dir, String(flagged[0]?.path).replace(/\.jpg$/, ".txt"));
    await writeFile(edited, "my own words\n");
    cutting = false;
    const sent = fake.requests.length;
    const redo = await runCli(
      ["photos", "-o", "out.csv", "--sidecar", "--redo", "flagged", "--max-tokens", "900"],
      { cwd: ws.dir, baseUrl: fake.baseUrl },
    );
    expect(redo.code, redo.stderr).toBe(0);
    expect(redo.stderr).toContain("3 captioned");
    const again = fake.requests.slice(sent);
    expect(
      again.map((request) => `${request.image?.width}x${request.image?.height}`).sort(),
    ).toEqual(flagged.map(sizeOf).sort());
    // The larger budget went with the images redone, as asked.
    expect(again.map((request) => (request.body as { max_tokens?: number }).max_tokens)).toEqual([
      900, 900, 900,
    ]);
    const after = await readCsv(path.join(ws.dir, "out.csv"));
    expect(after).toHaveLength(9);
    expect(new Set(after.map((row) => row.path)).size).toBe(9);
    expect(after.filter((row) => row.flags !== "")).toEqual([]);
    for (const row of after) {
      const sidecar = path.join(ws.dir, String(row.path).replace(/\.jpg$/, ".txt"));
      if (sidecar === edited) continue;
      expect((await readFile(sidecar, "utf8")).trimEnd()).toBe(row.caption);
    }
    expect(await readFile(edited, "utf8")).toBe("my own words\n");
    expect(redo.stderr).toContain(
      `the sidecar of ${flagged[0]?.path} holds more than the caption being made again, so it is left as it is; OUT gets the new caption`,
    );
    // The rows not redone are as they were.
    const kept = before.filter((row) => row.flags === "");
    for (const row of kept) expect(after).toContainEqual(row);

    // Nothing flagged is left: a second redo sends nothing.
    const none = await runCli(["photos", "-o", "out.csv", "--redo", "flagged"], {
      cwd: ws.dir,
      baseUrl: fake.baseUrl,
    });
    expect(none.code, none.stderr).toBe(0);
    expect(fake.requests.length).toBe(sent + 3);
  });

  it("names flags and prompt-changed; leaves images not in OUT for a run without it; keeps the Hugging Face metadata to one row per image", async () => {
    await makeDistinctImages(ws.dir, 6);
    await fake.start({ respond: cutOffSome });
    const first = await runCli(["photos", "-o", "out.jsonl", "--hf-metadata"], {
      cwd: ws.dir,
      baseUrl: fake.baseUrl,
    });
    expect(first.code, first.stderr).toBe(0);
    await makeDistinctImages(ws.dir, 8);
    const sent = fake.requests.length;
    // Refusals only: none of these rows is refused, so nothing is sent, and the new images wait.
    const refusals = await runCli(["photos", "-o", "out.jsonl", "--redo", "refusal"], {
      cwd: ws.dir,
      baseUrl: fake.baseUrl,
    });
    expect(refusals.code, refusals.stderr).toBe(0);
    expect(fake.requests.length).toBe(sent);
    expect(refusals.stderr).toContain(
      "2 images have no finished row in OUT yet: --redo sends only those it makes again, so they are left for a run without it",
    );

    const prompt = await runCli(
      [
        "photos",
        "-o",
        "out.jsonl",
        "--hf-metadata",
        "--redo",
        "prompt-changed",
        "-p",
        "Name the colour.",
      ],
      { cwd: ws.dir, baseUrl: fake.baseUrl },
    );
    expect(prompt.code, prompt.stderr).toBe(0);
    expect(fake.requests.length).toBe(sent + 6);
    expect(
      fake.requests.slice(sent).every((request) => request.prompt === "Name the colour."),
    ).toBe(true);
    const rows = await readJsonl(path.join(ws.dir, "out.jsonl"));
    expect(rows).toHaveLength(6);
    const metadata = await readJsonl(path.join(ws.dir, "photos", "metadata.jsonl"));
    expect(metadata).toHaveLength(6);
    expect(new Set(metadata.map((row) => row.file_name)).size).toBe(6);
    for (const row of metadata) {
      const out = rows.find((r) => r.path === `photos/${row.file_name}`);
      expect(row.text).toBe(out?.caption);
    }
  });

  it("a later row wins for the review page and for a redo, before OUT is rewritten (a run killed first)", async () => {
    await makeDistinctImages(ws.dir, 3);
    await fake.start({ respond: cutOffSome });
    const first = await runCli(["photos", "-o", "out.jsonl"], {
      cwd: ws.dir,
      baseUrl: fake.baseUrl,
    });
    expect(first.code, first.stderr).toBe(0);
    const rows = await readJsonl(path.join(ws.dir, "out.jsonl"));
    const flagged = rows.find((row) => (row.flags as string[]).length > 0);
    expect(flagged).toBeDefined();
    // What a redo killed before its end leaves: the old row, then the new one after it.
    await appendFile(
      path.join(ws.dir, "out.jsonl"),
      `${JSON.stringify({ ...flagged, caption: "The new caption.", flags: [], truncated: false })}\n`,
    );
    const report = await runCli(["report", "out.jsonl"], { cwd: ws.dir });
    expect(report.code, report.stderr).toBe(0);
    const html = await readFile(path.join(ws.dir, "out.report.html"), "utf8");
    const shown = JSON.parse(
      /<script type="application\/json" id="rows">([\s\S]*?)<\/script>/.exec(html)?.[1] ?? "null",
    ) as { p: string; c: string }[];
    expect(shown).toHaveLength(3);
    expect(shown.find((row) => row.p === flagged?.path)?.c).toBe("The new caption.");
    // The image's latest row is not flagged: nothing to redo.
    const sent = fake.requests.length;
    const redo = await runCli(["photos", "-o", "out.jsonl", "--redo", "flagged"], {
      cwd: ws.dir,
      baseUrl: fake.baseUrl,
    });
    expect(redo.code, redo.stderr).toBe(0);
    expect(fake.requests.length).toBe(
      sent + rows.filter((row) => (row.flags as string[]).length > 0).length - 1,
    );
  });

  it("a row left twice by a run killed before its end is rewritten once by the next run", async () => {
    await makeDistinctImages(ws.dir, 3);
    await fake.start({});
    const first = await runCli(["photos", "-o", "out.jsonl"], {
      cwd: ws.dir,
      baseUrl: fake.baseUrl,
    });
    expect(first.code, first.stderr).toBe(0);
    const rows = await readJsonl(path.join(ws.dir, "out.jsonl"));
    await appendFile(
      path.join(ws.dir, "out.jsonl"),
      `${JSON.stringify({ ...rows[0], caption: "Its later caption." })}\n`,
    );
    const again = await runCli(["photos", "-o", "out.jsonl"], {
      cwd: ws.dir,
      baseUrl: fake.baseUrl,
    });
    expect(again.code, again.stderr).toBe(0);
    const after = await readJsonl(path.join(ws.dir, "out.jsonl"));
    expect(after).toHaveLength(3);
    expect(after.find((row) => row.path === rows[0]?.path)?.caption).toBe("Its later caption.");
  });

  it("rewrites a CSV begun without --csv-formula-guard and redone with it to one row per image", async () => {
    await makeDistinctImages(ws.dir, 2);
    await rename(
      path.join(ws.dir, "photos", "img-0000.jpg"),
      path.join(ws.dir, "photos", "=img.jpg"),
    );
    await fake.start({ respond: cutOffSome });
    const first = await runCli(["photos", "-o", "out.csv"], { cwd: ws.dir, baseUrl: fake.baseUrl });
    expect(first.code, first.stderr).toBe(0);
    const redo = await runCli(
      [
        "photos",
        "-o",
        "out.csv",
        "--csv-formula-guard",
        "--redo",
        "prompt-changed",
        "-p",
        "Other words.",
      ],
      { cwd: ws.dir, baseUrl: fake.baseUrl },
    );
    expect(redo.code, redo.stderr).toBe(0);
    const rows = await readCsv(path.join(ws.dir, "out.csv"));
    expect(rows).toHaveLength(2);
  });

  it("refuses a word it does not know, naming the flag and the words it takes", async () => {
    await makeDistinctImages(ws.dir, 1);
    const result = await runCli(["photos", "-o", "out.csv", "--redo", "truncted"], {
      cwd: ws.dir,
    });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(
      '--redo: "truncted" is not one of flagged, prompt-changed, repetition, refusal, truncated',
    );
    const both = await runCli(["photos", "-o", "out.csv", "--redo", "flagged", "--overwrite"], {
      cwd: ws.dir,
    });
    expect(both.code).toBe(2);
    expect(both.stderr).toContain(
      "--redo: makes some rows of OUT again, and --overwrite discards them all",
    );
  });
});
