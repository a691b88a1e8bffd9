import { describe, expect, it } from "vitest";
import {
  AuthError,
  BadRequestError,
  ConnectionError,
  EmptyCaptionError,
  errorFromStatus,
  ImageError,
  InvalidJsonError,
  InvalidResponseError,
  RateLimitError,
  RetryableStatusError,
  ServerError,
  TimeoutError,
} from "../../src/errors.js";
import {
  MAX_RETRY_AFTER_MS,
  retryDelay,
  serverRequestedDelay,
  shouldRetry,
} from "../../src/send/retry.js";

const noHeaders = new Headers();

describe("errorFromStatus", () => {
  it.each([
    [400, BadRequestError],
    [401, AuthError],
    [403, AuthError],
    [404, BadRequestError],
    [408, RetryableStatusError],
    [409, RetryableStatusError],
    [413, BadRequestError],
    [422, BadRequestError],
    [429, RateLimitError],
    [500, ServerError],
    [502, ServerError],
    [503, ServerError],
  ])("maps HTTP %i to %o", (status, kind) => {
    const error = errorFromStatus(status, "boom", noHeaders);
    expect(error).toBeInstanceOf(kind);
    expect(error.status).toBe(status);
    expect(error.message).toContain("boom");
  });

  it("says the key was rejected without knowing the key", () => {
    expect(errorFromStatus(401, "", noHeaders).message).toMatch(/rejected the API key/);
  });
});

describe("shouldRetry", () => {
  it.each([
    ["429", errorFromStatus(429, "", noHeaders), true],
    ["500", errorFromStatus(500, "", noHeaders), true],
    ["503", errorFromStatus(503, "", noHeaders), true],
    ["408", errorFromStatus(408, "", noHeaders), true],
    ["409", errorFromStatus(409, "", noHeaders), true],
    ["400", errorFromStatus(400, "", noHeaders), false],
    ["401", errorFromStatus(401, "", noHeaders), false],
    ["404", errorFromStatus(404, "", noHeaders), false],
    ["connection refused", new ConnectionError("x", true), true],
    ["connection reset", new ConnectionError("x", false), true],
    ["timeout", new TimeoutError("timeout", "x"), true],
    ["not JSON", new InvalidResponseError("invalid_response", "x"), true],
    // Asked again once, with a penalty, by the sender rather than by the retry loop.
    ["empty caption", new EmptyCaptionError("x", false), false],
    ["invalid JSON answer", new InvalidJsonError("x"), true],
    ["out of tokens thinking", new EmptyCaptionError("x", true), false],
    ["image error", new ImageError("corrupt_image", "x"), false],
    ["plain error", new Error("x"), false],
  ])("%s → %s", (_name, error, expected) => {
    expect(shouldRetry(error)).toBe(expected);
  });

  it("obeys x-should-retry either way", () => {
    const forced = errorFromStatus(400, "", new Headers({ "x-should-retry": "true" }));
    const vetoed = errorFromStatus(503, "", new Headers({ "x-should-retry": "false" }));
    expect(shouldRetry(forced)).toBe(true);
    expect(shouldRetry(vetoed)).toBe(false);
  });
});

describe("retry delays", () => {
  const now = Date.parse("2026-11-25T12:00:00Z");

  it("prefers retry-after-ms, then retry-after seconds, then an HTTP date", () => {
    expect(
      serverRequestedDelay(new Headers({ "retry-after-ms": "250", "retry-after": "9" }), now),
    ).toBe(250);
    expect(serverRequestedDelay(new Headers({ "retry-after": "2" }), now)).toBe(2000);
    expect(serverRequestedDelay(new Headers({ "retry-after": "1.5" }), now)).toBe(1500);
    expect(
      serverRequestedDelay(new Headers({ "retry-after": "Wed, 25 Nov 2026 12:00:07 GMT" }), now),
    ).toBe(7000);
    expect(serverRequestedDelay(new Headers({ "retry-after": "soon" }), now)).toBeNull();
    expect(serverRequestedDelay(noHeaders, now)).toBeNull();
  });

  it("uses the server's wait, capped", () => {
    const asked = errorFromStatus(429, "", new Headers({ "retry-after": "3" }));
    expect(retryDelay(1, asked, () => 0.5)).toBe(3000);
    const greedy = errorFromStatus(429, "", new Headers({ "retry-after": "86400" }));
    expect(retryDelay(1, greedy)).toBe(MAX_RETRY_AFTER_MS);
  });

  it("backs off exponentially from 0.5 s to 8 s with up to 25 % jitter", () => {
    const error = errorFromStatus(500, "", noHeaders);
    expect([1, 2, 3, 4, 5, 6, 9].map((n) => retryDelay(n, error, () => 0))).toEqual([
      500, 1000, 2000, 4000, 8000, 8000, 8000,
    ]);
    expect(retryDelay(1, error, () => 1)).toBe(375);
    expect(retryDelay(5, error, () => 0.999)).toBeGreaterThanOrEqual(6000);
  });
});
