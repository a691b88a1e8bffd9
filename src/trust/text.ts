/**
 * What comes back from a server, or a name from a folder someone else made, made safe for where it
 * goes: an XML file, a terminal, a message. Pure functions; each output calls the one it needs.
 */

/**
 * Characters XML 1.0 forbids (`Char ::= #x9 | #xA | #xD | [#x20-#xD7FF] | [#xE000-#xFFFD] |
 * [#x10000-#x10FFFF]`): C0 controls but tab, LF and CR; U+FFFE and U+FFFF; and a surrogate that
 * is not half of a pair. Without the `u` flag the pattern sees UTF-16 code units, which is what
 * finding a lone surrogate takes.
 */
const XML_FORBIDDEN = new RegExp(
  [
    "[\\u0000-\\u0008\\u000B\\u000C\\u000E-\\u001F\\uFFFE\\uFFFF]",
    "[\\uD800-\\uDBFF](?![\\uDC00-\\uDFFF])",
    "(?<![\\uD800-\\uDBFF])[\\uDC00-\\uDFFF]",
  ].join("|"),
  "g",
);

/** `text` less the characters an XML 1.0 document cannot hold, so the file parses everywhere. */
export function xmlSafe(text: string): string {
  return text.replace(XML_FORBIDDEN, "");
}

/**
 * Characters a terminal acts on rather than shows: C0 controls but tab and newline (so ESC and the
 * sequences it starts, CR, backspace, bell), DEL and the C1 controls (U+009B is a one-character
 * ESC [ to many terminals), and the bidirectional overrides and isolates, which reorder what
 * follows them on screen (a name that reads `gpj.exe` backwards).
 */
const TERMINAL_CONTROLS =
  // biome-ignore lint/suspicious/noControlCharactersInRegex: finding them is the point.
  /[\u0000-\u0008\u000B-\u001F\u007F-\u009F\u202A-\u202E\u2066-\u2069]/g;

/**
 * A line as it may be printed on a terminal: each control character shown as its escape (`\x1b`),
 * so a file name or a server's message can neither recolour, move nor rewrite what is on screen.
 * Tab and newline are kept as they are (a stack trace is several lines).
 */
export function forTerminal(text: string): string {
  return text.replace(TERMINAL_CONTROLS, (char) => {
    const code = char.charCodeAt(0);
    if (code === 0x0d) return "\\r";
    if (code > 0xff) return `\\u${code.toString(16).padStart(4, "0")}`;
    return `\\x${code.toString(16).padStart(2, "0")}`;
  });
}

/** Leading bytes of the binary formats an error body has been seen in, by name. */
const MAGIC: readonly { name: string; bytes: readonly number[] }[] = [
  { name: "gzip", bytes: [0x1f, 0x8b] },
  { name: "zstd", bytes: [0x28, 0xb5, 0x2f, 0xfd] },
  { name: "zip", bytes: [0x50, 0x4b, 0x03, 0x04] },
  { name: "PNG", bytes: [0x89, 0x50, 0x4e, 0x47] },
  { name: "JPEG", bytes: [0xff, 0xd8, 0xff] },
];

const STRICT_UTF8 = new TextDecoder("utf-8", { fatal: true });

/**
 * What a reply body is when it is no text to quote: "a binary reply of 1234 bytes (gzip)" for a
 * compressed or binary body (a known format's leading bytes, a NUL, or bytes that are not UTF-8),
 * else null, and its text may be shown.
 */
export function describeBody(body: Uint8Array): string | null {
  const size = `${body.length} ${body.length === 1 ? "byte" : "bytes"}`;
  const format = MAGIC.find((magic) => magic.bytes.every((byte, i) => body[i] === byte));
  if (format) return `a binary reply of ${size} (${format.name})`;
  if (body.includes(0)) return `a binary reply of ${size}`;
  try {
    STRICT_UTF8.decode(body);
  } catch {
    return `a binary reply of ${size} (not UTF-8 text)`;
  }
  return null;
}

/** A byte count as a person reads a cap: "4 MiB", "512 KiB", "1500 bytes". */
export function formatCap(bytes: number): string {
  if (bytes >= 1024 ** 2 && bytes % 1024 ** 2 === 0) return `${bytes / 1024 ** 2} MiB`;
  if (bytes >= 1024 && bytes % 1024 === 0) return `${bytes / 1024} KiB`;
  return `${bytes} bytes`;
}
