import type { CaptionRecord } from "../types.js";
import { redactSecret } from "../util/redact.js";

/**
 * A caption record with every occurrence of the run's keys replaced by `[redacted]`: in the
 * caption, the tags and a structured answer's fields (names and text, however deep). A server can
 * echo what it was sent (`Bearer sk-…` in a caption), and a record goes to OUT, every sidecar,
 * XMP and metadata file, and the events: it is cleaned once, before any of them has it.
 */
export function redactRecord(
  record: CaptionRecord,
  secrets: readonly (string | undefined)[],
): CaptionRecord {
  // Keys shorter than 4 characters are never masked (redactSecret): no work to do for them.
  const keys = secrets.filter((key): key is string => typeof key === "string" && key.length >= 4);
  if (keys.length === 0) return record;
  const clean = (text: string) => redactSecret(text, keys);
  // The model id too: it is what a server listed, and a server chose it.
  const cleaned: CaptionRecord = {
    ...record,
    caption: clean(record.caption),
    model: clean(record.model),
  };
  if (record.tags) cleaned.tags = record.tags.map(clean);
  if (record.data) cleaned.data = redactValue(record.data, clean) as Record<string, unknown>;
  return cleaned;
}

function redactValue(value: unknown, clean: (text: string) => string): unknown {
  if (typeof value === "string") return clean(value);
  if (Array.isArray(value)) return value.map((each) => redactValue(each, clean));
  if (typeof value !== "object" || value === null) return value;
  return Object.fromEntries(
    Object.entries(value).map(([name, each]) => [clean(name), redactValue(each, clean)]),
  );
}
