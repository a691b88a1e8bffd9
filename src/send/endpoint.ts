import { ConnectionError } from "../errors.js";
import type { ChatClient } from "./client.js";
import type { Gate } from "./dispatch.js";
import type { AdaptiveLimiter } from "./limiter.js";
import type { CaptionProtocol } from "./request.js";
import type { RequestBudget } from "./request-budget.js";
import type { Slot } from "./slot.js";

/** How long an endpoint that stopped answering is left alone before one request tries it again. */
export const RETRY_DOWN_MS = 30_000;
/** Requests in a row that got no reply (reset, timed out) before one of several endpoints is out. */
const SILENT_IN_A_ROW = 3;

export interface EndpointParts {
  /** `host:port`, as rows and the summary name it: never the key. */
  label: string;
  baseUrl: string;
  /** The model id sent to this endpoint and recorded in its rows. */
  model: string;
  client: ChatClient;
  limiter: AdaptiveLimiter;
  protocol: CaptionProtocol;
  /**
   * Older ids of the model's family to try, in turn, when the server lists no models and says
   * the one asked for does not exist (a server at an earlier revision of the provider's guide),
   * and how to build the protocol for each.
   */
  olderModels?: { ids: readonly string[]; protocolFor: (model: string) => CaptionProtocol };
  /**
   * With several prompts (`--prompts`), each one's protocol when the endpoint is asked for this
   * model: a prompt with a model of its own keeps it.
   */
  promptsFor?: (model: string) => ReadonlyMap<string, CaptionProtocol>;
  /** The ids its `/models` listed, for "did you mean"; null when it lists none. */
  listed: string[] | null;
  /**
   * With several endpoints one is taken out at its first refused connection, or after a few
   * requests in a row without a reply, and tried again later. Alone, it is out (and the run
   * over) only after twice as many refused connections in a row as its limiter lets in flight
   * (`aloneThreshold`): there is nowhere else to go.
   */
  several: boolean;
  /**
   * A request budget shared with other processes (workers of one queue against one key): each
   * request waits for it as well as for the limiter.
   */
  budget?: RequestBudget | undefined;
  /**
   * Told when it is taken out (with why), when it answers again, when it is out for good, and
   * when it is asked for another id of the model's family (the reason names the one refused).
   */
  onChange?: (
    endpoint: Endpoint,
    change: "down" | "up" | "retired" | "model",
    reason: string,
  ) => void;
}

/**
 * One server of a run: its client, limiter and protocol, and whether it is answering. As a gate it
 * admits nothing while it is out, and then a single request once the wait is over: the probe.
 */
export class Endpoint implements Gate<Slot> {
  readonly label: string;
  readonly baseUrl: string;
  readonly client: ChatClient;
  readonly limiter: AdaptiveLimiter;
  readonly listed: string[] | null;
  readonly budget: RequestBudget | undefined;
  readonly #parts: EndpointParts;
  #model: string;
  #protocol: CaptionProtocol;
  #prompts: ReadonlyMap<string, CaptionProtocol>;
  #olderModels: string[];
  #failures = 0;
  #captioned = false;
  #downUntil: number | null = null;
  #probing = false;
  #retired = false;
  #listener: () => void = () => {};
  /** The run's endpoints, this one among them: the last one up is judged as if alone. */
  peers: readonly Endpoint[] = [];
  /** Why it was taken out, for the message when every endpoint is. */
  lastProblem = "";

  constructor(parts: EndpointParts) {
    this.#parts = parts;
    this.label = parts.label;
    this.baseUrl = parts.baseUrl;
    this.#model = parts.model;
    this.client = parts.client;
    this.limiter = parts.limiter;
    this.#protocol = parts.protocol;
    this.#prompts = parts.promptsFor?.(parts.model) ?? new Map();
    this.#olderModels = [...(parts.olderModels?.ids ?? [])];
    this.listed = parts.listed;
    this.budget = parts.budget;
  }

  /** Ids of the model's family this server said do not exist, before the one asked for now. */
  readonly refusedModels: string[] = [];

  /** The model id it is asked for now. */
  get model(): string {
    return this.#model;
  }

  /** How its requests are built and its replies read, for the model asked for now. */
  get protocol(): CaptionProtocol {
    return this.#protocol;
  }

  /** The protocol of one of several prompts, or the run's one prompt's. */
  protocolOf(prompt: string | undefined): CaptionProtocol {
    return (prompt === undefined ? undefined : this.#prompts.get(prompt)) ?? this.#protocol;
  }

  /**
   * The server said `refused` does not exist: asks for the family's next older id instead. True
   * when there is one to try now (or another request already moved on from `refused`); false
   * when none is left, or when it has answered a caption as it is (then that model was right).
   */
  tryOlderModel(refused: string): boolean {
    if (refused !== this.#model) return true;
    if (this.#captioned) return false;
    const next = this.#olderModels.shift();
    const build = this.#parts.olderModels?.protocolFor;
    if (next === undefined || build === undefined) return false;
    this.refusedModels.push(refused);
    this.#model = next;
    this.#protocol = build(next);
    this.#prompts = this.#parts.promptsFor?.(next) ?? this.#prompts;
    this.#parts.onChange?.(this, "model", refused);
    return true;
  }

  /** Taken out: not answering and waiting for its next try, or out for good. */
  get down(): boolean {
    return this.#downUntil !== null || this.#retired;
  }

  /** Out for the rest of the run: its key, model or route is wrong. */
  get retired(): boolean {
    return this.#retired;
  }

  /** Whether it has answered any request of this run with a caption. */
  get everSucceeded(): boolean {
    return this.#captioned;
  }

  readyAt(now: number): number {
    if (this.#retired) return Number.POSITIVE_INFINITY;
    if (this.#downUntil !== null) {
      if (this.#probing) return Number.POSITIVE_INFINITY;
      return Math.max(this.#downUntil, this.limiter.readyAt(now));
    }
    return this.limiter.readyAt(now);
  }

  start(now: number): Slot {
    if (this.#downUntil !== null) this.#probing = true;
    return this.limiter.start(now);
  }

  load(): number {
    return this.limiter.load();
  }

  capacity(): number {
    // Out, it seats nothing but the image its probe will carry.
    if (this.#retired) return 0;
    return this.#downUntil === null ? this.limiter.capacity() : 1;
  }

  listen(listener: () => void): void {
    this.#listener = listener;
    this.limiter.listen(listener);
  }

  /** Back in, untried: the others are out for good, so this one is now judged as if alone. */
  revive(): void {
    if (this.#retired || this.#downUntil === null) return;
    this.#downUntil = null;
    this.#probing = false;
    this.#failures = 0;
    this.#listener();
  }

  /** A reply came (any status): the server is there. */
  reachable(): void {
    this.#failures = 0;
    if (this.#downUntil === null) return;
    this.#downUntil = null;
    this.#probing = false;
    this.#parts.onChange?.(this, "up", "");
    this.#listener();
  }

  /** The code of the error that retired it, or null. */
  retiredFor: string | null = null;

  /** Leaves it out for the rest of the run, for a reason no retry changes. */
  retire(reason: string, code: string): void {
    if (this.#retired) return;
    this.#retired = true;
    this.retiredFor = code;
    this.lastProblem = reason;
    this.#parts.onChange?.(this, "retired", reason);
    this.#listener();
  }

  /** A caption came back: its base URL, key and model are right. */
  succeeded(): void {
    this.#captioned = true;
  }

  /** A request got no reply at all. True when that takes the endpoint out. */
  noReply(error: unknown): boolean {
    const refused = error instanceof ConnectionError && error.refused;
    const alone = !this.#parts.several || !this.peers.some((peer) => peer !== this && !peer.down);
    if (alone) {
      // Alone, only a refused connection says the server is gone; a reset or a timeout says it
      // is there but struggling, and is retried like any other transient failure.
      // A probe that failed short of that leaves it in, to be retried like any request.
      const keep = () => {
        if (this.#downUntil !== null) {
          this.#downUntil = null;
          this.#probing = false;
          this.#listener();
        }
        return false;
      };
      if (!refused) {
        this.#failures = 0;
        return keep();
      }
      this.#failures += 1;
      if (this.#failures < aloneThreshold(this.limiter.capacity())) return keep();
    } else {
      this.#failures += 1;
      if (!refused && !this.#probing && this.#failures < SILENT_IN_A_ROW) return false;
    }
    this.#takeOut(error instanceof Error ? error.message : String(error));
    return true;
  }

  #takeOut(reason: string): void {
    const wasUp = this.#downUntil === null;
    this.#downUntil = performance.now() + RETRY_DOWN_MS;
    this.#probing = false;
    this.lastProblem = reason;
    if (wasUp) this.#parts.onChange?.(this, "down", reason);
    this.#listener();
  }
}

/**
 * Refused connections in a row that end a run with one endpoint. A dead server shows up as every
 * request in flight failing to connect, and again on its retry; a flaky one does not. The bound
 * on what is in flight is the limiter's allowance as it is now, which under `-c auto` moves; when
 * fewer are in flight, an image out of retries ends the run first.
 */
function aloneThreshold(allowed: number): number {
  return Math.max(10, 2 * allowed);
}
