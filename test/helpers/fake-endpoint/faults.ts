/**
 * What an admitted chat request gets: the next scripted behaviour, else what `respond()` says,
 * else a random fault (seeded, so a run can be repeated), else a caption.
 */
import { errorEnvelope } from "./http.js";
import type { FakeEndpointOptions } from "./options.js";
import type { Behavior, FaultKind, Plan, RecordedRequest } from "./types.js";

export const ALL_FAULTS: readonly FaultKind[] = [
  "429",
  "500",
  "503",
  "reset",
  "hang",
  "malformed",
  "html502",
  "empty-choices",
];
// A hang would stall a benchmark until the client's own timeout, so it is opt-in only.
export const DEFAULT_FAULTS: readonly FaultKind[] = ALL_FAULTS.filter((f) => f !== "hang");

/** mulberry32: tiny, fast, and good enough to make fault sequences reproducible from a seed. */
export function createPrng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A fault as the behaviour that plays it; 429 and 503 carry `retryAfter` as Retry-After. */
export function faultBehavior(fault: FaultKind, retryAfter: string): Behavior {
  switch (fault) {
    case "429":
      return {
        kind: "status",
        status: 429,
        body: errorEnvelope("Rate limit reached for requests", "requests", "rate_limit_exceeded"),
        headers: { "retry-after": retryAfter },
      };
    case "500":
      return {
        kind: "status",
        status: 500,
        body: errorEnvelope(
          "The server had an error while processing your request.",
          "server_error",
        ),
      };
    case "503":
      return {
        kind: "status",
        status: 503,
        body: errorEnvelope(
          "The engine is currently overloaded, please try again later.",
          "server_error",
        ),
        headers: { "retry-after": retryAfter },
      };
    default:
      return { kind: fault };
  }
}

/** An error answer that is no fault but the server's verdict on the request (401, 400, 404…). */
export function statusPlan(status: number, body: object): Plan {
  return { label: "status", behavior: { kind: "status", status, body } };
}

/** Plans each admitted request in turn; `random` is the fake's one seeded source. */
export function createPlanner(
  options: FakeEndpointOptions,
  random: () => number,
): (record: RecordedRequest) => Plan {
  const faultRate = options.faultRate ?? 0;
  const faults = [...(options.faults ?? DEFAULT_FAULTS)];
  const script = [...(options.script ?? [])];
  const retryAfter = options.retryAfter ?? "0";
  let scriptPosition = 0;
  return (record) => {
    const scripted = script[scriptPosition];
    if (scripted !== undefined) {
      scriptPosition++;
      return { label: scripted.kind, behavior: scripted };
    }
    // An explicit answer from respond() wins over random noise.
    const responded = options.respond?.(record);
    if (responded !== undefined) return { label: responded.kind, behavior: responded };
    if (faultRate > 0 && faults.length > 0 && random() < faultRate) {
      const fault = faults[Math.floor(random() * faults.length)];
      if (fault !== undefined) return { label: fault, behavior: faultBehavior(fault, retryAfter) };
    }
    return { label: "ok", behavior: { kind: "ok" } };
  };
}
