import type { RunEvent, RunSummary } from "../run/events.js";
import { forTerminal } from "../trust/text.js";
import { redactSecret } from "../util/redact.js";
import { concurrencyLine } from "./concurrency-line.js";
import { progressLine } from "./live-line.js";
import { tokensJson } from "./summary-line.js";

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
        tokens: tokensJson(summary),
        cost: summary.tokens.cost,
        budget_reached: summary.budgetReached,
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

/** A file name as one line on a terminal: its newlines and tabs shown escaped, as other controls. */
function nameForTerminal(name: string): string {
  return name.replace(/\n/g, "\\n").replace(/\t/g, "\\t");
}
