import { existsSync } from "node:fs";
import { afterAll, describe, expect, it } from "vitest";
import { useFakeEndpoint } from "./fake-endpoint/use.js";
import type { FakeEndpoint } from "./fake-endpoint.js";
import { useWorkspace } from "./workspace.js";

/** GET /models of `fake`, or the error fetch gave. */
const listModels = (baseUrl: string) =>
  fetch(`${baseUrl}/models`).then(
    (reply) => reply.status,
    (error: unknown) => error,
  );

// The tests of each describe run in order: a later one checks what the hooks did after an earlier.
describe("useWorkspace and useFakeEndpoint(options)", () => {
  const ws = useWorkspace();
  const fake = useFakeEndpoint({ apiKey: "sk-use" });
  let first: { dir: string; baseUrl: string; endpoint: FakeEndpoint | null } | null = null;

  it("give each test a folder and a started fake with the options", async () => {
    expect(existsSync(ws.dir)).toBe(true);
    expect(fake.baseUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/v1$/);
    expect(await listModels(fake.baseUrl)).toBe(401);
    expect(fake.modelListings).toBe(1);
    first = { dir: ws.dir, baseUrl: fake.baseUrl, endpoint: fake.current };
  });

  it("remove the folder and close the fake after the test, and start anew", async () => {
    expect(first).not.toBeNull();
    expect(existsSync(first?.dir ?? "")).toBe(false);
    expect(await listModels(first?.baseUrl ?? "")).toBeInstanceOf(Error);
    expect(ws.dir).not.toBe(first?.dir);
    expect(fake.current).not.toBe(first?.endpoint);
    expect(fake.modelListings).toBe(0);
  });

  it("start() replaces the fake, closing the one before", async () => {
    const before = fake.baseUrl;
    const replaced = await fake.start({ models: [{ id: "other" }] });
    expect(fake.current).toBe(replaced);
    expect(fake.baseUrl).toBe(replaced.baseUrl);
    expect(await listModels(before)).toBeInstanceOf(Error);
    expect(await listModels(fake.baseUrl)).toBe(200);
  });
});

describe('useFakeEndpoint("manual")', () => {
  const fake = useFakeEndpoint("manual");
  let started: FakeEndpoint[] = [];

  it("starts nothing until the test does, and reads as the fake it started", async () => {
    expect(fake.current).toBeNull();
    expect(() => fake.baseUrl).toThrow(/no fake endpoint is started/);
    await expect(fake.close()).resolves.toBeUndefined();
    const main = await fake.start();
    const other = await fake.startAnother({ latencyMs: 1 });
    expect(fake.current).toBe(main);
    expect(fake.port).toBe(main.port);
    expect(other.port).not.toBe(main.port);
    await fetch(`${fake.baseUrl}/nowhere`);
    expect(fake.requests).toHaveLength(1);
    fake.resetStats();
    expect(main.requests).toHaveLength(0);
    started = [main, other];
  });

  it("closed every fake the test started, and begins the next with none", async () => {
    expect(fake.current).toBeNull();
    for (const endpoint of started) {
      expect(await listModels(endpoint.baseUrl)).toBeInstanceOf(Error);
    }
  });
});

describe('useWorkspace({ scope: "all" }) and useFakeEndpoint(options, "all")', () => {
  const ws = useWorkspace({ scope: "all", prefix: "caption-use-" });
  const fake = useFakeEndpoint({}, "all");
  const seen: { dir: string; port: number }[] = [];

  afterAll(() => {
    // Runs before the helpers' own afterAll (registered earlier): both are still there.
    expect(existsSync(ws.dir)).toBe(true);
  });

  it.each([1, 2])("share one folder and one fake across tests (%i)", (n) => {
    seen.push({ dir: ws.dir, port: fake.port });
    expect(ws.dir).toMatch(/caption-use-/);
    if (n === 2) expect(seen[1]).toEqual(seen[0]);
  });
});
