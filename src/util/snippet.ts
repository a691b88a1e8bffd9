/** A reply's text as one short line, for a message: whitespace folded, cut at `max` characters. */
export function snippet(text: string, max = 120, empty = "(empty)"): string {
  const line = text.replace(/\s+/g, " ").trim();
  if (line === "") return empty;
  return line.length > max ? `${line.slice(0, max - 1)}…` : line;
}
