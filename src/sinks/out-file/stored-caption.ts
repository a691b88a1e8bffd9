import type { ClipRecord } from "../../types.js";
import { CAPTION_COLUMNS, CAPTION_PREFIX, CLIP_COLUMNS, unguardFormula } from "./writers.js";

/** What a row of OUT says about an image: enough to give an identical file the same caption. */
export interface StoredCaption {
  path: string;
  sha256: string | null;
  caption: string;
  model: string;
  width: number;
  height: number;
  truncated: boolean;
  flags: string[];
  /** The structured answer: JSONL's `data`, or CSV's answer columns (as text). */
  data?: Record<string, unknown>;
  tags?: string[];
  /** With several prompts: each one's answer (CSV's `caption_<name>` columns), by its name. */
  captions?: Record<string, string>;
  /** With several prompts: each structured one's fields (CSV's `<name>.<field>`, as text). */
  answers?: Record<string, Record<string, unknown>>;
  /** Null in rows written before prompts were told apart. */
  prompt_hash: string | null;
  /** A clip's length and what was sent of it. */
  video?: ClipRecord;
}

/**
 * OUT's rows are keyed by `path` and hold a `caption`; the Hugging Face metadata files this tool
 * also resumes from call the same two `file_name` and `text`.
 */
const KEY = ["path", "file_name"] as const;
const TEXT = ["caption", "text"] as const;

/**
 * Reads rows under one CSV header. Where each field lies is worked out once per header, not once
 * per row: a resume reads every row of OUT, 100,000 or more.
 */
export function rowReader(columns: readonly string[]): (record: string[]) => StoredCaption {
  const at = (name: string) => columns.indexOf(name);
  const named = (names: readonly string[]) =>
    at(names.find((name) => columns.includes(name)) ?? "");
  const [key, text, sha256, model, width, height, truncated, flags, tags, promptHash] = [
    named(KEY),
    named(TEXT),
    at("sha256"),
    at("model"),
    at("width"),
    at("height"),
    at("truncated"),
    at("flags"),
    at("tags"),
    at("prompt_hash"),
  ];
  const extra =
    columns[0] === "path"
      ? columns.flatMap((name, index) =>
          (CAPTION_COLUMNS as readonly string[]).includes(name) || CLIP_COLUMNS.includes(name)
            ? []
            : [{ name, index }],
        )
      : [];
  const clip = CLIP_COLUMNS.map(at);
  // Several prompts: a caption_<name> column each, and `<name>.<field>` for a structured one.
  const captionColumns = extra.filter(({ name }) => name.startsWith(CAPTION_PREFIX));
  const several = captionColumns.length > 0;
  const answer = several
    ? []
    : extra.map(({ name, index }) => ({ name: name.replace(/^data\./, ""), index }));
  const fields = several
    ? extra.flatMap(({ name, index }) => {
        const dot = name.indexOf(".");
        return dot > 0 && !name.startsWith(CAPTION_PREFIX)
          ? [{ prompt: name.slice(0, dot), field: name.slice(dot + 1), index }]
          : [];
      })
    : [];
  // OUT's text cells may be guarded (--csv-formula-guard): read as they were before it. The Hugging
  // Face metadata files are never guarded, so their cells are read exactly as they are.
  const shown = columns[0] === "path" ? unguardFormula : (cell: string) => cell;
  return (record) => {
    const field = (index: number) => record[index] ?? "";
    const textOf = (index: number) => shown(record[index] ?? "");
    const flagText = textOf(flags);
    const tagText = textOf(tags);
    return {
      path: textOf(key),
      sha256: field(sha256) || null,
      caption: textOf(text),
      model: textOf(model),
      width: Number(field(width)),
      height: Number(field(height)),
      truncated: field(truncated) === "true",
      flags: flagText === "" ? [] : flagText.split(", "),
      ...(answer.length > 0
        ? { data: Object.fromEntries(answer.map(({ name, index }) => [name, textOf(index)])) }
        : {}),
      ...(tags >= 0 ? { tags: tagText === "" ? [] : tagText.split(", ") } : {}),
      ...(several ? promptsOf(captionColumns, fields, textOf) : {}),
      prompt_hash: field(promptHash) || null,
      ...clipOf(clip.map(field)),
    };
  };
}

/** A CSV row's clip cells, in CLIP_COLUMNS' order, read as a JSONL row's `video` is. */
function clipOf(cells: readonly string[]): Pick<StoredCaption, "video"> {
  const [duration, mode, frames, fps, seconds, segments, bytes] = cells;
  return clipOfJson({ duration, mode, frames, fps, seconds, segments, bytes });
}

/** A row's answers to several prompts, from their columns; an empty cell is no answer yet. */
function promptsOf(
  captionColumns: readonly { name: string; index: number }[],
  fields: readonly { prompt: string; field: string; index: number }[],
  textOf: (index: number) => string,
): Pick<StoredCaption, "captions" | "answers"> {
  const captions: Record<string, string> = {};
  for (const { name, index } of captionColumns) {
    const text = textOf(index);
    if (text !== "") captions[name.slice(CAPTION_PREFIX.length)] = text;
  }
  const answers: Record<string, Record<string, unknown>> = {};
  for (const { prompt, field, index } of fields) {
    if (captions[prompt] === undefined) continue;
    answers[prompt] ??= {};
    answers[prompt][field] = textOf(index);
  }
  return { captions, answers };
}

export function fromJson(line: string): StoredCaption | null {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return null;
  }
  return fromObject(value);
}

/** A row of OUT as JSON holds it (a JSONL line parsed, a Parquet row read back), or null. */
export function fromObject(value: unknown): StoredCaption | null {
  if (typeof value !== "object" || value === null) return null;
  const row = value as Record<string, unknown>;
  const key = KEY.find((name) => typeof row[name] === "string");
  if (key === undefined) return null;
  const text = (name: string) => (typeof row[name] === "string" ? (row[name] as string) : "");
  const strings = (value: unknown) =>
    Array.isArray(value) ? value.filter((item): item is string => typeof item === "string") : [];
  const data = row.data;
  return {
    path: text(key),
    sha256: text("sha256") || null,
    caption: text(TEXT.find((name) => typeof row[name] === "string") ?? "caption"),
    model: text("model"),
    width: Number(row.width),
    height: Number(row.height),
    truncated: row.truncated === true,
    flags:
      typeof row.flags === "string" ? row.flags.split(", ").filter(Boolean) : strings(row.flags),
    ...(typeof data === "object" && data !== null && !Array.isArray(data)
      ? { data: data as Record<string, unknown> }
      : {}),
    ...(Array.isArray(row.tags) ? { tags: strings(row.tags) } : {}),
    ...(isObject(row.captions)
      ? {
          captions: Object.fromEntries(
            Object.entries(row.captions).filter(
              (entry): entry is [string, string] => typeof entry[1] === "string",
            ),
          ),
        }
      : {}),
    ...(isObject(row.answers)
      ? {
          answers: Object.fromEntries(
            Object.entries(row.answers).filter(
              (entry): entry is [string, Record<string, unknown>] => isObject(entry[1]),
            ),
          ),
        }
      : {}),
    prompt_hash: text("prompt_hash") || null,
    ...clipOfJson(row.video),
  };
}

/**
 * A row's `video` (a CSV's cells as text), each field checked: a hand-edited row is no clip
 * rather than a bad one.
 */
function clipOfJson(value: unknown): Pick<StoredCaption, "video"> {
  if (!isObject(value) || (value.mode !== "native" && value.mode !== "frames")) return {};
  const count = (field: unknown) => {
    const number = typeof field === "string" && field !== "" ? Number(field) : field;
    return typeof number === "number" && number >= 0 ? number : null;
  };
  const frames = count(value.frames);
  const seconds = count(value.seconds);
  const segments = count(value.segments);
  const bytes = count(value.bytes);
  if (frames === null || seconds === null || segments === null || bytes === null) return {};
  const video: ClipRecord = {
    duration: count(value.duration),
    mode: value.mode,
    frames,
    fps: count(value.fps),
    seconds,
    segments,
    bytes,
  };
  return { video };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
