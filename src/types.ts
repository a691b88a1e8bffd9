/** One image found by discovery. */
export interface ImageTask {
  /** The path written to OUT: relative to the working directory for relative inputs, POSIX separators. */
  path: string;
  /** Absolute path on disk, as discovery found it (through any file symlink, not resolved). */
  absPath: string;
  /**
   * Its row in OUT is made again (`--redo`): whatever the row holds is replaced, none of it kept.
   */
  redo?: boolean | undefined;
  /**
   * The real path of the folder input the image was found in (or of the linked folder it was
   * found through, under `followSymlinks`); null or absent for an image named as a file or a
   * glob. What the run reads beside the image as text must lie inside it.
   */
  root?: string | null | undefined;
  /**
   * A sample of a WebDataset shard or a row of a Parquet file: the image is read from inside
   * `absPath` (the shard or file), and `path` is `<shard>#<key>` or `<file>#<row>`.
   */
  member?: ArchiveMember | undefined;
}

/** Where an image lies inside a shard or a Parquet file. */
export type ArchiveMember =
  | {
      kind: "tar";
      /** The sample's key: its members' names up to the first dot. */
      key: string;
      /** The image member's name in the shard. */
      name: string;
      /** Where its bytes lie in the shard. */
      offset: number;
      size: number;
      /** The extensions of all the sample's members (`jpg`, `txt`, `json`), in the shard's order. */
      exts: readonly string[];
      /** The sample's place in the shard. */
      index: number;
    }
  | {
      kind: "parquet";
      /** The row's place in the file, from 0. */
      row: number;
      /** The image column's name. */
      column: string;
      index: number;
    };

export type ImageFormat = "jpeg" | "png";

/** How an image is shrunk and encoded before it is sent. */
export interface PrepareOptions {
  /** Cap on width × height of the image sent; never upscales. @default 1806336 (9 × 448²) */
  maxPixels: number;
  /** Optional cap on the longest side, in pixels. */
  maxSide?: number | undefined;
  /** Encoding of the image sent. @default "jpeg" */
  imageFormat: ImageFormat;
  /** JPEG quality. @default 90 */
  quality?: number;
}

/** How a clip is sent: one MP4 (`video_url`), as frames (`image_url` parts), or native first. */
export type VideoMode = "auto" | "native" | "frames";

/** How clips are found, cut to the model's budget and sent. */
export interface VideoOptions {
  /** Folders and globs pick up clips too (a clip named as a file is taken either way). @default false */
  include: boolean;
  /** @default "auto": native, and frames from an endpoint that refuses video */
  mode: VideoMode;
  /** Shortest side of what is sent, at most, in pixels; never enlarged. @default 448 */
  side: number;
  /** Frames a second sent natively, at most. @default 1 */
  fps: number;
  /** Seconds of a clip sent, at most; a longer one is sampled (`sample`). @default 60 */
  seconds: number;
  /** How a longer clip is cut to `seconds`: evenly spaced segments, or its start. @default "segments" */
  sample: "segments" | "start";
  /** Frames sent as images where a clip goes as frames. @default 8 */
  frames: number;
  /** FFmpeg's time to read or cut one clip, in ms; a clip that takes longer fails. @default 120000 */
  timeoutMs: number;
}

/** What was sent of a clip: recorded in its row. */
export interface ClipSent {
  /** The source's length in seconds; null when its container does not say. */
  duration: number | null;
  /** "native": one H.264 MP4 in a `video_url` part; "frames": images in order. */
  mode: "native" | "frames";
  /** Frames sent (native: as encoded). */
  frames: number;
  /** Frames a second of the MP4 sent; null for frames sampled evenly. */
  fps: number | null;
  /** Seconds of the source the frames come from. */
  seconds: number;
  /** The stretches of the source those seconds are: 1 when the clip is sent from its start. */
  segments: number;
}

/** An image ready to send: encoded, with the dimensions the model will see. */
export interface PreparedImage {
  /**
   * The encoded image as it is sent (base64 in the request). Set by prepareImage; an image built
   * by a program may give only `dataUrl`.
   */
  readonly data?: Buffer | undefined;
  /** `data:<mime>;base64,…`: the image as a request carries it (made when first read). */
  dataUrl: string;
  mime: "image/jpeg" | "image/png" | "video/mp4";
  width: number;
  height: number;
  /** The original's size, upright: what a prompt's {width} and {height} say. */
  original: { width: number; height: number };
  /** Size of the encoded image in bytes (before base64); of every frame, for a clip as frames. */
  bytes: number;
  /** A clip: what of it is sent. `data` is then the MP4, or the first of `frames`. */
  clip?: ClipSent | undefined;
  /** A clip sent as frames: each one's JPEG, in order. */
  frames?: readonly Buffer[] | undefined;
}

/** Token counts as reported by the server; null when the server sent none. */
export interface Usage {
  promptTokens: number | null;
  completionTokens: number | null;
  /** Of the completion tokens, those a Thinking model spent reasoning, when the server says. */
  reasoningTokens: number | null;
}

/**
 * A row of OUT: one captioned image. The writers choose the columns (sinks/out-file/writers.ts); a
 * structured answer's properties become columns of their own in CSV.
 */
export interface CaptionRecord {
  path: string;
  caption: string;
  model: string;
  /** Which endpoint answered: its host and port. */
  endpoint: string;
  width: number;
  height: number;
  prompt_tokens: number | null;
  completion_tokens: number | null;
  /** Of the completion tokens, those spent reasoning (`completion_tokens_details`), if reported. */
  reasoning_tokens: number | null;
  attempts: number;
  latency_ms: number;
  truncated: boolean;
  /** What the caption checks found (`repetition`, `refusal`, `truncated`), for filtering. */
  flags: string[];
  created_at: string;
  /** SHA-256 of the image file's bytes: how copies under other names are recognised. */
  sha256: string;
  /** Which prompt (template and schema) made the caption: resume warns when it changes. */
  prompt_hash: string;
  /** The structured answer, when a JSON Schema was asked for. */
  data?: Record<string, unknown>;
  /** The answer's `tags`, when it has a list of them (`--tags`): sidecars and XMP carry them. */
  tags?: string[];
  /** With several prompts (`--prompts`): each one's answer, by its name. */
  captions?: Record<string, string>;
  /** With several prompts: each structured prompt's answer, by its name. */
  answers?: Record<string, Record<string, unknown>>;
  /** A clip: its length and what was sent of it (`width`, `height`: the size sent). */
  video?: ClipRecord;
}

/** A clip's row: its length, and what was sent of it. */
export interface ClipRecord extends ClipSent {
  /** Bytes sent: the MP4, or every frame. */
  bytes: number;
}

/** A row of the errors file: one image that could not be captioned this run. */
export interface FailureRecord {
  path: string;
  code: string;
  message: string;
  attempts: number;
  status: number | null;
  created_at: string;
}

export type OutputFormat = "csv" | "jsonl" | "parquet";
