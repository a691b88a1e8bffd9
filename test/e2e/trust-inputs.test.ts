import {
  lstat,
  mkdir,
  readdir,
  readFile,
  rename,
  stat,
  symlink,
  truncate,
  writeFile,
} from "node:fs/promises";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { temporaryPath } from "../../src/sinks/write-whole.js";
import { cutUtf8, nameBytes } from "../../src/trust/names.js";
import { useFakeEndpoint } from "../helpers/fake-endpoint/use.js";
import { runCli, TEST_KEY } from "../helpers/run-cli.js";
import {
  makeDistinctImages,
  type Row,
  readCsv,
  readJsonl,
  useWorkspace,
} from "../helpers/workspace.js";

/**
 * Issue 22's inputs, links and names: a folder handed to `caption` may be someone else's, built
 * to make the run read, send or write what the user never named. Each test drives the real CLI
 * against such a folder and checks what a user would see: rows, files, exit code, stderr, and what
 * reached the (fake) endpoint.
 */

const ws = useWorkspace();
const fake = useFakeEndpoint({ apiKey: TEST_KEY });

const run = (args: string[]) => runCli(args, { cwd: ws.dir, baseUrl: fake.baseUrl });
const at = (...parts: string[]) => path.join(ws.dir, ...parts);
const exists = (file: string) =>
  lstat(file).then(
    () => true,
    () => false,
  );
const paths = (rows: Row[]) => rows.map((row) => row.path).sort();
/** Every prompt the endpoint was sent, as one text to search. */
const sentPrompts = () => fake.requests.map((request) => request.prompt ?? "").join("\n");
/** The widths of the images the endpoint was sent. */
const sentWidths = () => fake.requests.map((request) => request.image?.width).sort();

/** Two images in photos/ (32 and 33 px wide) and one outside it, 80 px wide. */
async function photosAndOutside(): Promise<{ inside: string[] }> {
  const inside = await makeDistinctImages(ws.dir, 2, "photos");
  const [outside] = await makeDistinctImages(ws.dir, 1, "elsewhere", 80);
  await rename(at(outside as string), at("elsewhere", "outside.jpg"));
  return { inside };
}

describe("folder symlinks", () => {
  it("a link to a folder out of the input is not followed: nothing there is read, sent or written", async () => {
    const { inside } = await photosAndOutside();
    await symlink(at("elsewhere"), at("photos", "linkdir"));
    const result = await run(["photos", "-o", "out.csv", "--sidecar", "--xmp"]);
    expect(result.code, result.stderr).toBe(0);
    expect(paths(await readCsv(at("out.csv")))).toEqual(inside.sort());
    expect(sentWidths()).toEqual([32, 33]);
    expect(await exists(at("elsewhere", "outside.txt"))).toBe(false);
    expect(await exists(at("elsewhere", "outside.jpg.xmp"))).toBe(false);
    expect(await readdir(at("elsewhere"))).toEqual(["outside.jpg"]);
    expect(result.stderr).toContain(
      "1 symlink to a folder outside the input was not followed (photos/linkdir); --follow-symlinks follows it",
    );
  });

  it("`ln -s .. loop` is not followed, with --follow-symlinks neither", async () => {
    const { inside } = await photosAndOutside();
    await symlink("..", at("photos", "loop"));
    for (const flags of [[], ["--follow-symlinks"]]) {
      fake.resetStats();
      const result = await run(["photos", "-o", "out.csv", "--overwrite", ...flags]);
      expect(result.code, result.stderr).toBe(0);
      expect(paths(await readCsv(at("out.csv")))).toEqual(inside.sort());
      expect(sentWidths()).toEqual([32, 33]);
      expect(result.stderr).toContain(
        "1 symlink back to a folder it is in was not followed, as loops never are (photos/loop)",
      );
    }
  });

  it("--follow-symlinks follows a link out of the input, and writes beside the images it finds there", async () => {
    const { inside } = await photosAndOutside();
    await symlink(at("elsewhere"), at("photos", "linkdir"));
    const result = await run(["photos", "-o", "out.csv", "--sidecar", "--follow-symlinks"]);
    expect(result.code, result.stderr).toBe(0);
    expect(paths(await readCsv(at("out.csv")))).toEqual(
      [...inside, "photos/linkdir/outside.jpg"].sort(),
    );
    expect(sentWidths()).toEqual([32, 33, 80]);
    expect(result.stderr).not.toMatch(/not followed/);
    expect(await readFile(at("elsewhere", "outside.txt"), "utf8")).toMatch(/^A test caption/);
  });
});

describe("{existing}", () => {
  it("never reads a sidecar that is a symlink (a.txt -> a secret) into the prompt", async () => {
    const [linked, plain] = await makeDistinctImages(ws.dir, 2, "photos");
    await mkdir(at("home", ".aws"), { recursive: true });
    await writeFile(
      at("home", ".aws", "credentials"),
      "aws_secret_access_key = SECRET-0xDEADBEEF\n",
    );
    await symlink(at("home", ".aws", "credentials"), at((linked as string).replace(/jpg$/, "txt")));
    await writeFile(at((plain as string).replace(/jpg$/, "txt")), "red car, street\n");

    const result = await run(["photos", "-o", "out.csv", "-p", "Improve: {existing}"]);
    expect(result.code, result.stderr).toBe(3);
    expect(sentPrompts()).not.toContain("SECRET");
    // The image beside a plain sidecar is captioned from its text; the other is not sent at all.
    expect(fake.requests.map((request) => request.prompt)).toEqual(["Improve: red car, street"]);
    expect(paths(await readCsv(at("out.csv")))).toEqual([plain]);
    const [failure] = await readJsonl(at("out.errors.jsonl"));
    expect(failure).toMatchObject({ path: linked, code: "existing_refused", attempts: 0 });
    expect(String(failure?.message)).toMatch(/is a symlink.*nothing was sent for this image/);
    expect(result.stderr).not.toMatch(/internal error/);
  });

  it("fails an image whose sidecar holds more than 1 MiB, rather than send it", async () => {
    const [big, small] = await makeDistinctImages(ws.dir, 2, "photos");
    await writeFile(at((big as string).replace(/jpg$/, "txt")), "tag, ".repeat(300_000));
    await writeFile(at((small as string).replace(/jpg$/, "txt")), "tag\n");
    const result = await run(["photos", "-o", "out.csv", "-p", "Improve: {existing}"]);
    expect(result.code, result.stderr).toBe(3);
    expect(fake.requests.map((request) => request.prompt)).toEqual(["Improve: tag"]);
    const [failure] = await readJsonl(at("out.errors.jsonl"));
    expect(failure).toMatchObject({ path: big, code: "existing_too_large" });
    expect(String(failure?.message)).toContain("1500000 bytes, more than the 1 MiB");
  });
});

describe("sidecars that are symlinks", () => {
  it("a.txt -> some file under --sidecar-policy append: that file is unchanged, the sidecar skipped with a reason", async () => {
    const [linked, plain] = await makeDistinctImages(ws.dir, 2, "photos");
    await mkdir(at("home"));
    const bashrc = at("home", ".bashrc");
    await writeFile(bashrc, "export PATH=$HOME/bin:$PATH\n");
    const sidecar = at((linked as string).replace(/jpg$/, "txt"));
    await symlink(bashrc, sidecar);

    const args = ["photos", "--sidecar", "--sidecar-policy", "append"];
    const result = await run(args);
    expect(result.code, result.stderr).toBe(0);
    expect(await readFile(bashrc, "utf8")).toBe("export PATH=$HOME/bin:$PATH\n");
    expect((await lstat(sidecar)).isSymbolicLink()).toBe(true);
    expect(result.stderr).toContain(
      `sidecar skipped, left as it is: ${(linked as string).replace(/jpg$/, "txt")} is a symlink, and the run never reads or writes through one`,
    );
    // Nothing is sent for a sidecar the run will not write; the other image is captioned.
    expect(fake.requests).toHaveLength(1);
    expect(await readFile(at((plain as string).replace(/jpg$/, "txt")), "utf8")).toMatch(
      /^A test caption/,
    );

    // With OUT asked for too, the image is captioned there, and the link still left alone.
    fake.resetStats();
    const withOut = await run([...args, "-o", "out.csv"]);
    expect(withOut.code, withOut.stderr).toBe(0);
    expect(paths(await readCsv(at("out.csv")))).toEqual([linked, plain].sort());
    expect(await readFile(bashrc, "utf8")).toBe("export PATH=$HOME/bin:$PATH\n");
  });

  it("a Hugging Face snapshot (all symlinks into blobs/) is still captioned; its linked captions and blobs are left alone", async () => {
    const images = await makeDistinctImages(ws.dir, 3, "staging");
    const repo = at("hub", "datasets--someone--pets");
    await mkdir(path.join(repo, "blobs"), { recursive: true });
    const snapshot = path.join(repo, "snapshots", "5f0c2a");
    await mkdir(path.join(snapshot, "train"), { recursive: true });
    const blobOf = (name: string) => path.join(repo, "blobs", name);
    for (const [index, image] of images.entries()) {
      await rename(at(image), blobOf(`image${index}`));
      // Relative, as huggingface_hub makes them.
      await symlink(`../../../blobs/image${index}`, path.join(snapshot, "train", `${index}.jpg`));
    }
    await writeFile(blobOf("caption0"), "a cat on a sofa\n");
    await symlink("../../../blobs/caption0", path.join(snapshot, "train", "0.txt"));

    const result = await run([
      "hub/datasets--someone--pets/snapshots/5f0c2a",
      "-o",
      "out.csv",
      "--sidecar",
      "--sidecar-policy",
      "overwrite",
    ]);
    expect(result.code, result.stderr).toBe(0);
    const shown = "hub/datasets--someone--pets/snapshots/5f0c2a/train";
    expect(paths(await readCsv(at("out.csv")))).toEqual(
      [0, 1, 2].map((index) => `${shown}/${index}.jpg`),
    );
    expect(fake.requests).toHaveLength(3);
    // The caption blob is not overwritten through its link; the others get sidecars of their own.
    expect(await readFile(blobOf("caption0"), "utf8")).toBe("a cat on a sofa\n");
    expect((await lstat(path.join(snapshot, "train", "0.txt"))).isSymbolicLink()).toBe(true);
    expect(result.stderr).toContain(`${shown}/0.txt is a symlink`);
    for (const index of [1, 2]) {
      const sidecar = path.join(snapshot, "train", `${index}.txt`);
      expect((await lstat(sidecar)).isFile()).toBe(true);
      expect(await readFile(sidecar, "utf8")).toMatch(/^A test caption/);
    }
    expect((await readdir(path.join(repo, "blobs"))).sort()).toEqual([
      "caption0",
      "image0",
      "image1",
      "image2",
    ]);
  });

  it("a metadata.jsonl that is a symlink is refused before anything is sent, its target unchanged", async () => {
    await makeDistinctImages(ws.dir, 1, "photos");
    await writeFile(at("other.jsonl"), '{"file_name": "x.jpg", "text": "mine"}\n');
    await symlink(at("other.jsonl"), at("photos", "metadata.jsonl"));
    const result = await run(["photos", "-o", "out.csv", "--hf-metadata"]);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(
      /metadata\.jsonl is a symlink, and the run never writes through one/,
    );
    expect(fake.requests).toHaveLength(0);
    expect(await readFile(at("other.jsonl"), "utf8")).toBe(
      '{"file_name": "x.jpg", "text": "mine"}\n',
    );
  });
});

describe("long names", () => {
  it("an image named with 250 characters: temporary names fit, a sidecar name that cannot exist fails that image alone (name_too_long), reruns too", async () => {
    const made = await makeDistinctImages(ws.dir, 3, "photos");
    // 250 characters: its sidecar and XMP names fit, their temporary names would not.
    const fits = `photos/${"a".repeat(246)}.jpg`;
    // 250 characters of two bytes each: fits too, but only cut between characters.
    const wide = `photos/${"é".repeat(120)}.jpg`;
    // 254 bytes: the image exists, but `<name>.xmp` would take 258.
    const tooLong = `photos/${"b".repeat(250)}.jpg`;
    for (const [index, name] of [fits, wide, tooLong].entries()) {
      await rename(at(made[index] as string), at(name));
    }
    const args = ["photos", "-o", "out.csv", "--sidecar", "--xmp"];
    const result = await run(args);
    expect(result.code, result.stderr).toBe(3);
    expect(result.stderr).not.toMatch(/ENAMETOOLONG|internal error/);
    expect(paths(await readCsv(at("out.csv")))).toEqual([fits, wide].sort());
    for (const name of [fits, wide]) {
      expect(await readFile(at(name.replace(/jpg$/, "txt")), "utf8")).toMatch(/^A test caption/);
      expect(await readFile(at(`${name}.xmp`), "utf8")).toContain("A test caption");
    }
    const failures = await readJsonl(at("out.errors.jsonl"));
    expect(failures).toHaveLength(1);
    expect(failures[0]).toMatchObject({ path: tooLong, code: "name_too_long", attempts: 0 });
    expect(String(failures[0]?.message)).toContain(
      "its XMP sidecar would be named with 258 bytes, over the 255 a file name may have",
    );
    expect(await exists(at(tooLong.replace(/jpg$/, "txt")))).toBe(false);
    // No temporary file is left behind, and each name written fits.
    for (const name of await readdir(at("photos"))) {
      expect(name).not.toMatch(/\.tmp$/);
      expect(nameBytes(name)).toBeLessThanOrEqual(255);
    }

    // A rerun goes on past it: nothing sent for what is done, the same failure, exit 3.
    fake.resetStats();
    const again = await run(args);
    expect(again.code, again.stderr).toBe(3);
    expect(fake.requests).toHaveLength(0);
    expect(await readJsonl(at("out.errors.jsonl"))).toMatchObject([
      { path: tooLong, code: "name_too_long" },
    ]);
  });

  it("temporary names borrow at most 241 bytes of the name, cut between characters", async () => {
    const long = path.join(ws.dir, `${"é".repeat(200)}.jpg.xmp`);
    const temporary = path.basename(temporaryPath(long));
    expect(nameBytes(temporary)).toBeLessThanOrEqual(255);
    expect(temporary).toMatch(/^\.é+\.[0-9a-f]{8}\.tmp$/);
    expect(cutUtf8("aé", 2)).toBe("a");
    expect(cutUtf8("😀x", 3)).toBe("");
    expect(cutUtf8("short", 255)).toBe("short");
    // The name is unchanged when it fits.
    expect(path.basename(temporaryPath(path.join(ws.dir, "a.txt")))).toMatch(
      /^\.a\.txt\.[0-9a-f]{8}\.tmp$/,
    );
    expect((await stat(ws.dir)).isDirectory()).toBe(true);
  });
});

describe("the record kept beside the images", () => {
  it("a .caption folder that is a symlink is refused before anything is sent, and nothing is written where it leads", async () => {
    await makeDistinctImages(ws.dir, 1, "photos");
    await mkdir(at("elsewhere"));
    await symlink(at("elsewhere"), at("photos", ".caption"));
    const result = await run(["photos", "--sidecar"]);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(
      /photos\/\.caption is a symlink, and the run keeps its record only in a folder and files of its own/,
    );
    expect(fake.requests).toHaveLength(0);
    expect(await readdir(at("elsewhere"))).toEqual([]);
  });
});

describe("links a glob or the lock folder might follow", () => {
  it("a glob's ** descends into no folder link, loops and / among them; a folder it names is entered", async () => {
    const { inside } = await photosAndOutside();
    await symlink("..", at("photos", "loop"));
    await symlink("/", at("photos", "root"));
    await symlink(at("elsewhere"), at("photos", "linkdir"));
    const result = await run(["photos/**/*.jpg", "-o", "out.csv", "--sidecar"]);
    expect(result.code, result.stderr).toBe(0);
    expect(paths(await readCsv(at("out.csv")))).toEqual(inside.sort());
    expect(await exists(at("elsewhere", "outside.txt"))).toBe(false);
    // A folder the pattern names is the user's choice, link or not.
    const named = await run(["photos/linkdir/*.jpg", "-o", "named.csv"]);
    expect(named.code, named.stderr).toBe(0);
    expect(paths(await readCsv(at("named.csv")))).toEqual(["photos/linkdir/outside.jpg"]);
  });

  it("a link planted in OUT's lock folder, or as the lock folder, is never written through", async () => {
    await makeDistinctImages(ws.dir, 1, "photos");
    await mkdir(at("mine"));
    await writeFile(at("mine", "precious"), "precious\n");
    await mkdir(at("photos", "captions.csv.lock"));
    await symlink(at("mine", "precious"), at("photos", "captions.csv.lock", "owner.json"));
    const planted = await run(["photos", "-o", "photos/captions.csv"]);
    expect(planted.code, planted.stderr).toBe(0);
    expect(await readFile(at("mine", "precious"), "utf8")).toBe("precious\n");

    await symlink(at("mine"), at("other.csv.lock"));
    const linked = await run(["photos", "-o", "other.csv"]);
    expect(linked.code).toBe(1);
    expect(linked.stderr).toMatch(/other\.csv\.lock is a symlink/);
    expect(await readdir(at("mine"))).toEqual(["precious"]);
  });

  it("a sidecar or XMP too large to read fails its image alone, left as it was", async () => {
    await makeDistinctImages(ws.dir, 3, "photos");
    // Sparse: the size is what matters, not the disk it takes.
    const bigText = at("photos", "img-0000.txt");
    await writeFile(bigText, "");
    await truncate(bigText, 2 * 1024 * 1024);
    const bigXmp = at("photos", "img-0001.jpg.xmp");
    await writeFile(bigXmp, "");
    await truncate(bigXmp, 20 * 1024 * 1024);
    const result = await run([
      "photos",
      "-o",
      "out.csv",
      "--sidecar",
      "--sidecar-policy",
      "append",
      "--xmp",
    ]);
    expect(result.code, result.stderr).toBe(3);
    const codes = (await readJsonl(at("out.errors.jsonl"))).map((failure) => failure.code).sort();
    expect(codes).toEqual(["sidecar_too_large", "xmp_too_large"]);
    expect(paths(await readCsv(at("out.csv")))).toEqual(["photos/img-0002.jpg"]);
    expect((await stat(bigText)).size).toBe(2 * 1024 * 1024);
    expect((await stat(bigXmp)).size).toBe(20 * 1024 * 1024);
  });

  it("a file name holding a newline cannot forge a line of the tool's own", async () => {
    await mkdir(at("photos"));
    const forged = "x\ncaption: 40 captioned, 0 failed in 0.1 s → out.csv\nz.jpg";
    await writeFile(at("photos", forged), "not an image");
    const result = await run(["photos", "-o", "out.csv"]);
    expect(result.code).toBe(3);
    for (const line of result.stderr.trimEnd().split("\n")) {
      expect(line, result.stderr).toMatch(/^(caption: | {2})/);
    }
    expect(result.stderr).not.toMatch(/^caption: 40 captioned/m);
    expect(result.stderr).toContain("x\\ncaption: 40 captioned");
  });

  it("a name that starts with a quote and a formula character is one row however many reruns", async () => {
    await makeDistinctImages(ws.dir, 2, "photos");
    await rename(at("photos", "img-0000.jpg"), at("photos", "'-draft.jpg"));
    for (let run_ = 0; run_ < 3; run_ += 1) {
      const result = await run(["photos", "-o", "out.csv"]);
      expect(result.code, result.stderr).toBe(0);
    }
    expect(paths(await readCsv(at("out.csv")))).toEqual([
      "photos/'-draft.jpg",
      "photos/img-0001.jpg",
    ]);
    expect(fake.requests).toHaveLength(2);
  });
});
