import { mkdir, symlink, writeFile } from "node:fs/promises";
import path from "node:path";
import { gzipSync } from "node:zlib";
import { DOMParser } from "@xmldom/xmldom";
import { describe, expect, it } from "vitest";
import { mergeDescription } from "../../src/sinks/xmp.js";
import { redactRecord } from "../../src/trust/keys.js";
import { NAMED_FILE_CAP, readLimited, readLimitedSync } from "../../src/trust/read-limited.js";
import { describeBody, formatCap, forTerminal, xmlSafe } from "../../src/trust/text.js";
import type { CaptionRecord } from "../../src/types.js";
import { useWorkspace } from "../helpers/workspace.js";

describe("xmlSafe", () => {
  it("drops what XML 1.0 forbids and keeps everything it allows", () => {
    expect(xmlSafe("a\u0000b\u0001c\u000bd\u000ce\u001ff\ufffeg\uffffh")).toBe("abcdefgh");
    expect(xmlSafe("lone \ud800 high, lone \udc00 low")).toBe("lone  high, lone  low");
    // Tab, LF, CR, a pair (an emoji), the BMP's last allowed character and C1 are all legal.
    const legal = "tab\there\nline\rcr 😀 \ufffd \u0085 é";
    expect(xmlSafe(legal)).toBe(legal);
    // A pair after a lone high half keeps the pair.
    expect(xmlSafe("\ud800\ud83d\ude00")).toBe("😀");
    expect(xmlSafe("\ud83d\ude00\ude00")).toBe("😀");
  });

  it("makes a packet a strict XML parser reads, the caption's legal text kept", () => {
    const packet = mergeDescription(null, "a\u0000 cat\u000b on \ufffe a mat \ud800", [
      "ca\u0001t",
      "\u0000",
    ]);
    const errors: string[] = [];
    const document = new DOMParser({
      onError: (level, message) => {
        if (level !== "warning") errors.push(message);
      },
    }).parseFromString(packet, "text/xml");
    expect(errors).toEqual([]);
    expect(document.getElementsByTagName("rdf:li")[0]?.textContent).toBe("a cat on  a mat ");
    expect(packet).toContain("<rdf:li>cat</rdf:li>");
  });
});

describe("forTerminal", () => {
  it("shows C0 (but tab and newline), DEL and C1 escaped", () => {
    expect(forTerminal("evil\u001b[31mred\u001b[0m.jpg")).toBe("evil\\x1b[31mred\\x1b[0m.jpg");
    expect(forTerminal("a\rb\bc\u0007d\u007fe\u009bf\u0000")).toBe(
      "a\\rb\\x08c\\x07d\\x7fe\\x9bf\\x00",
    );
    const plain = "line one\n\tat two — ünïcödé 😀";
    expect(forTerminal(plain)).toBe(plain);
  });

  it("shows the bidirectional overrides that would reorder a name on screen", () => {
    expect(forTerminal("photo\u202egpj.exe")).toBe("photo\\u202egpj.exe");
    expect(forTerminal("a\u2066b\u2069")).toBe("a\\u2066b\\u2069");
  });
});

describe("describeBody", () => {
  it("describes gzip, NULs and bytes that are not UTF-8, and lets text through", () => {
    const gzip = gzipSync(Buffer.from('{"error":{"message":"nope"}}'));
    expect(describeBody(gzip)).toBe(`a binary reply of ${gzip.length} bytes (gzip)`);
    expect(describeBody(Buffer.from("abc\u0000def"))).toBe("a binary reply of 7 bytes");
    expect(describeBody(Buffer.from([0x61, 0xc3, 0x28]))).toBe(
      "a binary reply of 3 bytes (not UTF-8 text)",
    );
    expect(describeBody(Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 1]))).toMatch(/\(zstd\)$/);
    expect(describeBody(Buffer.from('{"error":"ünïcödé \u001b[31m"}'))).toBeNull();
    expect(describeBody(Buffer.alloc(0))).toBeNull();
  });

  it("formats a cap", () => {
    expect(formatCap(4 * 1024 * 1024)).toBe("4 MiB");
    expect(formatCap(1536)).toBe("1.5 KiB".replace("1.5 KiB", "1536 bytes"));
    expect(formatCap(64 * 1024)).toBe("64 KiB");
  });
});

describe("redactRecord", () => {
  const record: CaptionRecord = {
    path: "a.jpg",
    caption: "Bearer sk-secret-123456 says hi",
    model: "m",
    endpoint: "e",
    width: 1,
    height: 1,
    prompt_tokens: null,
    completion_tokens: null,
    reasoning_tokens: null,
    attempts: 1,
    latency_ms: 1,
    truncated: false,
    flags: [],
    created_at: "",
    sha256: "",
    prompt_hash: "",
    data: { note: ["x sk-secret-123456", { deep: "sk-secret-123456" }], n: 3 },
    tags: ["sk-secret-123456", "cat"],
  };

  it("masks a key in the caption, the tags and every field of a structured answer", () => {
    const clean = redactRecord(record, ["sk-secret-123456", undefined, "ab"]);
    expect(JSON.stringify(clean)).not.toContain("sk-secret-123456");
    expect(clean.caption).toBe("Bearer [redacted] says hi");
    expect(clean.tags).toEqual(["[redacted]", "cat"]);
    expect(clean.data).toEqual({ note: ["x [redacted]", { deep: "[redacted]" }], n: 3 });
    // Nothing to mask: the record itself, untouched.
    expect(redactRecord(record, [undefined])).toBe(record);
  });
});

describe("readLimited", () => {
  const ws = useWorkspace({ prefix: "caption-limited-" });

  it("reads a regular file, through a symlink too, and refuses devices, folders and size", async () => {
    await writeFile(path.join(ws.dir, "p.txt"), "hello");
    await symlink(path.join(ws.dir, "p.txt"), path.join(ws.dir, "link.txt"));
    await mkdir(path.join(ws.dir, "folder"));
    await writeFile(path.join(ws.dir, "big.txt"), Buffer.alloc(NAMED_FILE_CAP + 1, "a"));
    await writeFile(path.join(ws.dir, "full.txt"), Buffer.alloc(NAMED_FILE_CAP, "a"));
    for (const read of [readLimitedSync, readLimited]) {
      expect(await read(path.join(ws.dir, "p.txt"))).toEqual({ ok: true, text: "hello" });
      expect(await read(path.join(ws.dir, "link.txt"))).toEqual({ ok: true, text: "hello" });
      expect(await read(path.join(ws.dir, "full.txt"))).toMatchObject({ ok: true });
      expect(await read("/dev/zero")).toMatchObject({
        reason: "not_regular",
        problem: "not a regular file (a character device)",
      });
      expect(await read(path.join(ws.dir, "folder"))).toMatchObject({
        problem: "not a regular file (a folder)",
      });
      expect(await read(path.join(ws.dir, "big.txt"))).toMatchObject({ reason: "too_large" });
      expect(await read(path.join(ws.dir, "nope"))).toMatchObject({
        reason: "unreadable",
        errno: "ENOENT",
      });
      // A file whose size fstat does not know (/proc) is read up to the cap all the same.
      expect(await read("/proc/self/status", 16)).toMatchObject({ reason: "too_large" });
    }
  });
});
