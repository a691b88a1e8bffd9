import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { chmod, lstat, readFile, rm, stat, symlink, writeFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { DOMParser, XMLSerializer } from "@xmldom/xmldom";
import { describe, expect, it } from "vitest";
import { useFakeEndpoint } from "../helpers/fake-endpoint/use.js";
import { collect, runCli, TEST_KEY } from "../helpers/run-cli.js";
import { makeDistinctImages, readJsonl, useWorkspace } from "../helpers/workspace.js";

const EXIFTOOL = fileURLToPath(
  new URL("../../node_modules/exiftool-vendored.pl/bin/exiftool", import.meta.url),
);

const ws = useWorkspace();
const fake = useFakeEndpoint({ apiKey: TEST_KEY });

const run = (args: string[]) => runCli(args, { cwd: ws.dir, baseUrl: fake.baseUrl });

/** ExifTool's reading of sidecars: an XMP-aware reader that is not ours. */
async function exiftool(...files: string[]): Promise<Record<string, unknown>[]> {
  const result = await collect(
    spawn("perl", [EXIFTOOL, "-j", "-struct", "-XMP:all", ...files], { cwd: ws.dir }),
  );
  expect(result.code, result.stderr).toBe(0);
  return JSON.parse(result.stdout) as Record<string, unknown>[];
}

// Written here in the shapes these programs write: attributes for simple properties, an edit
// history as a sequence of structures, tags, and for digiKam a description in two languages.
const DARKTABLE = `<?xml version="1.0" encoding="UTF-8"?>
<x:xmpmeta xmlns:x="adobe:ns:meta/" x:xmptk="XMP Core 4.4.0-Exiv2">
 <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
  <rdf:Description rdf:about=""
    xmlns:xmp="http://ns.adobe.com/xap/1.0/"
    xmlns:xmpMM="http://ns.adobe.com/xap/1.0/mm/"
    xmlns:dc="http://purl.org/dc/elements/1.1/"
    xmlns:darktable="http://darktable.sf.net/"
   xmp:Rating="3"
   xmpMM:DerivedFrom="img-0000.jpg"
   darktable:xmp_version="5"
   darktable:history_end="2">
   <dc:subject><rdf:Bag><rdf:li>holiday</rdf:li><rdf:li>beach</rdf:li></rdf:Bag></dc:subject>
   <darktable:history>
    <rdf:Seq>
     <rdf:li darktable:num="0" darktable:operation="exposure" darktable:enabled="1" darktable:params="0000803f"/>
     <rdf:li darktable:num="1" darktable:operation="colorin" darktable:enabled="1" darktable:params="gz12eJxjYGA"/>
    </rdf:Seq>
   </darktable:history>
  </rdf:Description>
 </rdf:RDF>
</x:xmpmeta>
`;

const DIGIKAM = `<?xpacket begin="\uFEFF" id="W5M0MpCehiHzreSzNTczkc9d"?>
<x:xmpmeta xmlns:x="adobe:ns:meta/" x:xmptk="XMP Core 4.4.0-Exiv2">
 <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
  <rdf:Description rdf:about=""
    xmlns:dc="http://purl.org/dc/elements/1.1/"
    xmlns:digiKam="http://www.digikam.org/ns/1.0/"
    xmlns:lr="http://ns.adobe.com/lightroom/1.0/"
    xmlns:xmp="http://ns.adobe.com/xap/1.0/"
   xmp:Rating="5"
   xmp:Label="Red">
   <dc:description>
    <rdf:Alt>
     <rdf:li xml:lang="x-default">old caption</rdf:li>
     <rdf:li xml:lang="de-DE">alte Beschreibung</rdf:li>
    </rdf:Alt>
   </dc:description>
   <digiKam:TagsList><rdf:Seq><rdf:li>Places/Beach</rdf:li></rdf:Seq></digiKam:TagsList>
   <lr:hierarchicalSubject><rdf:Bag><rdf:li>Places|Beach</rdf:li></rdf:Bag></lr:hierarchicalSubject>
  </rdf:Description>
 </rdf:RDF>
</x:xmpmeta>
<?xpacket end="w"?>
`;

/** The packet with its x-default description taken out: what must not change in meaning. */
function withoutDescription(packet: string): string {
  const document = new DOMParser().parseFromString(packet, "text/xml");
  for (const item of Array.from(document.getElementsByTagName("rdf:li"))) {
    if (item.getAttribute("xml:lang") === "x-default") item.parentNode?.removeChild(item);
  }
  // A description that held only the caption was added by the merge, not there before.
  for (const property of Array.from(document.getElementsByTagName("dc:description"))) {
    if (property.getElementsByTagName("rdf:li").length === 0) {
      property.parentNode?.removeChild(property);
    }
  }
  return new XMLSerializer()
    .serializeToString(document)
    .replace(/>\s+</g, "><")
    .replace(/\s+/g, " ");
}

const sha = async (file: string) =>
  createHash("sha256")
    .update(await readFile(path.join(ws.dir, file)))
    .digest("hex");

describe("--xmp", () => {
  it("merges the caption into darktable's and digiKam's sidecars, keeping everything else", async () => {
    const [first, second, third] = await makeDistinctImages(ws.dir, 3);
    await writeFile(path.join(ws.dir, `${first}.xmp`), DARKTABLE);
    await writeFile(path.join(ws.dir, `${second}.xmp`), DIGIKAM);
    const before = await Promise.all([first, second, third].map((image) => sha(String(image))));
    const result = await run(["photos", "--xmp"]);
    expect(result.code, result.stderr).toBe(0);
    // The images themselves are never touched.
    expect(await Promise.all([first, second, third].map((image) => sha(String(image))))).toEqual(
      before,
    );
    const record = await readJsonl(path.join(ws.dir, "photos", ".caption", "captions.jsonl"));
    const captionOf = (image: unknown) =>
      record.find((row) => `photos/${row.path}` === image)?.caption;
    const [darktable, digikam, fresh] = await exiftool(
      `${first}.xmp`,
      `${second}.xmp`,
      `${third}.xmp`,
    );
    expect(darktable?.Description).toBe(captionOf(first));
    expect(darktable?.Rating).toBe(3);
    expect(darktable?.Subject).toEqual(["holiday", "beach"]);
    expect(darktable?.DerivedFrom).toBe("img-0000.jpg");
    expect(digikam?.Description).toBe(captionOf(second));
    expect(digikam?.["Description-de-DE"]).toBe("alte Beschreibung");
    expect(digikam?.Rating).toBe(5);
    expect(digikam?.Label).toBe("Red");
    expect(digikam?.TagsList).toEqual(["Places/Beach"]);
    expect(digikam?.HierarchicalSubject).toEqual(["Places|Beach"]);
    expect(fresh?.Description).toBe(captionOf(third));
    // Beyond what ExifTool knows (the darktable history), nothing else changed either.
    const merged = await readFile(path.join(ws.dir, `${first}.xmp`), "utf8");
    expect(withoutDescription(merged)).toBe(withoutDescription(DARKTABLE));
    const mergedDigikam = await readFile(path.join(ws.dir, `${second}.xmp`), "utf8");
    expect(withoutDescription(mergedDigikam)).toBe(withoutDescription(DIGIKAM));
    expect(mergedDigikam).toContain('<?xpacket end="w"?>');

    fake.resetStats();
    expect((await run(["photos", "--xmp"])).code).toBe(0);
    expect(fake.requests).toHaveLength(0);
  });

  it("--xmp-naming stem writes <stem>.xmp; a sidecar deleted since is put back from the record", async () => {
    const [image] = await makeDistinctImages(ws.dir, 1);
    const stem = String(image).replace(/\.jpg$/, ".xmp");
    expect((await run(["photos", "--xmp", "--xmp-naming", "stem"])).code).toBe(0);
    const [read] = await exiftool(stem);
    expect(String(read?.Description)).toMatch(/^A test caption/);
    await rm(path.join(ws.dir, stem));
    fake.resetStats();
    expect((await run(["photos", "--xmp", "--xmp-naming", "stem"])).code).toBe(0);
    expect(fake.requests).toHaveLength(0);
    expect((await exiftool(stem))[0]?.Description).toBe(read?.Description);
  });

  it("stem naming refuses two images that would share one sidecar, and bad flags are exit 2", async () => {
    const [image] = await makeDistinctImages(ws.dir, 1);
    await writeFile(
      path.join(ws.dir, String(image).replace(/\.jpg$/, ".png")),
      await readFile(path.join(ws.dir, String(image))),
    );
    const collision = await run(["photos", "--xmp", "--xmp-naming", "stem"]);
    expect(collision.code).toBe(3);
    const [failure] = await readJsonl(
      path.join(ws.dir, "photos", ".caption", "captions.errors.jsonl"),
    );
    expect(failure?.code).toBe("xmp_collision");
    for (const [args, message] of [
      [["photos", "--xmp-naming", "stem"], /--xmp-naming needs --xmp/],
      [
        ["photos", "--xmp", "--xmp-naming", "lightroom"],
        /--xmp-naming: expected one of ext, stem, got "lightroom"/,
      ],
    ] as const) {
      const result = await run([...args]);
      expect(result.code).toBe(2);
      expect(result.stderr).toMatch(message);
    }
  });

  it("a sidecar that is not XMP fails its image only, and is left as it was", async () => {
    const [image, other] = await makeDistinctImages(ws.dir, 2);
    await writeFile(path.join(ws.dir, `${image}.xmp`), "not xml at all <<<");
    const result = await run(["photos", "--xmp"]);
    expect(result.code).toBe(3);
    const [failure] = await readJsonl(
      path.join(ws.dir, "photos", ".caption", "captions.errors.jsonl"),
    );
    expect(failure?.code).toBe("xmp_invalid");
    expect(failure?.path).toBe(image);
    expect(await readFile(path.join(ws.dir, `${image}.xmp`), "utf8")).toBe("not xml at all <<<");
    expect((await exiftool(`${other}.xmp`))[0]?.Description).toMatch(/^A test caption/);
  });

  it("a merged sidecar keeps its permissions; a symlinked one is skipped with a reason, its target untouched", async () => {
    const [first, second] = await makeDistinctImages(ws.dir, 2);
    const own = path.join(ws.dir, `${first}.xmp`);
    await writeFile(own, DARKTABLE);
    await chmod(own, 0o600);
    const elsewhere = path.join(ws.dir, "library.xmp");
    await writeFile(elsewhere, DIGIKAM);
    await symlink(elsewhere, path.join(ws.dir, `${second}.xmp`));
    const result = await run(["photos", "--xmp"]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr).toContain(
      `XMP sidecar skipped, left as it is: ${second}.xmp is a symlink, and the run never reads or writes through one`,
    );
    expect((await stat(own)).mode & 0o777).toBe(0o600);
    expect((await exiftool(`${first}.xmp`))[0]?.Description).toMatch(/^A test caption/);
    // The link is not the run's file: it stays a link, and what it points to is not written.
    expect((await lstat(path.join(ws.dir, `${second}.xmp`))).isSymbolicLink()).toBe(true);
    expect(await readFile(elsewhere, "utf8")).toBe(DIGIKAM);
    // Nothing was sent for its sake.
    expect(fake.requests).toHaveLength(1);
  });

  it("a description edited in the photo manager since is kept by later runs", async () => {
    const [image] = await makeDistinctImages(ws.dir, 1);
    expect((await run(["photos", "--xmp"])).code).toBe(0);
    const file = path.join(ws.dir, `${image}.xmp`);
    const edited = (await readFile(file, "utf8")).replace(/A test caption[^<]*/, "Edited by me");
    await writeFile(file, edited);
    expect((await run(["photos", "--xmp"])).code).toBe(0);
    expect((await exiftool(`${image}.xmp`))[0]?.Description).toBe("Edited by me");
  });

  it("with --tags, adds the tags to dc:subject, lr:hierarchicalSubject and digiKam:TagsList after the ones there", async () => {
    await fake.start({
      apiKey: TEST_KEY,
      respond: () => ({ kind: "ok", content: '{"tags": ["sunset", "beach", "two people"]}' }),
    });
    const [first, second] = await makeDistinctImages(ws.dir, 2);
    await writeFile(path.join(ws.dir, `${first}.xmp`), DARKTABLE);
    const result = await run(["photos", "--xmp", "--tags"]);
    expect(result.code, result.stderr).toBe(0);
    const [darktable, fresh] = await exiftool(`${first}.xmp`, `${second}.xmp`);
    // darktable's own tags stay first; "beach" is not added twice.
    expect(darktable?.Subject).toEqual(["holiday", "beach", "sunset", "two people"]);
    expect(darktable?.HierarchicalSubject).toEqual(["sunset", "beach", "two people"]);
    expect(darktable?.TagsList).toEqual(["sunset", "beach", "two people"]);
    expect(darktable?.Description).toBe("sunset, beach, two people");
    expect(darktable?.Rating).toBe(3);
    expect(fresh?.Subject).toEqual(["sunset", "beach", "two people"]);
    expect(fresh?.TagsList).toEqual(["sunset", "beach", "two people"]);
    const packet = await readFile(path.join(ws.dir, `${second}.xmp`), "utf8");
    expect(packet).toMatch(/<dc:subject><rdf:Bag>/);
    expect(packet).toMatch(/<digiKam:TagsList><rdf:Seq>/);

    // Deleted since: put back from the record, tags included, without a request.
    await rm(path.join(ws.dir, `${second}.xmp`));
    fake.resetStats();
    expect((await run(["photos", "--xmp", "--tags"])).code).toBe(0);
    expect(fake.requests).toHaveLength(0);
    expect((await exiftool(`${second}.xmp`))[0]?.TagsList).toEqual([
      "sunset",
      "beach",
      "two people",
    ]);
  });
});
