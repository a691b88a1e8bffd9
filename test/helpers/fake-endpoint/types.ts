/** What the fake answers with, what it records of each request, and the handle a test holds. */

export type FaultKind =
  | "429"
  | "500"
  | "503"
  | "reset"
  | "hang"
  | "malformed"
  | "html502"
  | "empty-choices";

export type Behavior =
  | {
      kind: "ok";
      content?: string | null;
      reasoning?: string;
      reasoningField?: "reasoning" | "reasoning_content";
      finishReason?: string | null;
      usage?: { prompt_tokens: number; completion_tokens: number } | null;
      latencyMs?: number;
    }
  | {
      kind: "status";
      status: number;
      /** Bytes (a Uint8Array) are sent as they are: a gzip or binary body. */
      body?: string | object;
      headers?: Record<string, string>;
      /** How long the answer takes (default at once). */
      latencyMs?: number;
    }
  | { kind: "rate-limit"; retryAfter?: string; retryAfterMs?: string }
  /**
   * A body of `bytes` spaces, streamed as fast as the client reads, with its content-length
   * declared or not; `onEnd` is told how much was sent and whether the client took it all.
   */
  | {
      kind: "flood";
      bytes: number;
      declareLength?: boolean;
      onEnd?: (sent: number, finished: boolean) => void;
    }
  | { kind: "reset" }
  | { kind: "hang" }
  | { kind: "malformed" }
  | { kind: "html502" }
  | { kind: "empty-choices" };

export interface RecordedImage {
  mime: string;
  bytes: number;
  width: number | null;
  height: number | null;
  sha256: string;
}

/**
 * A `video_url` part as ffprobe read it. Probed fields are null where ffprobe gave no value, and
 * all of them (with `playable` false and `sha256` "") when the fake was told not to inspect.
 */
export interface RecordedVideo {
  mime: string;
  bytes: number;
  sha256: string;
  /** ffprobe parsed it and found a video stream; a request whose video is not is answered 400. */
  playable: boolean;
  /** The first video stream's codec_name, e.g. "h264". */
  codec: string | null;
  /** ffprobe's format_name, e.g. "mov,mp4,m4a,3gp,3g2,mj2". */
  container: string | null;
  width: number | null;
  height: number | null;
  /** From avg_frame_rate. */
  fps: number | null;
  /** nb_read_frames (counted by decoding), else the container's nb_frames. */
  frames: number | null;
  /** Seconds: the container's duration, else the video stream's. */
  duration: number | null;
  /** It has an audio stream. */
  audio: boolean;
}

export interface RecordedRequest {
  index: number;
  method: string;
  url: string;
  headers: Record<string, string | string[] | undefined>;
  body: unknown;
  model: string | null;
  prompt: string | null;
  /** The first image part, as it always was; `images` has every one. */
  image: RecordedImage | null;
  /** Every `image_url` part, in order: a clip sent as frames has one per frame. */
  images: RecordedImage[];
  /** The first `video_url` part, or null (also when `video: false` refused it unread). */
  video: RecordedVideo | null;
  /** The request's `response_format`, if it sent one. */
  responseFormat: unknown;
  /** The request's `frequency_penalty`, if it sent one. */
  frequencyPenalty: number | null;
  behavior: Behavior["kind"] | FaultKind;
  /** When its body was in and the answer decided (`performance.now()`): a 429 leaves then. */
  decidedAt: number;
  /** The `usage` it was answered with, when it was answered with a completion that has one. */
  usage?: FakeUsage | undefined;
}

/** What the fake reports a request cost, as an OpenAI-compatible server does. */
export interface FakeUsage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  completion_tokens_details?: { reasoning_tokens: number };
}

export interface FakeEndpoint {
  baseUrl: string;
  port: number;
  /** Chat requests, and requests to unknown routes; GET /models is counted in modelListings. */
  requests: RecordedRequest[];
  readonly modelListings: number;
  readonly inFlight: number;
  readonly maxInFlight: number;
  /** TCP connections accepted so far; lets tests prove the client reuses keep-alive sockets. */
  readonly connectionCount: number;
  resetStats(): void;
  close(): Promise<void>;
}

/** What a chat request was answered with, and the label its record carries. */
export interface Plan {
  label: RecordedRequest["behavior"];
  behavior: Behavior;
}
