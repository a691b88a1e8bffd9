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
}

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

/** An image ready to send: encoded, with the dimensions the model will see. */
export interface PreparedImage {
  /**
   * The encoded image as it is sent (base64 in the request). Set by prepareImage; an image built
   * by a program may give only `dataUrl`.
   */
  readonly data?: Buffer | undefined;
  /** `data:<mime>;base64,…`: the image as a request carries it (made when first read). */
  dataUrl: string;
  mime: "image/jpeg" | "image/png";
  width: number;
  height: number;
  /** The original's size, upright: what a prompt's {width} and {height} say. */
  original: { width: number; height: number };
  /** Size of the encoded image in bytes (before base64). */
  bytes: number;
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

export type OutputFormat = "csv" | "jsonl";
