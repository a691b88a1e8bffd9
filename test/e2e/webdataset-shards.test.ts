import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import {
  link,
  mkdir,
  readdir,
  readFile,
  rm,
  stat,
  symlink,
  truncate,
  writeFile,
} from "node:fs/promises";
import path from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { useFakeEndpoint } from "../helpers/fake-endpoint/use.js";
import { runCli, TEST_KEY } from "../helpers/run-cli.js";
import {
  img2datasetMembers,
  sampleJpeg,
  tarList,
  tarMember,
  writeShard,
} from "../helpers/shards.js";
import { readCsv, readJsonl, useWorkspace } from "../helpers/workspace.js";

const execFileAsync = promisify(execFile);
const ws = useWorkspace();
const fake = useFakeEndpoint({ apiKey: TEST_KEY });
const run = (args: string[]) => runCli(args, { cwd: ws.dir, baseUrl: fake.baseUrl });
const at = (name: string) => path.join(ws.dir, name);

async function sha256Of(file: string): Promise<string> {
  return createHash("sha256")
    .update(await readFile(file))
    .digest("hex");
}

/** Two img2dataset-like shards of 3 and 2 samples, keys 000000000… */
async function twoShards(): Promise<void> {
  await writeShard(at("shards/00000.tar"), await img2datasetMembers(0, 3));
  await writeShard(at("shards/00001.tar"), await img2datasetMembers(3, 2));
}

describe("WebDataset shards as inputs", () => {
  it("captions each sample of a brace pattern of shards from inside the tar, named shard.tar#key, and leaves the shards as they were", async () => {
    await twoShards();
    // A sample with no image, and a loose member, in the second shard.
    await writeShard(at("shards/00001.tar"), [
      ...(await img2datasetMembers(3, 2)),
      { name: "000000009.txt", data: "a caption without its image" },
      { name: "README", data: "not a sample" },
    ]);
    const before = await sha256Of(at("shards/00001.tar"));
    const result = await run(["shards/{00000..00001}.tar", "-o", "out.csv"]);
    expect(result.code, result.stderr).toBe(0);
    const rows = await readCsv(at("out.csv"));
    expect(rows.map((row) => row.path).sort()).toEqual([
      "shards/00000.tar#000000000",
      "shards/00000.tar#000000001",
      "shards/00000.tar#000000002",
      "shards/00001.tar#000000003",
      "shards/00001.tar#000000004",
    ]);
    // The image sent is the sample's own: its size is the JPEG's in the shard.
    const third = rows.find((row) => row.path === "shards/00000.tar#000000002");
    expect([third?.width, third?.height]).toEqual(["42", "40"]);
    expect(fake.requests).toHaveLength(5);
    expect(result.stderr).toMatch(
      /1 sample with no image member .* was skipped: 1 in shards\/00001\.tar/,
    );
    expect(await sha256Of(at("shards/00001.tar"))).toBe(before);

    // The review page makes each sample's thumbnail from the image inside its shard.
    const report = await run(["report", "out.csv"]);
    expect(report.code, report.stderr).toBe(0);
    expect(report.stderr).toMatch(/5 made, 0 kept\)/);
    expect(await readdir(at("out.report_files"))).toHaveLength(5);

    // A rerun sends nothing: every sample has its row.
    const again = await run(["shards/{00000..00001}.tar", "-o", "out.csv"]);
    expect(again.code, again.stderr).toBe(0);
    expect(fake.requests).toHaveLength(5);
  });

  it("a corrupt shard fails alone, as one row saying why, while the others are captioned", async () => {
    await twoShards();
    await writeFile(at("shards/00002.tar"), "this was never a tar archive, just text ".repeat(40));
    // Cut inside its second image: the header promises more than the file holds.
    await writeShard(at("shards/00003.tar"), await img2datasetMembers(10, 2));
    await truncate(at("shards/00003.tar"), 2048);
    // A pipe named like a shard would hold the run for good if it were opened to read.
    await execFileAsync("mkfifo", [at("shards/00004.tar")]);
    const result = await run(["shards/*.tar", "-o", "out.jsonl"]);
    // Some images failed: exit 3, as for an undecodable photo.
    expect(result.code).toBe(3);
    const rows = await readJsonl(at("out.jsonl"));
    expect(rows).toHaveLength(5);
    const failures = await readJsonl(at("out.errors.jsonl"));
    expect(failures.map((row) => [row.path, row.code]).sort()).toEqual([
      ["shards/00002.tar", "shard_unreadable"],
      ["shards/00003.tar", "shard_unreadable"],
      ["shards/00004.tar", "shard_unreadable"],
    ]);
    const byPath = new Map(failures.map((row) => [row.path, String(row.message)]));
    expect(byPath.get("shards/00002.tar")).toMatch(/not a tar archive/);
    expect(byPath.get("shards/00003.tar")).toMatch(/cut short/);
    expect(byPath.get("shards/00004.tar")).toMatch(/not a regular file/);
  });

  it("sends identical images once, whichever shards hold them, and takes one sample named shard.tar#key", async () => {
    const same = await sampleJpeg(7);
    await writeShard(at("a.tar"), [
      { name: "x.jpg", data: same },
      { name: "y.png", data: await sampleJpeg(8) },
    ]);
    await writeShard(at("b.tar"), [{ name: "z.jpg", data: same }]);
    // A sample without an image in a.tar: said of a.tar taken whole, not of one sample named.
    await writeShard(at("a.tar"), [
      { name: "x.jpg", data: same },
      { name: "y.png", data: await sampleJpeg(8) },
      { name: "w.txt", data: "text alone" },
    ]);
    const result = await run(["a.tar", "b.tar", "-o", "out.csv"]);
    expect(result.code, result.stderr).toBe(0);
    const rows = await readCsv(at("out.csv"));
    const captions = new Map(rows.map((row) => [row.path, row.caption]));
    expect(captions.get("b.tar#z")).toBe(captions.get("a.tar#x"));
    expect(fake.requests).toHaveLength(2);

    const one = await run(["a.tar#y", "-o", "one.csv"]);
    expect(one.code, one.stderr).toBe(0);
    expect(one.stderr).not.toMatch(/skipped/);
    expect((await readCsv(at("one.csv"))).map((row) => row.path)).toEqual(["a.tar#y"]);
    const missing = await run(["a.tar#nope", "-o", "none.csv"]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/a\.tar#nope .*holds no image by that name/);
  });

  it("a folder of shards is not opened, and the run says how to name them", async () => {
    await twoShards();
    const result = await run(["shards", "-o", "out.csv"]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr).toMatch(
      /shards holds 2 shard or Parquet files and no image file: .*'shards\/\*\.tar'/,
    );
    expect(fake.requests).toHaveLength(0);
  });

  it("refuses --sidecar, --xmp and --hf-metadata with shards, pointing at --webdataset-out, before sending anything", async () => {
    await twoShards();
    for (const flag of [["--sidecar"], ["--xmp"], ["--hf-metadata"]]) {
      const result = await run(["shards/00000.tar", "-o", "out.csv", ...flag]);
      expect(result.code, flag[0]).toBe(2);
      expect(result.stderr).toMatch(/shards\/00000\.tar is a shard or a Parquet file/);
      expect(result.stderr).toMatch(/--webdataset-out DIR/);
    }
    expect(fake.requests).toHaveLength(0);
  });
});

describe("--webdataset-out", () => {
  it("writes each shard again with every original member unchanged and the caption added, as GNU tar reads it", async () => {
    await twoShards();
    // img2dataset's shards hold <key>.txt already: the default member would drop it, so it is refused.
    const refused = await run(["shards/*.tar", "--webdataset-out", "captioned"]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/00000\.tar already holds 000000000\.txt/);
    expect(refused.stderr).toMatch(/--webdataset-member caption\.txt/);
    expect(fake.requests).toHaveLength(0);

    const result = await run([
      "shards/*.tar",
      "-o",
      "out.csv",
      "--webdataset-out",
      "captioned",
      "--webdataset-member",
      "caption.txt",
    ]);
    expect(result.code, result.stderr).toBe(0);
    const rows = new Map((await readCsv(at("out.csv"))).map((row) => [row.path, row.caption]));
    expect(await tarList(at("captioned/00001.tar"))).toEqual([
      "000000003.jpg",
      "000000003.txt",
      "000000003.json",
      "000000003.caption.txt",
      "000000004.jpg",
      "000000004.txt",
      "000000004.json",
      "000000004.caption.txt",
    ]);
    for (const name of ["000000003.jpg", "000000003.txt", "000000003.json"]) {
      expect(await tarMember(at("captioned/00001.tar"), name)).toEqual(
        await tarMember(at("shards/00001.tar"), name),
      );
    }
    expect((await tarMember(at("captioned/00001.tar"), "000000004.caption.txt")).toString()).toBe(
      `${rows.get("shards/00001.tar#000000004")}\n`,
    );
    expect(await tarList(at("captioned/00000.tar"))).toHaveLength(12);
  });

  it("merges a structured answer into <key>.json, and replaces <key>.txt when that member is named", async () => {
    await twoShards();
    await writeFile(
      at("schema.json"),
      JSON.stringify({
        type: "object",
        properties: { caption: { type: "string" }, mood: { type: "string" } },
        required: ["caption", "mood"],
      }),
    );
    const result = await run([
      "shards/00001.tar",
      "--webdataset-out",
      "captioned",
      "--webdataset-member",
      "txt",
      "--json-schema",
      "schema.json",
    ]);
    expect(result.code, result.stderr).toBe(0);
    const names = await tarList(at("captioned/00001.tar"));
    expect(names.filter((name) => name.startsWith("000000003"))).toEqual([
      "000000003.jpg",
      "000000003.txt",
      "000000003.json",
    ]);
    const json = JSON.parse(
      (await tarMember(at("captioned/00001.tar"), "000000003.json")).toString(),
    );
    // The sample's own fields kept, the answer's added.
    expect(json.url).toBe("https://x/3.jpg");
    expect(json.key).toBe("000000003");
    expect(typeof json.mood).toBe("string");
    const text = (await tarMember(at("captioned/00001.tar"), "000000003.txt")).toString();
    expect(text).not.toBe("alt text 3");
    expect(text.trim()).toBe(json.caption);
  });

  it("a rerun writes only the shards still missing, and writes one whose samples are all in the record without a request", async () => {
    await twoShards();
    const args = (inputs: string[]) => [
      ...inputs,
      "-o",
      "out.jsonl",
      "--webdataset-out",
      "captioned",
      "--webdataset-member",
      "caption.txt",
    ];
    const first = await run(args(["shards/00000.tar"]));
    expect(first.code, first.stderr).toBe(0);
    const written = await stat(at("captioned/00000.tar"));
    expect(fake.requests).toHaveLength(3);

    const second = await run(args(["shards/00000.tar", "shards/00001.tar"]));
    expect(second.code, second.stderr).toBe(0);
    // Only the new shard's samples were sent, and the finished shard was not written again.
    expect(fake.requests).toHaveLength(5);
    expect((await stat(at("captioned/00000.tar"))).mtimeMs).toBe(written.mtimeMs);
    expect(await tarList(at("captioned/00001.tar"))).toHaveLength(8);

    // A shard lost after its samples were captioned is written again from the record alone.
    await rm(at("captioned/00001.tar"));
    const third = await run(args(["shards/00000.tar", "shards/00001.tar"]));
    expect(third.code, third.stderr).toBe(0);
    expect(fake.requests).toHaveLength(5);
    expect(await tarList(at("captioned/00001.tar"))).toHaveLength(8);
  });
  it("--redo writes the shard again with the new captions", async () => {
    await twoShards();
    const args = [
      "shards/00001.tar",
      "--webdataset-out",
      "captioned",
      "--webdataset-member",
      "caption.txt",
    ];
    const first = await run(args);
    expect(first.code, first.stderr).toBe(0);
    const redo = await run([
      ...args,
      "--prompt",
      "Describe it again.",
      "--prefix",
      "NEW: ",
      "--redo",
      "prompt-changed",
    ]);
    expect(redo.code, redo.stderr).toBe(0);
    expect(fake.requests).toHaveLength(4);
    const text = (await tarMember(at("captioned/00001.tar"), "000000003.caption.txt")).toString();
    expect(text).toMatch(/^NEW: /);
  });

  it("never writes over a file in DIR it did not write, whatever the record holds, nor into a file named as DIR", async () => {
    await twoShards();
    const args = ["--webdataset-out", "captioned", "--webdataset-member", "caption.txt"];
    // Every sample captioned and recorded first, with -o: the record accounts for the shard.
    expect((await run(["shards/00000.tar", "-o", "run.jsonl"])).code).toBe(0);
    await mkdir(at("captioned"), { recursive: true });
    await writeFile(at("captioned/00000.tar"), "someone's own file");
    const refused = await run(["shards/00000.tar", "-o", "run.jsonl", ...args]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/captioned\/00000\.tar exists, and caption did not write it/);
    expect(await readFile(at("captioned/00000.tar"), "utf8")).toBe("someone's own file");

    // A shard it wrote is its own: a rerun after its loss writes it again.
    const own = ["shards/00001.tar", "-o", "run.jsonl", ...args];
    expect((await run(own)).code).toBe(0);
    expect(await tarList(at("captioned/00001.tar"))).toHaveLength(8);
    await rm(at("captioned/00001.tar"));
    expect((await run(own)).code).toBe(0);
    expect(await tarList(at("captioned/00001.tar"))).toHaveLength(8);
    // A folder put in its place is not.
    await rm(at("captioned/00001.tar"));
    await mkdir(at("captioned/00001.tar"));
    expect((await run(own)).code).toBe(2);
    expect(fake.requests).toHaveLength(5);

    // A folder of new shards copied with its times is still caption's: a rerun there is at home.
    await execFileAsync("cp", ["-a", at("captioned"), at("copied")]);
    await rm(at("copied/00001.tar"), { recursive: true });
    await rm(at("copied/00000.tar"));
    const copied = [
      "shards/00000.tar",
      "-o",
      "run.jsonl",
      "--webdataset-out",
      "copied",
      "--webdataset-member",
      "caption.txt",
    ];
    expect((await run(copied)).code).toBe(0);
    const redo = await run([...copied, "--prompt", "Again.", "--redo", "prompt-changed"]);
    expect(redo.code, redo.stderr).toBe(0);
    await execFileAsync("cp", ["-a", at("copied"), at("copied-again")]);
    const again = await run([
      ...copied.slice(0, 4),
      "copied-again",
      ...copied.slice(5),
      "--prompt",
      "Once more.",
      "--redo",
      "prompt-changed",
    ]);
    expect(again.code, again.stderr).toBe(0);

    await writeFile(at("a-file"), "");
    const file = await run([
      "shards/00001.tar",
      "--webdataset-out",
      "a-file",
      "--webdataset-member",
      "caption.txt",
    ]);
    expect(file.code).toBe(2);
    expect(file.stderr).toMatch(/a-file is a file, not a folder/);
  });

  it("a pattern never takes the new shards for inputs, and an input among them is refused", async () => {
    await twoShards();
    const args = ["--webdataset-out", "shards/captioned", "--webdataset-member", "caption.txt"];
    expect((await run(["shards/**/*.tar", ...args])).code).toBe(0);
    const again = await run(["shards/**/*.tar", ...args]);
    expect(again.code, again.stderr).toBe(0);
    expect(fake.requests).toHaveLength(5);
    const same = await run([
      "shards/*.tar",
      "--webdataset-out",
      "shards",
      "--webdataset-member",
      "caption.txt",
    ]);
    expect(same.code).toBe(2);
    expect(same.stderr).toMatch(/matches only what the run writes/);
    const named = await run(["shards/captioned/00000.tar", ...args]);
    expect(named.code).toBe(2);
    expect(named.stderr).toMatch(/is this run's own output/);
    expect(fake.requests).toHaveLength(5);
  });

  it("a key holding # is its own sample, in rows, inputs and the new shard", async () => {
    await writeShard(at("h.tar"), [
      { name: "a#b.jpg", data: await sampleJpeg(1) },
      { name: "b.jpg", data: await sampleJpeg(2) },
    ]);
    const result = await run(["h.tar", "-o", "out.csv", "--webdataset-out", "new"]);
    expect(result.code, result.stderr).toBe(0);
    const rows = new Map((await readCsv(at("out.csv"))).map((row) => [row.path, row.caption]));
    expect([...rows.keys()].sort()).toEqual(["h.tar#a#b", "h.tar#b"]);
    expect((await tarMember(at("new/h.tar"), "a#b.txt")).toString()).toBe(
      `${rows.get("h.tar#a#b")}\n`,
    );
    expect((await tarMember(at("new/h.tar"), "b.txt")).toString()).toBe(`${rows.get("h.tar#b")}\n`);
    const one = await run(["h.tar#a#b", "-o", "one.csv"]);
    expect(one.code, one.stderr).toBe(0);
  });
  it("copies folders, links and owners of the input shard as they are, and never reads a link named like an image", async () => {
    const src = at("src");
    await mkdir(path.join(src, "sub"), { recursive: true });
    await writeFile(path.join(src, "sub", "k1.jpg"), await sampleJpeg(1));
    await symlink("/etc/passwd", path.join(src, "sub", "k2.jpg"));
    await link(path.join(src, "sub", "k1.jpg"), path.join(src, "sub", "k3.jpg"));
    await execFileAsync("tar", [
      "--owner=alice:1234",
      "--group=staff:99",
      "-cf",
      at("g.tar"),
      "-C",
      src,
      // In this order: the file first, so the hard link is the one that refers to it.
      "--no-recursion",
      "sub",
      "sub/k1.jpg",
      "sub/k2.jpg",
      "sub/k3.jpg",
    ]);
    const result = await run(["g.tar", "-o", "out.csv", "--webdataset-out", "new"]);
    expect(result.code, result.stderr).toBe(0);
    // Only the file is captioned; the links are samples without an image.
    expect((await readCsv(at("out.csv"))).map((row) => row.path)).toEqual(["g.tar#sub/k1"]);
    expect(result.stderr).toMatch(/2 samples with no image member/);
    const listing = async (file: string) =>
      (await execFileAsync("tar", ["-tvf", file])).stdout
        .split("\n")
        .filter((line) => line !== "")
        // Sizes and times of the added member aside: type, mode, owner and name (and a link's target).
        .map((line) => line.replace(/\s+\d+\s+\d{4}-\d\d-\d\d \d\d:\d\d/, ""));
    const before = await listing(at("g.tar"));
    const after = await listing(at("new/g.tar"));
    // The caption right after its sample's last member; everything else as it was, in order.
    const at1 = before.findIndex((line) => line.endsWith("sub/k1.jpg"));
    expect(after[at1 + 1]).toMatch(/^-rw-r--r-- alice\/staff\s+sub\/k1\.txt$/);
    expect(after.filter((_, i) => i !== at1 + 1)).toEqual(before);
    expect(
      before.some((line) => line.startsWith("l") && line.includes("k2.jpg -> /etc/passwd")),
    ).toBe(true);
  });
  it("with several prompts, each prompt's answer goes into <key>.json and the caption prompt's into <key>.txt", async () => {
    await writeShard(at("p.tar"), [{ name: "x.jpg", data: await sampleJpeg(3) }]);
    await writeFile(at("prompts.yaml"), "short: One sentence.\nlong: Describe it in detail.\n");
    const result = await run([
      "p.tar",
      "-o",
      "out.jsonl",
      "--prompts",
      "prompts.yaml",
      "--webdataset-out",
      "new",
    ]);
    expect(result.code, result.stderr).toBe(0);
    const [row] = await readJsonl(at("out.jsonl"));
    const json = JSON.parse((await tarMember(at("new/p.tar"), "x.json")).toString());
    expect(json.captions).toEqual(row?.captions);
    expect(Object.keys(json.captions).sort()).toEqual(["long", "short"]);
    expect((await tarMember(at("new/p.tar"), "x.txt")).toString()).toBe(`${row?.caption}\n`);
  });
  it("refuses a caption member that would replace the images or their JSON, and copies a JSON too large to merge as it is", async () => {
    await twoShards();
    for (const member of ["jpg", "seg.PNG", "json"]) {
      const result = await run([
        "shards/00000.tar",
        "--webdataset-out",
        "new",
        "--webdataset-member",
        member,
      ]);
      expect(result.code, member).toBe(2);
      expect(result.stderr).toMatch(/would write the caption over each sample's/);
    }
    const huge = JSON.stringify({ blob: "x".repeat(17 * 1024 * 1024) });
    await writeShard(at("big.tar"), [
      { name: "a.jpg", data: await sampleJpeg(1) },
      { name: "a.json", data: huge },
    ]);
    await writeFile(
      at("schema.json"),
      JSON.stringify({
        type: "object",
        properties: { mood: { type: "string" } },
        required: ["mood"],
      }),
    );
    const result = await run([
      "big.tar",
      "--webdataset-out",
      "new",
      "--json-schema",
      "schema.json",
    ]);
    expect(result.code, result.stderr).toBe(0);
    expect((await tarMember(at("new/big.tar"), "a.json")).toString()).toBe(huge);
    expect(await tarList(at("new/big.tar"))).toEqual(["a.jpg", "a.json", "a.txt"]);
  });
});
