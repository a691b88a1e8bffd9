import type { RunEvent, RunSummary } from "./pipeline.js";
import { redactSecret } from "./redact.js";

export type LogFormat = "text" | "json";
export type Level = "info" | "warn" | "error";

export interface ReporterOptions {
  stream: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  /** "json" writes one JSON object per line, for log collectors. @default "text" */
  format?: LogFormat;
  /** Only errors, warnings and the summary. */
  quiet: boolean;
  verbose: boolean;
  /** Masked out of everything printed; can be set later with setSecret(). */
  secret: string | undefined;
  /** Redraw interval of the live line. @default 250 */
  intervalMs?: number;
}

/**
 * Everything the CLI prints on stderr goes through here: a live progress line on a terminal, one
 * line per failure, warnings, and the summary; or the same as JSON lines with --log-format json.
 */
export class Reporter {
  #options: ReporterOptions;
  readonly #json: boolean;
  readonly #live: boolean;
  #timer: NodeJS.Timeout | null = null;
  #lineShown = false;
  #started = performance.now();
  #todo = 0;
  #done = 0;
  #failed = 0;

  constructor(options: ReporterOptions) {
    this.#options = { ...options };
    this.#json = options.format === "json";
    this.#live = Boolean(options.stream.isTTY) && !options.quiet && !this.#json;
  }

  /** Masks this key in everything printed from now on. */
  setSecret(secret: string | undefined): void {
    if (secret) this.#options.secret = secret;
  }

  /** A message of its own: `caption: <text>` on a line, or a JSON "message" event. */
  say(text: string, level: Level = "info"): void {
    if (this.#json) this.#writeJson({ event: "message", level, message: text });
    else this.#writeLine(`caption: ${text}`);
  }

  /** A stack trace or other multi-line detail, printed as it is. */
  detail(text: string): void {
    if (this.#json) this.#writeJson({ event: "detail", level: "error", message: text });
    else this.#writeLine(text);
  }

  onEvent = (event: RunEvent): void => {
    switch (event.type) {
      case "discovered":
        this.#todo = event.todo;
        this.#started = performance.now();
        if (this.#json && !this.#options.quiet) {
          this.#writeJson({
            event: "discovered",
            level: "info",
            found: event.found,
            already_done: event.alreadyDone,
            todo: event.todo,
          });
        }
        if (event.repairedBytes > 0) {
          this.say(
            `repaired the output: cut ${event.repairedBytes} bytes of a row torn by an earlier crash (that image is captioned again)`,
            "warn",
          );
        }
        for (const pattern of event.emptyPatterns)
          this.say(`warning: no images match ${pattern}`, "warn");
        if (this.#live && event.todo > 0) {
          this.#timer = setInterval(() => this.#draw(), this.#options.intervalMs ?? 250);
          this.#timer.unref();
        }
        break;
      case "captioned":
        this.#done += 1;
        if (this.#json && !this.#options.quiet) {
          this.#writeJson({
            event: "captioned",
            level: "info",
            path: event.record.path,
            attempts: event.record.attempts,
            latency_ms: event.record.latency_ms,
            truncated: event.record.truncated,
            copy_of: event.copyOf,
          });
        }
        break;
      case "failed":
        this.#done += 1;
        this.#failed += 1;
        if (this.#json) this.#writeJson({ event: "failed", level: "error", ...event.failure });
        else this.#writeLine(`caption: failed ${event.failure.path}: ${event.failure.message}`);
        break;
      case "retrying":
        if (this.#json && !this.#options.quiet) {
          this.#writeJson({
            event: "retrying",
            level: "warn",
            path: event.path,
            attempt: event.attempt,
            delay_ms: event.delayMs,
            reason: event.reason,
          });
        } else if (this.#options.verbose) {
          this.say(
            `retrying ${event.path} in ${(event.delayMs / 1000).toFixed(1)} s after attempt ${event.attempt}: ${event.reason}`,
          );
        }
        break;
      case "warning":
        this.say(event.message, "warn");
        break;
      case "concurrency":
        if (this.#json && !this.#options.quiet) {
          this.#writeJson({ event: "concurrency", level: "info", allowed: event.allowed });
        } else if (this.#options.verbose) {
          this.say(`the server is rate limiting: ${event.allowed} requests in flight allowed now`);
        }
        break;
      case "prepared":
      case "unfinished":
        break;
    }
  };

  /** Stops the live line and prints the one line every run ends with. */
  finish(summary: RunSummary, line: string, exitCode: number): void {
    this.stop();
    if (this.#json) {
      this.#writeJson({
        event: "summary",
        level: summary.failed > 0 || summary.aborted ? "error" : "info",
        message: line,
        exit_code: exitCode,
        found: summary.found,
        already_done: summary.alreadyDone,
        captioned: summary.captioned,
        copies: summary.copies,
        failed: summary.failed,
        unfinished: summary.unfinished,
        elapsed_ms: summary.elapsedMs,
      });
    } else {
      this.#writeLine(`caption: ${line}`);
    }
  }

  /** Stops the live line without a summary (the run ended with an error). */
  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
    this.#clearLine();
  }

  #writeLine(text: string): void {
    this.#clearLine();
    this.#options.stream.write(`${redactSecret(text, this.#options.secret)}\n`);
    this.#draw();
  }

  #writeJson(fields: Record<string, unknown>): void {
    const line = JSON.stringify({ time: new Date().toISOString(), ...fields });
    this.#options.stream.write(`${redactSecret(line, this.#options.secret)}\n`);
  }

  #draw(): void {
    if (!this.#timer) return;
    const seconds = (performance.now() - this.#started) / 1000;
    const rate = seconds > 0 ? this.#done / seconds : 0;
    const left = this.#todo - this.#done;
    const eta = rate > 0 ? formatDuration(left / rate) : "?";
    const text = `caption: ${this.#done}/${this.#todo} done, ${this.#failed} failed, ${rate.toFixed(1)} images/s, ETA ${eta}`;
    const width = this.#options.stream.columns || 80;
    this.#options.stream.write(`\r${text.slice(0, Math.max(10, width - 1))}\x1b[K`);
    this.#lineShown = true;
  }

  #clearLine(): void {
    if (!this.#lineShown) return;
    this.#options.stream.write("\r\x1b[K");
    this.#lineShown = false;
  }
}

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return "?";
  if (seconds < 60) return `${seconds.toFixed(seconds < 10 ? 1 : 0)} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} min ${Math.round(seconds % 60)} s`;
  return `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 ** 2) return `${(bytes / 1024).toFixed(1)} KB`;
  if (bytes < 1024 ** 3) return `${(bytes / 1024 ** 2).toFixed(1)} MB`;
  return `${(bytes / 1024 ** 3).toFixed(2)} GB`;
}

/** What a run did, in one line (without the "caption: " prefix). */
export function summaryLine(
  summary: RunSummary,
  output: string,
  errorsPath: string,
  dryRun: boolean,
): string {
  const seconds = summary.elapsedMs / 1000;
  if (dryRun) {
    const failed = summary.failed > 0 ? `, ${summary.failed} could not be prepared` : "";
    return `dry run: ${summary.prepared} images would be sent (${formatBytes(summary.preparedBytes)} after resizing)${failed}, ${summary.alreadyDone} already in ${output}; nothing was sent`;
  }
  if (summary.found === 0) return "no images found in the inputs; nothing to do";
  if (summary.alreadyDone === summary.found) {
    return `nothing to do: all ${summary.found} images are already in ${output}`;
  }
  const captioned =
    summary.copies > 0
      ? `${summary.captioned} captioned (${summary.copies} as copies of identical files)`
      : `${summary.captioned} captioned`;
  const parts = [captioned, `${summary.failed} failed`];
  if (summary.alreadyDone > 0) parts.push(`${summary.alreadyDone} already done`);
  if (summary.unfinished > 0) parts.push(`${summary.unfinished} left for the next run`);
  const rate = seconds > 0 ? ` (${(summary.captioned / seconds).toFixed(1)} images/s)` : "";
  const failures = summary.failed > 0 ? `; failures are listed in ${errorsPath}` : "";
  const lead = summary.aborted ? "stopped early: " : summary.stopped ? "interrupted: " : "";
  return `${lead}${parts.join(", ")} in ${formatDuration(seconds)}${rate} → ${output}${failures}`;
}
