import type { ContextOverflows, RunEvent, RunSummary } from "../run/events.js";
import type { ConcurrencyCause } from "../send/limiter.js";
import { forTerminal } from "../trust/text.js";
import { redactSecret } from "../util/redact.js";

export type LogFormat = "text" | "json";
export type Level = "info" | "warn" | "error";

export interface ReporterOptions {
  stream: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  /** "json" writes one JSON object per line, for log collectors. @default "text" */
  format?: LogFormat;
  /** Only errors, warnings and the summary. */
  quiet: boolean;
  verbose: boolean;
  /** Masked out of everything printed; more can be added with setSecret(). */
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
  readonly #secrets: string[] = [];
  readonly #json: boolean;
  readonly #live: boolean;
  #timer: NodeJS.Timeout | null = null;
  #lineShown = false;
  #started = performance.now();
  #todo = 0;
  #alreadyDone = 0;
  #done = 0;
  #failed = 0;
  /** The stream broke (a closed pipe, a log collector that died): the run goes on unreported. */
  #broken = false;

  constructor(options: ReporterOptions) {
    this.#options = { ...options };
    if (options.secret) this.#secrets.push(options.secret);
    this.#json = options.format === "json";
    this.#live = Boolean(options.stream.isTTY) && !options.quiet && !this.#json;
    // Without a listener, EPIPE on stderr is an uncaught error that kills the run mid-write.
    options.stream.on("error", () => {
      this.#broken = true;
    });
  }

  /** Masks this key too in everything printed from now on. */
  setSecret(secret: string | undefined): void {
    if (secret && !this.#secrets.includes(secret)) this.#secrets.push(secret);
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
        this.#alreadyDone = event.alreadyDone;
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
        for (const input of event.emptyInputs)
          this.say(`warning: ${input} matches no image file`, "warn");
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
        else
          this.#writeLine(
            `caption: failed ${nameForTerminal(event.failure.path)}: ${event.failure.message}`,
          );
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
          this.#writeJson({
            event: "concurrency",
            level: "info",
            allowed: event.allowed,
            cause: event.cause,
          });
        } else if (this.#options.verbose) {
          const line = concurrencyLine(event.allowed, event.cause);
          if (line) this.say(line);
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
        empty_inputs: summary.emptyInputs,
        context_overflows: summary.contextOverflows,
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

  /**
   * A text line: a file name or a server's words in it may hold control characters (an ESC
   * sequence that recolours or rewrites the screen), shown escaped (`\x1b`). JSON lines escape
   * them already, and keep names exact.
   */
  #writeLine(text: string): void {
    this.#clearLine();
    // A line of a message that spans several is indented, so none can pass for a line of the
    // tool's own (a file named "x\ncaption: 40 captioned…" would otherwise forge a summary).
    const shown = forTerminal(redactSecret(text, this.#secrets)).replace(/\n(?!$)/g, "\n  ");
    this.#write(`${shown}\n`);
    this.#draw();
  }

  #writeJson(fields: Record<string, unknown>): void {
    const line = JSON.stringify({ time: new Date().toISOString(), ...fields });
    this.#write(`${redactSecret(line, this.#secrets)}\n`);
  }

  #write(text: string): void {
    if (this.#broken) return;
    try {
      this.#options.stream.write(text);
    } catch {
      this.#broken = true;
    }
  }

  #draw(): void {
    if (!this.#timer) return;
    const width = this.#options.stream.columns || 80;
    const text = progressLine(
      {
        done: this.#done,
        todo: this.#todo,
        alreadyDone: this.#alreadyDone,
        failed: this.#failed,
        seconds: (performance.now() - this.#started) / 1000,
      },
      width,
    );
    this.#write(`\r${text}\x1b[K`);
    this.#lineShown = true;
  }

  #clearLine(): void {
    if (!this.#lineShown) return;
    this.#write("\r\x1b[K");
    this.#lineShown = false;
  }
}

/**
 * Columns kept free at the end of the live line: the terminal echoes Ctrl-C as "^C" after it, and
 * a line that then wraps leaves its first half on screen where clearing cannot reach it.
 */
const ECHO_MARGIN = 3;

/** The live line, cut to fit a terminal `width` columns wide. */
export function progressLine(
  state: { done: number; todo: number; alreadyDone: number; failed: number; seconds: number },
  width: number,
): string {
  const { done, todo, alreadyDone, failed, seconds } = state;
  const rate = seconds > 0 ? done / seconds : 0;
  const eta = rate > 0 ? formatDuration((todo - done) / rate) : "?";
  const earlier = alreadyDone > 0 ? ` (${alreadyDone + done}/${alreadyDone + todo} in all)` : "";
  const text = `caption: ${done}/${todo} done${earlier}, ${failed} failed, ${rate.toFixed(1)} images/s, ETA ${eta}`;
  return text.slice(0, Math.max(1, width - ECHO_MARGIN));
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
  const empty =
    summary.emptyInputs.length > 0
      ? `; warning: ${summary.emptyInputs.join(", ")} ${summary.emptyInputs.length === 1 ? "matches" : "match"} no image file (a typo? --strict makes this an error)`
      : "";
  if (dryRun) {
    const failed = summary.failed > 0 ? `, ${summary.failed} could not be prepared` : "";
    return `dry run: ${summary.prepared} images would be sent (${formatBytes(summary.preparedBytes)} after resizing)${failed}, ${summary.alreadyDone} already in ${output}; nothing was sent${empty}`;
  }
  if (summary.found === 0) return `no images found in the inputs; nothing to do${empty}`;
  if (summary.alreadyDone === summary.found) {
    return `nothing to do: all ${summary.found} images are already in ${output}${empty}`;
  }
  const captioned =
    summary.copies > 0
      ? `${summary.captioned} captioned (${summary.copies} as copies of identical files)`
      : `${summary.captioned} captioned`;
  const parts = [captioned, `${summary.failed} failed`];
  const flagged = Object.entries(summary.flagged);
  if (flagged.length > 0) {
    parts.push(
      `flagged: ${flagged.map(([flag, count]) => `${count} ${flag}`).join(", ")} (see the flags column)`,
    );
  }
  const byEndpoint = Object.entries(summary.byEndpoint);
  if (byEndpoint.length > 1) {
    parts.push(
      `by endpoint: ${byEndpoint.map(([label, count]) => `${label} ${count}`).join(", ")}`,
    );
  }
  for (const [label, overflow] of Object.entries(summary.contextOverflows)) {
    parts.push(contextLine(label, overflow));
  }
  if (summary.alreadyDone > 0) parts.push(`${summary.alreadyDone} already done`);
  if (summary.unfinished > 0) parts.push(`${summary.unfinished} left for the next run`);
  const rate = seconds > 0 ? ` (${(summary.captioned / seconds).toFixed(1)} images/s)` : "";
  const failures =
    summary.failed === 0
      ? ""
      : summary.errorsFileProblem
        ? `; the errors file ${errorsPath} could not be written (${summary.errorsFileProblem}), so the failures are only in the lines above`
        : `; failures are listed in ${errorsPath}`;
  const lead = summary.aborted ? "stopped early: " : summary.stopped ? "interrupted: " : "";
  // A run stopped before its first caption has written no OUT to point at.
  const written = !summary.aborted || summary.captioned + summary.alreadyDone > 0;
  const where = written ? ` → ${output}` : `; nothing was written to ${output}`;
  return `${lead}${parts.join(", ")} in ${formatDuration(seconds)}${rate}${where}${failures}${empty}`;
}

/** A file name as one line on a terminal: its newlines and tabs shown escaped, as other controls. */
function nameForTerminal(name: string): string {
  return name.replace(/\n/g, "\\n").replace(/\t/g, "\\t");
}

/** What a run says of an endpoint that ran out of context: how far it came down, and what it cost. */
function contextLine(label: string, overflow: ContextOverflows): string {
  const { from, to, times, resent } = overflow;
  const cuts = times === 1 ? "once" : `${times} times`;
  const again = `${resent} ${resent === 1 ? "request" : "requests"} sent again`;
  return times === 0
    ? `${label} ran out of context (${again})`
    : `concurrency at ${label} came down from ${from} to ${to} (it ran out of context ${cuts}; ${again})`;
}

/** The line -v shows; the climb back after an overload, one step a round trip, is JSON's only. */
function concurrencyLine(allowed: number, cause: ConcurrencyCause): string | null {
  const requests = `${allowed} ${allowed === 1 ? "request" : "requests"} in flight`;
  switch (cause) {
    case "auto":
      return `-c auto: ${requests}`;
    case "timeout":
      return `-c auto: ${requests}, after a timeout`;
    case "overload":
      return `the server is overloaded or rate limiting: ${requests} allowed now`;
    case "context":
      return `the server ran out of context (KV cache) for its requests in flight: ${requests} allowed now`;
    case "recovery":
      return null;
  }
}
