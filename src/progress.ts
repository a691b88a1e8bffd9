import type { RunEvent, RunSummary } from "./pipeline.js";
import { redactSecret } from "./redact.js";

export interface ReporterOptions {
  stream: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  quiet: boolean;
  verbose: boolean;
  /** Masked out of everything printed. */
  secret: string | undefined;
  /** Redraw interval of the live line. @default 250 */
  intervalMs?: number;
}

/**
 * Turns run events into what a person watching stderr sees: a live progress line on a terminal,
 * one line per failure, and nothing else unless asked for with --verbose.
 */
export class Reporter {
  readonly #options: ReporterOptions;
  readonly #live: boolean;
  #timer: NodeJS.Timeout | null = null;
  #lineShown = false;
  #started = performance.now();
  #todo = 0;
  #done = 0;
  #failed = 0;

  constructor(options: ReporterOptions) {
    this.#options = options;
    this.#live = Boolean(options.stream.isTTY) && !options.quiet;
  }

  /** Prints a line of its own, keeping the live line below it. */
  say(text: string): void {
    this.#clearLine();
    this.#options.stream.write(`${redactSecret(text, this.#options.secret)}\n`);
    this.#draw();
  }

  onEvent = (event: RunEvent): void => {
    switch (event.type) {
      case "discovered":
        this.#todo = event.todo;
        this.#started = performance.now();
        if (event.repairedBytes > 0) {
          this.say(
            `caption: repaired the output: cut ${event.repairedBytes} bytes of a row torn by an earlier crash (that image is captioned again)`,
          );
        }
        for (const pattern of event.emptyPatterns) {
          this.say(`caption: warning: no images match ${pattern}`);
        }
        if (this.#live && event.todo > 0) {
          this.#timer = setInterval(() => this.#draw(), this.#options.intervalMs ?? 250);
          this.#timer.unref();
        }
        break;
      case "captioned":
        this.#done += 1;
        break;
      case "failed":
        this.#done += 1;
        this.#failed += 1;
        this.say(`caption: failed ${event.failure.path}: ${event.failure.message}`);
        break;
      case "retrying":
        if (this.#options.verbose) {
          this.say(
            `caption: retrying ${event.path} in ${(event.delayMs / 1000).toFixed(1)} s after attempt ${event.attempt}: ${event.reason}`,
          );
        }
        break;
      case "prepared":
      case "unfinished":
        break;
    }
  };

  /** Stops the live line; call before printing the summary. */
  finish(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
    this.#clearLine();
  }

  #draw(): void {
    if (!this.#timer) return;
    const seconds = (performance.now() - this.#started) / 1000;
    const rate = seconds > 0 ? this.#done / seconds : 0;
    const left = this.#todo - this.#done;
    const eta = rate > 0 ? formatDuration(left / rate) : "?";
    const text = `caption: ${this.#done}/${this.#todo} done, ${this.#failed} failed, ${rate.toFixed(1)} images/s, ETA ${eta}`;
    const width = this.#options.stream.columns ?? 80;
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

/** The one line every run ends with, whatever happened. */
export function summaryLine(
  summary: RunSummary,
  output: string,
  errorsPath: string,
  dryRun: boolean,
): string {
  const seconds = summary.elapsedMs / 1000;
  if (dryRun) {
    const failed = summary.failed > 0 ? `, ${summary.failed} could not be prepared` : "";
    return `caption: dry run: ${summary.prepared} images would be sent (${formatBytes(summary.preparedBytes)} after resizing)${failed}, ${summary.alreadyDone} already in ${output}; nothing was sent`;
  }
  if (summary.found === 0) return "caption: no images found in the inputs; nothing to do";
  if (summary.alreadyDone === summary.found) {
    return `caption: nothing to do: all ${summary.found} images are already in ${output}`;
  }
  const parts = [`${summary.captioned} captioned`, `${summary.failed} failed`];
  if (summary.alreadyDone > 0) parts.push(`${summary.alreadyDone} already done`);
  if (summary.unfinished > 0) parts.push(`${summary.unfinished} left for the next run`);
  const rate = seconds > 0 ? ` (${(summary.captioned / seconds).toFixed(1)} images/s)` : "";
  const failures = summary.failed > 0 ? `; failures are listed in ${errorsPath}` : "";
  const lead = summary.aborted ? "stopped early: " : summary.stopped ? "interrupted: " : "";
  return `caption: ${lead}${parts.join(", ")} in ${formatDuration(seconds)}${rate} → ${output}${failures}`;
}
