import type { ConcurrencyCause } from "../send/limiter-options.js";

/** The line -v shows; the climb back after an overload, one step a round trip, is JSON's only. */
export function concurrencyLine(allowed: number, cause: ConcurrencyCause): string | null {
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
