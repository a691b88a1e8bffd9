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

export interface RecordedRequest {
  index: number;
  method: string;
  url: string;
  headers: Record<string, string | string[] | undefined>;
  body: unknown;
  model: string | null;
  prompt: string | null;
  image: RecordedImage | null;
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
