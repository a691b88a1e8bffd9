import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { ConnectionError, TimeoutError } from "../../src/errors.js";
import type { ChatClient } from "../../src/send/client.js";
import { Dispatcher } from "../../src/send/dispatch.js";
import { Endpoint, RETRY_DOWN_MS } from "../../src/send/endpoint.js";
import { endpointLabels } from "../../src/send/endpoint-labels.js";
import { AdaptiveLimiter } from "../../src/send/limiter.js";
import type { CaptionProtocol } from "../../src/send/request.js";
import type { Slot } from "../../src/send/slot.js";

beforeEach(() => {
  vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "performance"] });
});
afterEach(() => {
  vi.useRealTimers();
});

function endpoint(label: string, concurrency: number, changes: string[] = []): Endpoint {
  return new Endpoint({
    label,
    baseUrl: `http://${label}/v1`,
    model: "m",
    client: {} as ChatClient,
    limiter: new AdaptiveLimiter({ concurrency }),
    protocol: {} as CaptionProtocol,
    listed: null,
    several: true,
    onChange: (_endpoint, change, reason) =>
      changes.push(change === "up" ? `${label} up` : `${label} ${change}: ${reason}`),
  });
}

const refused = () => new ConnectionError("ECONNREFUSED", true, { errno: "ECONNREFUSED" });

describe("Dispatcher over endpoints", () => {
  it("gives each request to the least loaded endpoint with a free slot, and waits when none has", async () => {
    const a = endpoint("a:1", 2);
    const b = endpoint("b:1", 1);
    const dispatcher = new Dispatcher<Slot, Endpoint>([a, b]);
    const got: { gate: Endpoint; slot: Slot }[] = [];
    for (let i = 0; i < 4; i += 1) void dispatcher.acquire().then((x) => x && got.push(x));
    await vi.advanceTimersByTimeAsync(0);
    expect(got.map((x) => x.gate.label).sort()).toEqual(["a:1", "a:1", "b:1"]);
    got.find((x) => x.gate === b)?.slot.done();
    await vi.advanceTimersByTimeAsync(0);
    expect(got.map((x) => x.gate.label).sort()).toEqual(["a:1", "a:1", "b:1", "b:1"]);
  });

  it("seats as many images as the endpoints let in flight", async () => {
    const dispatcher = new Dispatcher<Slot, Endpoint>([endpoint("a:1", 2), endpoint("b:1", 3)]);
    const seats: (() => void)[] = [];
    for (let i = 0; i < 7; i += 1) void dispatcher.seat().then((seat) => seat && seats.push(seat));
    await vi.advanceTimersByTimeAsync(0);
    expect(seats).toHaveLength(5);
    seats[0]?.();
    seats[0]?.();
    await vi.advanceTimersByTimeAsync(0);
    expect(seats).toHaveLength(6);
  });

  it("leaves out an endpoint that refuses, probes it with one request after the wait, and takes it back", async () => {
    const changes: string[] = [];
    const a = endpoint("a:1", 4, changes);
    const b = endpoint("b:1", 4, changes);
    a.peers = b.peers = [a, b];
    const dispatcher = new Dispatcher<Slot, Endpoint>([a, b]);
    expect(a.noReply(refused())).toBe(true);
    expect(a.down).toBe(true);
    expect(changes).toEqual(["a:1 down: ECONNREFUSED"]);
    const got: Endpoint[] = [];
    for (let i = 0; i < 3; i += 1) void dispatcher.acquire().then((x) => x && got.push(x.gate));
    await vi.advanceTimersByTimeAsync(0);
    expect(got.map((gate) => gate.label)).toEqual(["b:1", "b:1", "b:1"]);

    // After the wait exactly one request tries it again, however many are waiting.
    const later: Endpoint[] = [];
    const five = Array.from({ length: 5 }, () =>
      dispatcher.acquire().then((x) => x && later.push(x.gate)),
    );
    await vi.advanceTimersByTimeAsync(RETRY_DOWN_MS);
    expect(later.filter((gate) => gate === a)).toHaveLength(1);
    // The probe is answered: the endpoint is back and takes its share again.
    a.reachable();
    expect(changes.at(-1)).toBe("a:1 up");
    await Promise.all(five);
    expect(later.filter((gate) => gate === a).length).toBeGreaterThan(1);
  });

  it("judges the last endpoint up as if it were alone: many refusals, not one", () => {
    const a = endpoint("a:1", 4);
    const b = endpoint("b:1", 4);
    a.peers = b.peers = [a, b];
    expect(a.noReply(refused())).toBe(true);
    for (let i = 1; i < 10; i += 1) expect(b.noReply(refused())).toBe(false);
    expect(b.noReply(refused())).toBe(true);
  });

  it("ends a lone endpoint after twice its allowance in refusals, the allowance as it is now", () => {
    const limiter = new AdaptiveLimiter({ concurrency: 40 });
    const lone = new Endpoint({
      label: "a:1",
      baseUrl: "http://a:1/v1",
      model: "m",
      client: {} as ChatClient,
      limiter,
      protocol: {} as CaptionProtocol,
      listed: null,
      several: false,
    });
    lone.peers = [lone];
    // A 503 halves what may be in flight, and so what a dead server would have refused.
    limiter.start(performance.now()).congested(0, false);
    const allowed = limiter.capacity();
    expect(allowed).toBe(20);
    for (let i = 1; i < 2 * allowed; i += 1) expect(lone.noReply(refused())).toBe(false);
    expect(lone.noReply(refused())).toBe(true);
  });

  it("leaves out for good an endpoint whose setting is wrong, seating nothing for it", async () => {
    const changes: string[] = [];
    const a = endpoint("a:1", 4, changes);
    const b = endpoint("b:1", 4, changes);
    const dispatcher = new Dispatcher<Slot, Endpoint>([a, b]);
    a.retire("HTTP 401: bad key", "auth_failed");
    expect([a.down, a.retired, a.capacity()]).toEqual([true, true, 0]);
    expect(changes).toEqual(["a:1 retired: HTTP 401: bad key"]);
    const got: Endpoint[] = [];
    for (let i = 0; i < 3; i += 1) void dispatcher.acquire().then((x) => x && got.push(x.gate));
    await vi.advanceTimersByTimeAsync(RETRY_DOWN_MS * 2);
    expect(got.every((gate) => gate === b)).toBe(true);
  });

  it("a probe that fails short of the lone rule leaves the last endpoint in, not stuck out", async () => {
    const a = endpoint("a:1", 2);
    const b = endpoint("b:1", 2);
    a.peers = b.peers = [a, b];
    expect(a.noReply(refused())).toBe(true);
    b.retire("HTTP 401", "auth_failed");
    // With b out for good, a is the last one: judged as if alone from here.
    a.revive();
    expect(a.down).toBe(false);
    const dispatcher = new Dispatcher<Slot, Endpoint>([a, b]);
    const got: Endpoint[] = [];
    void dispatcher.acquire().then((x) => x && got.push(x.gate));
    await vi.advanceTimersByTimeAsync(0);
    expect(got).toEqual([a]);
    expect(a.noReply(refused())).toBe(false);
    expect(a.down).toBe(false);
  });

  it("takes an endpoint out after three requests in a row without a reply, not after one", () => {
    const a = endpoint("a:1", 4);
    a.peers = [a, endpoint("b:1", 4)];
    const timeout = new TimeoutError("timeout", "no reply");
    expect(a.noReply(timeout)).toBe(false);
    expect(a.noReply(timeout)).toBe(false);
    a.reachable();
    expect(a.noReply(timeout)).toBe(false);
    expect(a.noReply(timeout)).toBe(false);
    expect(a.noReply(timeout)).toBe(true);
  });

  it("names endpoints by host and port, by path too when those are shared", () => {
    expect(
      endpointLabels([
        "https://api.modelbest.cn/v1",
        "http://gpu1:8000/v1",
        "http://gw:80/a/v1",
        "http://gw/b/v1",
      ]),
    ).toEqual(["api.modelbest.cn:443", "gpu1:8000", "gw:80/a/v1", "gw:80/b/v1"]);
  });
});
