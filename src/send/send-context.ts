import type { ExtractedCaption } from "../answer/extract.js";
import type { ApiError, NameSetting, RunAbortedError } from "../errors.js";
import type { Usage } from "../types.js";
import type { ChatReply } from "./client.js";
import type { ContextExceededError } from "./context-overflow.js";
import type { Dispatcher } from "./dispatch.js";
import type { Endpoint } from "./endpoint.js";
import type { Slot } from "./slot.js";

export type SendOutcome =
  | {
      kind: "captioned";
      reply: ChatReply;
      extracted: ExtractedCaption;
      attempts: number;
      endpoint: Endpoint;
    }
  | { kind: "failed"; error: unknown; attempts: number; endpoint: Endpoint }
  /** Ended without a result: the run is stopping, or `abort` says why it must. */
  | { kind: "unfinished"; abort?: RunAbortedError };

export interface SendContext {
  /** The run's endpoints: each attempt goes to whichever can take it soonest. */
  endpoints: Dispatcher<Slot, Endpoint>;
  retries: number;
  /** Once aborted, no new attempt starts and waits end early. */
  stopSignal: AbortSignal;
  /** Cancels requests in flight. */
  abortSignal: AbortSignal;
  /** Told before each wait for another attempt at the request for `label`. */
  onRetry: (label: string, attempt: number, delayMs: number, error: unknown) => void;
  /** How the message of an unreachable endpoint names the base URL. */
  nameSetting: NameSetting;
  /** The run's end when an answer says the model does not exist. */
  modelMissing: (error: ApiError, endpoint: Endpoint) => RunAbortedError;
  /** Told of each image (`label`, its path) that does not fit the endpoint's context even alone. */
  onContextExceeded?:
    | ((error: ContextExceededError, endpoint: Endpoint, label: string) => void)
    | undefined;
  /** Told of each request sent again, at no cost to its attempts, after the server ran out of context. */
  onOverflowRetry?: ((endpoint: Endpoint) => void) | undefined;
  /**
   * Told of the tokens each answer cost, whether it is kept or another variant is asked for
   * instead (a looping caption): the run's totals are what the servers counted.
   */
  onUsage?: ((usage: Usage, endpoint: Endpoint) => void) | undefined;
}
