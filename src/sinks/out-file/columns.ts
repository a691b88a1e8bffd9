import { cellOf } from "../../answer/json-answer.js";
import type { CaptionRecord, ClipRecord } from "../../types.js";

/** The columns of OUT every run has, in order; a structured answer adds its own after them. */
export const CAPTION_COLUMNS = [
  "path",
  "caption",
  "model",
  "endpoint",
  "width",
  "height",
  "prompt_tokens",
  "completion_tokens",
  "reasoning_tokens",
  "attempts",
  "latency_ms",
  "truncated",
  "flags",
  "created_at",
  "sha256",
  "prompt_hash",
] as const satisfies readonly (keyof CaptionRecord)[];

/**
 * A structured answer's property as a CSV column: its own name, unless that is one of OUT's own
 * columns (then `data.<name>`). A `caption` property is the caption column itself.
 */
export function answerColumns(
  properties: readonly string[],
): { property: string; column: string }[] {
  const taken = new Set<string>([...CAPTION_COLUMNS, ...properties]);
  return properties
    .filter((property) => property !== "caption")
    .map((property) => {
      if (!(CAPTION_COLUMNS as readonly string[]).includes(property)) {
        return { property, column: property };
      }
      // `data.` again until the name is free: a property may itself be called "data.path".
      let column = `data.${property}`;
      while (taken.has(column)) column = `data.${column}`;
      taken.add(column);
      return { property, column };
    });
}

/** Several prompts' answers in a CSV: `caption_<name>`, and `<name>.<field>` for a structured one. */
export const CAPTION_PREFIX = "caption_";

/** What OUT holds of several prompts (`--prompts`): their names, and each one's fields. */
export interface PromptColumns {
  names: readonly string[];
  /** A structured prompt's top-level properties, by its name. */
  fields: Readonly<Record<string, readonly string[]>>;
}

/**
 * A clip's columns in a CSV, last: its length and what was sent of it (a JSONL row has them as
 * its `video` object). Empty for an image.
 */
export const CLIP_CELLS: readonly { column: string; cell: (clip: ClipRecord) => unknown }[] = [
  { column: "video_duration", cell: (clip) => clip.duration },
  { column: "video_sent_as", cell: (clip) => clip.mode },
  { column: "video_frames", cell: (clip) => clip.frames },
  { column: "video_fps", cell: (clip) => clip.fps },
  { column: "video_seconds", cell: (clip) => clip.seconds },
  { column: "video_segments", cell: (clip) => clip.segments },
  { column: "video_bytes", cell: (clip) => clip.bytes },
];

export const CLIP_COLUMNS: readonly string[] = CLIP_CELLS.map((entry) => entry.column);

/**
 * OUT's columns for a run whose answers have these properties (none for plain captions), or
 * that asks several prompts; and, for a run that may caption clips, theirs.
 */
export function outColumns(
  properties: readonly string[] = [],
  prompts?: PromptColumns,
  clips = false,
): string[] {
  const answers = prompts
    ? promptColumns(prompts).map((entry) => entry.column)
    : answerColumns(properties).map((entry) => entry.column);
  return [...CAPTION_COLUMNS, ...answers, ...(clips ? CLIP_COLUMNS : [])];
}

/** Each prompt's caption column, then each structured prompt's fields, prefixed with its name. */
export function promptColumns(
  prompts: PromptColumns,
): { column: string; cell: (record: CaptionRecord) => unknown }[] {
  return [
    ...prompts.names.map((name) => ({
      column: `${CAPTION_PREFIX}${name}`,
      cell: (record: CaptionRecord) => record.captions?.[name] ?? "",
    })),
    ...prompts.names.flatMap((name) =>
      (prompts.fields[name] ?? []).map((field) => ({
        column: `${name}.${field}`,
        cell: (record: CaptionRecord) => cellOf(record.answers?.[name]?.[field]),
      })),
    ),
  ];
}
