import { CONNECT_TIMEOUT } from "./http-transport.js";

export function hostOf(url: string): string {
  try {
    return new URL(url).hostname;
  } catch {
    return url;
  }
}

export function originOf(url: string): string {
  try {
    return new URL(url).origin;
  } catch {
    return url;
  }
}

/** Errors that mean no connection was made at all. */
export const REFUSED_CODES = new Set([
  "ECONNREFUSED",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "EADDRNOTAVAIL",
  "UND_ERR_CONNECT_TIMEOUT",
  CONNECT_TIMEOUT,
]);

/** The errno-style code behind a fetch failure, looking through undici's wrapping. */
export function networkCode(error: unknown): string | null {
  let current: unknown = error;
  for (let depth = 0; depth < 4 && current instanceof Error; depth += 1) {
    const code = (current as NodeJS.ErrnoException).code;
    if (typeof code === "string") return code;
    // Happy-eyeballs connects to several addresses and reports an AggregateError of them all.
    if (current instanceof AggregateError) current = current.errors[0];
    else current = current.cause;
  }
  return null;
}

export function describeNetworkError(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  // fetch wraps the system's error in a TypeError; node:http throws it as it is.
  const cause = error.cause instanceof Error ? error.cause : error;
  // A system error's code is a name (ECONNREFUSED); a DOMException's is a number, and means nothing.
  const code = (cause as NodeJS.ErrnoException).code;
  return typeof code === "string" && code ? `${code} (${cause.message})` : cause.message;
}
