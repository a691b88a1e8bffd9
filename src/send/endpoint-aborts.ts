import {
  type ApiError,
  AuthError,
  ConnectionError,
  EndpointNotFoundError,
  RunAbortedError,
} from "../errors.js";
import type { Endpoint } from "./endpoint.js";
import { saysModelMissing } from "./models.js";
import type { SendContext, SendOutcome } from "./send-context.js";

/** Why no retry at this endpoint can succeed (a wrong host, route, key or model), or null. */
export function settingWrong(
  error: unknown,
  endpoint: Endpoint,
  context: SendContext,
): RunAbortedError | null {
  if (error instanceof ConnectionError && error.unknownHost) {
    return endpointWrong(error);
  }
  // A wrong model id would fail every image one by one.
  if (saysModelMissing(error) && !endpoint.everSucceeded) {
    return context.modelMissing(error as ApiError, endpoint);
  }
  if (error instanceof EndpointNotFoundError && !endpoint.everSucceeded) {
    return endpointWrong(error);
  }
  if (error instanceof AuthError) {
    return new RunAbortedError(error.code, error.message, { cause: error });
  }
  return null;
}

export function unreachable(
  error: ApiError,
  attempt: number,
  label: string,
  breaker: boolean,
  context: SendContext,
  endpoints: readonly Endpoint[],
): RunAbortedError {
  if (endpoints.length > 1) {
    const each = endpoints.map(
      (endpoint) => `${endpoint.label}: ${endpoint.lastProblem || error.message}`,
    );
    return new RunAbortedError(
      "endpoint_unreachable",
      `every endpoint stopped answering (${each.join("; ")}); check that the servers are up, then rerun to resume`,
      { cause: error },
    );
  }
  const where = breaker
    ? "many requests in a row failed to connect"
    : `after ${attempt} ${attempt === 1 ? "attempt" : "attempts"} on ${label}`;
  return new RunAbortedError(
    "endpoint_unreachable",
    `${error.message} (${where}); check ${context.nameSetting("baseUrl")} and that the server is up, then rerun to resume`,
    { cause: error },
  );
}

/** Alone, this ends the run; among several, the endpoint's label is put before it where shown. */
function endpointWrong(error: ApiError): RunAbortedError {
  return new RunAbortedError("endpoint_wrong", `${error.message}; nothing was captioned`, {
    cause: error,
  });
}

/**
 * A setting wrong at one endpoint (`settingWrong`): alone, the run stops; with others, that one is
 * left out and the image goes to them at once (null). When none is left, the run stops, for the
 * one reason they share or for having none left.
 */
export function leaveOut(
  wrong: RunAbortedError,
  endpoint: Endpoint,
  endpoints: readonly Endpoint[],
  error: unknown,
): SendOutcome | null {
  if (endpoints.length === 1) return { kind: "unfinished", abort: wrong };
  endpoint.retire(wrong.message, wrong.code);
  if (endpoints.every((gate) => gate.retired)) {
    const each = endpoints.map((gate) => `${gate.label}: ${gate.lastProblem}`);
    const codes = new Set(endpoints.map((gate) => gate.retiredFor));
    const code = codes.size === 1 ? wrong.code : "no_endpoint_left";
    return {
      kind: "unfinished",
      abort: new RunAbortedError(
        code,
        `no endpoint is left (${each.join("; ")}); nothing more was sent`,
        { cause: error },
      ),
    };
  }
  // The endpoints left are merely down: the last ones are judged as if alone, at once.
  if (endpoints.every((gate) => gate.down)) {
    for (const gate of endpoints) gate.revive();
  }
  return null;
}
