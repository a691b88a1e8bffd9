import type { SchemaElement } from "hyparquet-writer";
import {
  answerColumns,
  CAPTION_COLUMNS,
  CAPTION_PREFIX,
  CLIP_COLUMNS,
  type PromptColumns,
} from "./columns.js";

/**
 * How a column of a Parquet OUT is stored, chosen for what DuckDB and pandas (through pyarrow)
 * make of it: text is UTF-8 strings (VARCHAR, `object`/`string`), counts integers (BIGINT,
 * `int64`), `truncated` a BOOLEAN, `created_at` a UTC TIMESTAMP (`datetime64[ms, UTC]`), and
 * `flags` a list of strings (VARCHAR[], a list per row) rather than CSV's joined text, so a flag is
 * tested by membership, not by parsing. Every column but `path` may be null: a count the server did
 * not report, a clip's column for an image, a prompt not answered yet.
 */
export type ParquetKind =
  | "string"
  | "int32"
  | "int64"
  | "double"
  | "boolean"
  | "timestamp"
  | "strings";

/** A column: its name, its kind, and where a record (a row of the JSONL record) keeps its value. */
export interface ParquetColumn {
  name: string;
  kind: ParquetKind;
  value: (record: Record<string, unknown>) => unknown;
}

/** The columns every run has, OUT's own, in CAPTION_COLUMNS' order. */
const CORE_KINDS: Record<(typeof CAPTION_COLUMNS)[number], ParquetKind> = {
  path: "string",
  caption: "string",
  model: "string",
  endpoint: "string",
  width: "int32",
  height: "int32",
  prompt_tokens: "int64",
  completion_tokens: "int64",
  reasoning_tokens: "int64",
  attempts: "int32",
  latency_ms: "int64",
  truncated: "boolean",
  flags: "strings",
  created_at: "timestamp",
  sha256: "string",
  prompt_hash: "string",
};

/** A clip's columns (CLIP_COLUMNS), each from a field of the record's `video`. */
const CLIP_KINDS: Readonly<Record<string, { field: string; kind: ParquetKind }>> = {
  video_duration: { field: "duration", kind: "double" },
  video_sent_as: { field: "mode", kind: "string" },
  video_frames: { field: "frames", kind: "int32" },
  video_fps: { field: "fps", kind: "double" },
  video_seconds: { field: "seconds", kind: "double" },
  video_segments: { field: "segments", kind: "int32" },
  video_bytes: { field: "bytes", kind: "int64" },
};

/** The kinds a structured answer's field may take: whatever fits every value the rows hold. */
type AnswerKind = "boolean" | "int64" | "double" | "string" | "strings";

/** The kind of one value of an answer's field; undefined for none (null). */
function kindOf(value: unknown): AnswerKind | undefined {
  if (value === null || value === undefined) return undefined;
  if (typeof value === "boolean") return "boolean";
  if (typeof value === "number") return Number.isSafeInteger(value) ? "int64" : "double";
  if (Array.isArray(value) && value.every((item) => typeof item === "string")) return "strings";
  // Text, and what has no column type of its own (an object, a list of objects): JSON text.
  return "string";
}

/** The kind that holds both: integers widen to doubles, anything else mixed is text. */
function widen(seen: AnswerKind | undefined, next: AnswerKind | undefined): AnswerKind | undefined {
  if (seen === undefined) return next;
  if (next === undefined || next === seen) return seen;
  if ((seen === "int64" && next === "double") || (seen === "double" && next === "int64")) {
    return "double";
  }
  return "string";
}

/** What a run says of its columns, as CSV's outColumns takes it. */
export interface RunColumns {
  /** A structured answer's top-level properties. */
  properties?: readonly string[] | undefined;
  /** Several prompts' names and each structured one's fields. */
  prompts?: PromptColumns | undefined;
  /** The run may caption clips. */
  clips?: boolean | undefined;
}

/**
 * The columns of a Parquet OUT, learned from the rows before the first is written (Parquet states
 * its schema up front). They are the CSV's, for the run's settings, and also those the rows of
 * earlier runs hold (another schema's fields, a prompt since removed), so rebuilding the file
 * never drops what the record keeps. A structured answer's field takes the kind that fits every
 * value it has: a number schema's answers are BIGINT while all are whole, DOUBLE once one is not.
 */
export class ParquetLayout {
  readonly #properties: string[];
  readonly #prompts: string[];
  readonly #fields = new Map<string, string[]>();
  #clips: boolean;
  readonly #kinds = new Map<string, AnswerKind | undefined>();

  constructor(run: RunColumns = {}) {
    this.#properties = [...(run.properties ?? [])];
    this.#prompts = [...(run.prompts?.names ?? [])];
    for (const name of this.#prompts)
      this.#fields.set(name, [...(run.prompts?.fields[name] ?? [])]);
    this.#clips = run.clips === true;
  }

  /** Learns from one row of the record: the fields it answers, and the kinds of their values. */
  observe(record: Record<string, unknown>): void {
    const data = objectOr(record.data);
    for (const [property, value] of Object.entries(data)) {
      if (!this.#properties.includes(property)) this.#properties.push(property);
      this.#see(dataKey(property), value);
    }
    const captions = objectOr(record.captions);
    for (const name of Object.keys(captions)) this.#addPrompt(name);
    for (const [name, answer] of Object.entries(objectOr(record.answers))) {
      const fields = this.#addPrompt(name);
      for (const [field, value] of Object.entries(objectOr(answer))) {
        if (!fields.includes(field)) fields.push(field);
        this.#see(answerKey(name, field), value);
      }
    }
    if (objectOr(record.video).mode !== undefined) this.#clips = true;
  }

  #addPrompt(name: string): string[] {
    if (!this.#prompts.includes(name)) this.#prompts.push(name);
    let fields = this.#fields.get(name);
    if (!fields) {
      fields = [];
      this.#fields.set(name, fields);
    }
    return fields;
  }

  #see(key: string, value: unknown): void {
    this.#kinds.set(key, widen(this.#kinds.get(key), kindOf(value)));
  }

  /** The columns in order: OUT's own, the answer's, several prompts', then a clip's. */
  columns(): ParquetColumn[] {
    const columns: ParquetColumn[] = CAPTION_COLUMNS.map((name) => ({
      name,
      kind: CORE_KINDS[name],
      value: (record) => record[name],
    }));
    for (const { property, column } of answerColumns(this.#properties)) {
      columns.push({
        name: column,
        kind: this.#kinds.get(dataKey(property)) ?? "string",
        value: (record) => objectOr(record.data)[property],
      });
    }
    for (const name of this.#prompts) {
      columns.push({
        name: `${CAPTION_PREFIX}${name}`,
        kind: "string",
        value: (record) => objectOr(record.captions)[name],
      });
    }
    for (const name of this.#prompts) {
      for (const field of this.#fields.get(name) ?? []) {
        columns.push({
          name: `${name}.${field}`,
          kind: this.#kinds.get(answerKey(name, field)) ?? "string",
          value: (record) => objectOr(objectOr(record.answers)[name])[field],
        });
      }
    }
    if (this.#clips) {
      for (const name of CLIP_COLUMNS) {
        const clip = CLIP_KINDS[name];
        if (!clip) continue;
        columns.push({
          name,
          kind: clip.kind,
          value: (record) => objectOr(record.video)[clip.field],
        });
      }
    }
    // A name twice would make a file no reader opens (an answer's field named like a clip's
    // column, say): the first keeps it.
    const taken = new Set<string>();
    return columns.filter((column) => {
      if (taken.has(column.name)) return false;
      taken.add(column.name);
      return true;
    });
  }
}

const dataKey = (property: string) => `data\u0000${property}`;
const answerKey = (prompt: string, field: string) => `answer\u0000${prompt}\u0000${field}`;

function objectOr(value: unknown): Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : {};
}

/**
 * A record's value as the column stores it, or null. The record is read from a file someone may
 * have edited: a value of the wrong type is null in a number's column, JSON text in a string's.
 */
export function cellValue(kind: ParquetKind, value: unknown): unknown {
  if (value === null || value === undefined) return null;
  switch (kind) {
    case "string":
      return typeof value === "string" ? value : JSON.stringify(value);
    case "int32":
      return typeof value === "number" && Number.isInteger(value) && Math.abs(value) < 2 ** 31
        ? value
        : null;
    case "int64":
      return typeof value === "number" && Number.isSafeInteger(value) ? BigInt(value) : null;
    case "double":
      return typeof value === "number" && Number.isFinite(value) ? value : null;
    case "boolean":
      return typeof value === "boolean" ? value : null;
    case "timestamp": {
      const time = typeof value === "string" ? Date.parse(value) : Number.NaN;
      return Number.isNaN(time) ? null : new Date(time);
    }
    case "strings":
      if (Array.isArray(value)) {
        return value.map((item) => (typeof item === "string" ? item : JSON.stringify(item)));
      }
      // CSV's joined flags, in a record converted from one.
      return typeof value === "string" ? value.split(", ").filter(Boolean) : null;
  }
}

const UTF8 = {
  type: "BYTE_ARRAY",
  converted_type: "UTF8",
  logical_type: { type: "STRING" },
} as const;

/** The Parquet schema of these columns: `path` required, every other column nullable. */
export function parquetSchema(columns: readonly ParquetColumn[]): SchemaElement[] {
  const schema: SchemaElement[] = [{ name: "root", num_children: columns.length }];
  for (const { name, kind } of columns) {
    const repetition_type = name === "path" ? "REQUIRED" : "OPTIONAL";
    if (kind === "strings") {
      // The three-level LIST every reader takes (DuckDB VARCHAR[], pyarrow list<string>).
      schema.push(
        {
          name,
          repetition_type,
          converted_type: "LIST",
          logical_type: { type: "LIST" },
          num_children: 1,
        },
        { name: "list", repetition_type: "REPEATED", num_children: 1 },
        { name: "element", repetition_type: "REQUIRED", ...UTF8 },
      );
      continue;
    }
    schema.push({ name, repetition_type, ...PRIMITIVE[kind] });
  }
  return schema;
}

const PRIMITIVE: Record<Exclude<ParquetKind, "strings">, Omit<SchemaElement, "name">> = {
  string: UTF8,
  int32: { type: "INT32" },
  int64: { type: "INT64" },
  double: { type: "DOUBLE" },
  boolean: { type: "BOOLEAN" },
  timestamp: {
    type: "INT64",
    converted_type: "TIMESTAMP_MILLIS",
    logical_type: { type: "TIMESTAMP", isAdjustedToUTC: true, unit: "MILLIS" },
  },
};

/**
 * A row read back from a Parquet OUT as the record's row it was written from: a Parquet file
 * copied without its record is resumed from, and read by the review page, as the record would be.
 * Columns are told apart by name as a CSV's are (stored-caption.ts): OUT's own, a clip's, a
 * prompt's `caption_<name>` and `<name>.<field>`, and any other an answer's (`data.` taken off).
 * An answer's object or list of objects comes back as the JSON text it was stored as.
 */
export function recordOfRow(row: Record<string, unknown>): Record<string, unknown> {
  const record: Record<string, unknown> = {};
  const data: Record<string, unknown> = {};
  const captions: Record<string, unknown> = {};
  const answers: Record<string, Record<string, unknown>> = {};
  const video: Record<string, unknown> = {};
  const names = Object.keys(row);
  const prompts = new Set(
    names
      .filter((name) => name.startsWith(CAPTION_PREFIX))
      .map((name) => name.slice(CAPTION_PREFIX.length)),
  );
  for (const name of names) {
    const value = plain(row[name]);
    if ((CAPTION_COLUMNS as readonly string[]).includes(name)) {
      record[name] = value;
      continue;
    }
    if (value === null) continue;
    const clip = CLIP_KINDS[name];
    if (clip) {
      video[clip.field] = value;
      continue;
    }
    if (name.startsWith(CAPTION_PREFIX)) {
      captions[name.slice(CAPTION_PREFIX.length)] = value;
      continue;
    }
    const dot = name.indexOf(".");
    const prompt = dot > 0 ? name.slice(0, dot) : "";
    if (prompts.has(prompt)) {
      answers[prompt] ??= {};
      answers[prompt][name.slice(dot + 1)] = value;
      continue;
    }
    data[name.replace(/^data\./, "")] = value;
  }
  if (!Array.isArray(record.flags)) record.flags = [];
  if (Object.keys(data).length > 0) {
    record.data = data;
    if (Array.isArray(data.tags)) record.tags = data.tags;
  }
  if (prompts.size > 0) {
    record.captions = captions;
    record.answers = answers;
  }
  // A clip's sent mode is never null: without it the row is an image's.
  if (video.mode !== undefined) {
    record.video = { duration: null, fps: null, ...video };
  }
  return record;
}

/** A value as JSON holds it: a BIGINT as a number, a TIMESTAMP as ISO 8601 text. */
function plain(value: unknown): unknown {
  if (value === undefined) return null;
  if (typeof value === "bigint") return Number(value);
  if (value instanceof Date) return value.toISOString();
  if (Array.isArray(value)) return value.map(plain);
  return value;
}
