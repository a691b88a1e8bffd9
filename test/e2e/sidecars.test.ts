import { readdir, readFile, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { useFakeEndpoint } from "../helpers/fake-endpoint/use.js";
import { collect, runCli, startCli, TEST_KEY } from "../helpers/run-cli.js";
import { makeDistinctImages, readJsonl, useWorkspace, waitFor } from "../helpers/workspace.js";

const ws = useWorkspace();
const fake = useFakeEndpoint({ apiKey: TEST_KEY });

const run = (args: string[]) => runCli(args, { cwd: ws.dir, baseUrl: fake.baseUrl });
const sidecarOf = (image: string, ext = ".txt") =>
  path.join(ws.dir, image.replace(/\.[^.]+$/, ext));
const readSidecar = (image: string, ext?: string) => readFile(sidecarOf(image, ext), "utf8");

describe("--sidecar", () => {
  it("writes <stem>.txt beside every image of a nested folder, one line each, then a rerun sends nothing", async () => {
    // A caption with line breaks must still be one line: trainers read only the first.
    await fake.start({
      apiKey: TEST_KEY,
      caption: (request) => `a photo\nof image ${request.index}\r\n with detail`,
    });
    const first = await makeDistinctImages(ws.dir, 3, "set/10_ohwx person");
    // Another size, so that no image is a copy of one in the first folder.
    const second = await makeDistinctImages(ws.dir, 2, "set/5_style/deeper", 48);
    const result = await run(["set", "--sidecar"]);
    expect(result.code, result.stderr).toBe(0);
    for (const image of [...first, ...second]) {
      const text = await readSidecar(image);
      expect(text).toMatch(/^a photo of image \d+ with detail\n$/);
    }
    expect(fake.requests).toHaveLength(5);
    // The record of what was captioned lives with the data, out of its way, keyed from there.
    const record = await readJsonl(path.join(ws.dir, "set", ".caption", "captions.jsonl"));
    expect(record.map((row) => `set/${row.path}`).sort()).toEqual([...first, ...second].sort());

    fake.resetStats();
    const again = await run(["set", "--sidecar"]);
    expect(again.code).toBe(0);
    expect(again.stderr).toMatch(/nothing to do/);
    expect(fake.requests).toHaveLength(0);
  });

  it("takes .caption or any .word as EXT, and refuses what is not one", async () => {
    const images = await makeDistinctImages(ws.dir, 2);
    expect((await run(["photos", "--sidecar", ".caption"])).code).toBe(0);
    for (const image of images) expect(await readSidecar(image, ".caption")).toMatch(/\n$/);
    const bad = await run(["photos", "--sidecar", "txt"]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--sidecar: "txt" is not an extension like \.txt/);
  });

  it("skip leaves a hand-written sidecar alone and does not send its image", async () => {
    const [kept, other] = await makeDistinctImages(ws.dir, 2);
    await writeFile(sidecarOf(kept as string), "hand, written, tags\n");
    const result = await run(["photos", "--sidecar"]);
    expect(result.code).toBe(0);
    expect(await readSidecar(kept as string)).toBe("hand, written, tags\n");
    expect(await readSidecar(other as string)).toMatch(/^A test caption/);
    expect(fake.requests).toHaveLength(1);
  });

  it("overwrite replaces it, once", async () => {
    const [image] = await makeDistinctImages(ws.dir, 1);
    await writeFile(sidecarOf(image as string), "old\n");
    expect((await run(["photos", "--sidecar", "--sidecar-policy", "overwrite"])).code).toBe(0);
    expect(await readSidecar(image as string)).toMatch(/^A test caption for [0-9a-f]+\.\n$/);
    fake.resetStats();
    await run(["photos", "--sidecar", "--sidecar-policy", "overwrite"]);
    expect(fake.requests).toHaveLength(0);
  });

  it.each([
    ["append", ", ", (old: string, caption: string) => `${old}, ${caption}`],
    ["prepend", " | ", (old: string, caption: string) => `${caption} | ${old}`],
  ] as const)(
    "%s keeps the old text and adds the caption once, however often it reruns",
    async (policy, join, expected) => {
      const [image] = await makeDistinctImages(ws.dir, 1);
      await writeFile(sidecarOf(image as string), "tag1, tag2\n");
      const args = ["photos", "--sidecar", "--sidecar-policy", policy, "--sidecar-join", join];
      expect((await run(args)).code).toBe(0);
      const [row] = await readJsonl(path.join(ws.dir, "photos", ".caption", "captions.jsonl"));
      const caption = String(row?.caption);
      expect(await readSidecar(image as string)).toBe(`${expected("tag1, tag2", caption)}\n`);
      fake.resetStats();
      expect((await run(args)).code).toBe(0);
      expect(await readSidecar(image as string)).toBe(`${expected("tag1, tag2", caption)}\n`);
      expect(fake.requests).toHaveLength(0);
    },
  );

  it("a sidecar missing after a crash between row and sidecar is completed from the record, without a request", async () => {
    const [image] = await makeDistinctImages(ws.dir, 1);
    await writeFile(sidecarOf(image as string), "tag1\n");
    const args = ["photos", "--sidecar", "--sidecar-policy", "append"];
    await run(args);
    const [row] = await readJsonl(path.join(ws.dir, "photos", ".caption", "captions.jsonl"));
    // As if the run died after its row and before the sidecar: the old text, unappended.
    await writeFile(sidecarOf(image as string), "tag1\n");
    fake.resetStats();
    expect((await run(args)).code).toBe(0);
    expect(await readSidecar(image as string)).toBe(`tag1, ${String(row?.caption)}\n`);
    expect(fake.requests).toHaveLength(0);
  });

  it("two images that would share a sidecar: the second fails as sidecar_collision naming both", async () => {
    const [image] = await makeDistinctImages(ws.dir, 1);
    const twin = (image as string).replace(/\.jpg$/, ".png");
    await writeFile(path.join(ws.dir, twin), await readFile(path.join(ws.dir, image as string)));
    const result = await run(["photos", "--sidecar"]);
    expect(result.code).toBe(3);
    const [failure] = await readJsonl(
      path.join(ws.dir, "photos", ".caption", "captions.errors.jsonl"),
    );
    expect(failure?.code).toBe("sidecar_collision");
    expect(String(failure?.message)).toContain(image as string);
    expect(String(failure?.message)).toContain(twin);
    expect(await readSidecar(image as string)).toMatch(/^A test caption/);
  });

  it("kill -9 mid-run leaves no partial sidecar, and a rerun completes every one", async () => {
    await fake.start({ apiKey: TEST_KEY, latencyMs: 40 });
    const images = await makeDistinctImages(ws.dir, 40);
    const child = startCli(["photos", "--sidecar", "-c", "4"], {
      cwd: ws.dir,
      baseUrl: fake.baseUrl,
    });
    const done = collect(child);
    await waitFor(async () => {
      const names = await readdir(path.join(ws.dir, "photos"));
      return names.filter((name) => name.endsWith(".txt")).length >= 10;
    });
    child.kill("SIGKILL");
    await done;
    const check = async () => {
      for (const image of images) {
        const text = await readSidecar(image).catch(() => null);
        if (text !== null) expect(text, image).toMatch(/^A test caption for [0-9a-f]{12}\.\n$/);
      }
    };
    await check();
    // What a kill in the middle of a rename would leave behind.
    await writeFile(path.join(ws.dir, "photos", ".img-0000.txt.0badc0de.tmp"), "half");
    expect((await run(["photos", "--sidecar"])).code).toBe(0);
    await check();
    const leftovers = (await readdir(path.join(ws.dir, "photos"))).filter((name) =>
      name.endsWith(".tmp"),
    );
    expect(leftovers).toEqual([]);
    const record = await readJsonl(path.join(ws.dir, "photos", ".caption", "captions.jsonl"));
    expect(new Set(record.map((row) => row.path)).size).toBe(images.length);
    expect(record).toHaveLength(images.length);
    for (const row of record) {
      expect(await readSidecar(`photos/${row.path}`)).toBe(`${String(row.caption)}\n`);
    }
  }, 30_000);

  it("OUT and sidecars from one run agree, with --prefix and --suffix in both", async () => {
    const images = await makeDistinctImages(ws.dir, 3);
    const result = await run([
      "photos",
      "-o",
      "out.jsonl",
      "--sidecar",
      "--prefix",
      "ohwx, ",
      "--suffix",
      ", best",
    ]);
    expect(result.code).toBe(0);
    const rows = await readJsonl(path.join(ws.dir, "out.jsonl"));
    expect(rows).toHaveLength(images.length);
    for (const row of rows) {
      expect(String(row.caption)).toMatch(/^ohwx, A test caption .*, best$/);
      expect(await readSidecar(String(row.path))).toBe(`${String(row.caption)}\n`);
    }
    // A sidecar deleted later is put back from OUT, and OUT keeps one row per image.
    await rm(sidecarOf(images[0] as string));
    fake.resetStats();
    expect((await run(["photos", "-o", "out.jsonl", "--sidecar"])).code).toBe(0);
    expect(fake.requests).toHaveLength(0);
    expect(await readJsonl(path.join(ws.dir, "out.jsonl"))).toHaveLength(images.length);
    expect(await readSidecar(images[0] as string)).toMatch(/^ohwx, /);
  });

  it("every bad combination of the sidecar flags is exit 2 naming them", async () => {
    await makeDistinctImages(ws.dir, 1);
    const cases: [string[], RegExp][] = [
      [["photos", "--sidecar-policy", "append"], /--sidecar-policy needs --sidecar/],
      [["photos", "--sidecar-join", ";"], /--sidecar-join needs --sidecar/],
      [
        ["photos", "--sidecar", "--sidecar-policy", "merge"],
        /--sidecar-policy: expected one of skip, overwrite, append, prepend, got "merge"/,
      ],
      [
        ["photos", "--sidecar", "--sidecar-join", ";"],
        /--sidecar-join only applies with --sidecar-policy append or prepend/,
      ],
      [["photos", "--sidecar", "--format", "csv"], /--format names OUT's format: give -o as well/],
      [
        ["photos"],
        /-o\/--output is required \(or --sidecar, --hf-metadata, --xmp, --webdataset-out\)/,
      ],
      [["--sidecar", "photos"], /put --sidecar after the inputs/],
    ];
    for (const [args, message] of cases) {
      const result = await run(args);
      expect(result.code, args.join(" ")).toBe(2);
      expect(result.stderr, args.join(" ")).toMatch(message);
    }
    expect(fake.requests).toHaveLength(0);
  });
});

describe("--sidecar beside other outputs", () => {
  it("outputs added later, and --overwrite, are filled even where sidecars exist (skip)", async () => {
    const images = await makeDistinctImages(ws.dir, 3);
    expect((await run(["photos", "--sidecar"])).code).toBe(0);
    const first = await Promise.all(images.map((image) => readSidecar(image)));
    const later = await run(["photos", "--sidecar", "-o", "out.jsonl"]);
    expect(later.code, later.stderr).toBe(0);
    expect(await readJsonl(path.join(ws.dir, "out.jsonl"))).toHaveLength(3);
    const again = await run(["photos", "--sidecar", "-o", "out.jsonl", "--overwrite"]);
    expect(again.code).toBe(0);
    expect(await readJsonl(path.join(ws.dir, "out.jsonl"))).toHaveLength(3);
    // skip: the sidecars that were there stay as they were.
    expect(await Promise.all(images.map((image) => readSidecar(image)))).toEqual(first);
  });

  it("refuses an EXT that would overwrite images or XMP sidecars", async () => {
    const [image] = await makeDistinctImages(ws.dir, 1);
    const before = await readFile(path.join(ws.dir, image as string));
    for (const ext of [".jpg", ".PNG", ".xmp"]) {
      const result = await run(["photos", "--sidecar", ext, "--sidecar-policy", "overwrite"]);
      expect(result.code, ext).toBe(2);
      expect(result.stderr).toMatch(/is the extension of images or XMP sidecars/);
    }
    expect(await readFile(path.join(ws.dir, image as string))).toEqual(before);
    expect(fake.requests).toHaveLength(0);
  });
});

describe("the record kept without -o", () => {
  it("lives with the data, so a run from another folder does not append twice", async () => {
    const [image] = await makeDistinctImages(ws.dir, 1, "ds");
    await writeFile(sidecarOf(image as string), "tag1\n");
    const args = ["--sidecar", "--sidecar-policy", "append"];
    expect((await runCli(["ds", ...args], { cwd: ws.dir, baseUrl: fake.baseUrl })).code).toBe(0);
    const once = await readSidecar(image as string);
    expect(once).toMatch(/^tag1, A test caption/);
    fake.resetStats();
    const inside = path.join(ws.dir, "ds");
    expect((await runCli([".", ...args], { cwd: inside, baseUrl: fake.baseUrl })).code).toBe(0);
    expect(fake.requests).toHaveLength(0);
    expect(await readSidecar(image as string)).toBe(once);
  });
});
