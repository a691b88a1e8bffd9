/**
 * What a review page is built from, reduced as rows stream past so that 100,000 rows cost no more
 * memory than 1,000: the counts, the totals and two histograms, and each row cut down to what the
 * page shows.
 */

/** A row of OUT as the page shows it. */
export interface ReportRow {
  path: string;
  caption: string;
  width: number | null;
  height: number | null;
  promptTokens: number | null;
  completionTokens: number | null;
  latencyMs: number | null;
  flags: string[];
  /** A copy of an identical file: it needed no request of its own. */
  copy: boolean;
  /** A clip's length and what was sent of it; null for an image. */
  video: ReportClip | null;
  /** The thumbnail's file name beside the page, or null when none could be made. */
  thumb: string | null;
}

/** What a card says of a clip: `width` and `height` are then the size its frames were sent at. */
export interface ReportClip {
  /** Seconds; null when the clip's container did not say. */
  duration: number | null;
  /** "native" (one MP4) or "frames" (images); null when the row does not say. */
  sentAs: string | null;
  frames: number | null;
}

/** A row of the errors file as the page shows it. */
export interface ReportFailure {
  path: string;
  code: string;
  message: string;
}

export interface Histogram {
  /** Bin edges, one more than the counts: bin i holds values in [edges[i], edges[i+1]). */
  edges: number[];
  counts: number[];
}

export interface ReportSummary {
  captioned: number;
  failed: number;
  failedByCode: Record<string, number>;
  copies: number;
  flagged: Record<string, number>;
  /** Rows with at least one flag. */
  flaggedRows: number;
  promptTokens: number;
  completionTokens: number;
  latency: Histogram;
  captionLength: Histogram;
}

/** Latency in ms: log-spaced from 50 ms to 5 min, where caption latencies live. */
export const LATENCY_EDGES = [
  0, 50, 100, 200, 300, 500, 750, 1000, 1500, 2000, 3000, 5000, 7500, 10_000, 20_000, 60_000,
  300_000,
];
/** Caption length in characters. */
export const LENGTH_EDGES = [0, 50, 100, 200, 300, 400, 600, 800, 1000, 1500, 2000, 3000, 5000];

export function emptyReportSummary(): ReportSummary {
  return {
    captioned: 0,
    failed: 0,
    // No prototype: a code or flag named like one of Object's own keys is counted as any other.
    failedByCode: Object.create(null) as Record<string, number>,
    copies: 0,
    flagged: Object.create(null) as Record<string, number>,
    flaggedRows: 0,
    promptTokens: 0,
    completionTokens: 0,
    latency: { edges: LATENCY_EDGES, counts: Array(LATENCY_EDGES.length - 1).fill(0) },
    captionLength: { edges: LENGTH_EDGES, counts: Array(LENGTH_EDGES.length - 1).fill(0) },
  };
}

/** Counts a value into its bin; values past the last edge go into the last bin. */
export function addToHistogram(histogram: Histogram, value: number): void {
  const { edges, counts } = histogram;
  let bin = counts.length - 1;
  for (let i = 0; i < counts.length; i += 1) {
    if (value < (edges[i + 1] ?? Number.POSITIVE_INFINITY)) {
      bin = i;
      break;
    }
  }
  counts[bin] = (counts[bin] ?? 0) + 1;
}

export function countRow(summary: ReportSummary, row: ReportRow): void {
  summary.captioned += 1;
  if (row.copy) summary.copies += 1;
  if (row.flags.length > 0) summary.flaggedRows += 1;
  for (const flag of row.flags) summary.flagged[flag] = (summary.flagged[flag] ?? 0) + 1;
  summary.promptTokens += row.promptTokens ?? 0;
  summary.completionTokens += row.completionTokens ?? 0;
  // A copy's latency is the time to find its twin, not a caption's: left out of the chart.
  if (!row.copy && row.latencyMs !== null) addToHistogram(summary.latency, row.latencyMs);
  addToHistogram(summary.captionLength, [...row.caption].length);
}

export function countFailure(summary: ReportSummary, failure: ReportFailure): void {
  summary.failed += 1;
  summary.failedByCode[failure.code] = (summary.failedByCode[failure.code] ?? 0) + 1;
}

/** A number from a CSV cell or a JSON value; null when empty or not a number. */
function numberOf(value: unknown): number | null {
  if (value === null || value === undefined || value === "") return null;
  const number = Number(value);
  return Number.isFinite(number) ? number : null;
}

function flagsOf(value: unknown): string[] {
  if (Array.isArray(value)) return value.map(String).filter((flag) => flag !== "");
  if (typeof value === "string") {
    return value
      .split(",")
      .map((flag) => flag.trim())
      .filter((flag) => flag !== "");
  }
  return [];
}

/**
 * A row of OUT (a CSV record with text cells, or a JSONL object) as the page shows it, or null when
 * it names no image. `truncated` is a flag of its own in older rows; it is one flag here.
 */
export function reportRowOf(record: Record<string, unknown>): Omit<ReportRow, "thumb"> | null {
  const path = record.path;
  if (typeof path !== "string" || path === "") return null;
  const flags = flagsOf(record.flags);
  const truncated = record.truncated === true || record.truncated === "true";
  if (truncated && !flags.includes("truncated")) flags.push("truncated");
  return {
    path,
    caption: typeof record.caption === "string" ? record.caption : String(record.caption ?? ""),
    width: numberOf(record.width),
    height: numberOf(record.height),
    promptTokens: numberOf(record.prompt_tokens),
    completionTokens: numberOf(record.completion_tokens),
    latencyMs: numberOf(record.latency_ms),
    flags,
    // Copies are written with no endpoint and no attempt of their own.
    copy: record.endpoint === "" && numberOf(record.attempts) === 0,
    video: clipOf(record),
  };
}

/**
 * A clip's part of a row: a JSONL row's `video` object, or a CSV row's `video_*` cells (empty in
 * an image's row of the same run, so a row with none of them is an image's).
 */
function clipOf(record: Record<string, unknown>): ReportClip | null {
  const video = record.video;
  if (typeof video === "object" && video !== null && !Array.isArray(video)) {
    const fields = video as Record<string, unknown>;
    return {
      duration: numberOf(fields.duration),
      sentAs: typeof fields.mode === "string" && fields.mode !== "" ? fields.mode : null,
      frames: numberOf(fields.frames),
    };
  }
  const sentAs = typeof record.video_sent_as === "string" ? record.video_sent_as : "";
  const duration = numberOf(record.video_duration);
  const frames = numberOf(record.video_frames);
  if (sentAs === "" && duration === null && frames === null) return null;
  return { duration, sentAs: sentAs === "" ? null : sentAs, frames };
}

/** A clip's length as a player shows it: "0:05", "12:30", "1:02:03"; "" when unknown. */
export function clockOf(seconds: number | null): string {
  if (seconds === null || !(seconds > 0)) return "";
  // A clip of a fraction of a second is still shown as lasting, not as "0:00".
  const whole = Math.max(1, Math.round(seconds));
  const hours = Math.floor(whole / 3600);
  const minutes = Math.floor((whole % 3600) / 60);
  const secs = String(whole % 60).padStart(2, "0");
  return hours > 0 ? `${hours}:${String(minutes).padStart(2, "0")}:${secs}` : `${minutes}:${secs}`;
}

/** What a clip's card says of it, e.g. "0:05 clip, 5 frames sent as video". */
export function clipLabel(clip: ReportClip): string {
  const clock = clockOf(clip.duration);
  const head = clock === "" ? "clip" : `${clock} clip`;
  if (clip.frames === null) return head;
  const frames = `${clip.frames} frame${clip.frames === 1 ? "" : "s"}`;
  const how = clip.sentAs === "native" ? " as video" : clip.sentAs === "frames" ? " as images" : "";
  return `${head}, ${frames} sent${how}`;
}

export function reportFailureOf(record: Record<string, unknown>): ReportFailure | null {
  if (typeof record.path !== "string" || record.path === "") return null;
  return {
    path: record.path,
    code: typeof record.code === "string" ? record.code : "unknown",
    message: typeof record.message === "string" ? record.message : "",
  };
}

/**
 * JSON that is safe inside an HTML `<script>` element: nothing in it can close the element or
 * start a comment, whatever the captions hold.
 */
export function scriptSafeJson(value: unknown): string {
  return JSON.stringify(value)
    .replace(/</g, "\\u003c")
    .replace(/>/g, "\\u003e")
    .replace(/&/g, "\\u0026")
    .replace(/\u2028/g, "\\u2028")
    .replace(/\u2029/g, "\\u2029");
}
