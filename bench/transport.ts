/**
 * `npx tsx bench/transport.ts`: main-thread CPU per request of the client over node:http (what a
 * run uses) against the same client over `fetch`, at -c 128 with 12 KB bodies and a 500 ms
 * endpoint. The fake endpoint runs in a process of its own so that its CPU is not counted.
 */
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { createClient } from "../src/send/client.js";

const FAKE = fileURLToPath(new URL("../test/helpers/fake-endpoint.ts", import.meta.url));
const REQUESTS = 1600;
const CONCURRENCY = 128;

const fake = spawn(process.execPath, ["--import", "tsx", FAKE, "--latency", "500"], {
  stdio: ["ignore", "pipe", "inherit"],
});
const baseUrl = await new Promise<string>((resolve) => {
  fake.stdout?.once("data", (chunk: Buffer) => resolve(chunk.toString().trim()));
});
const request = {
  model: "MiniCPM-V-4.6-Instruct",
  messages: [{ role: "user", content: [{ type: "text", text: "x".repeat(12_000) }] }],
};

async function cpuPerRequest(viaFetch: boolean): Promise<number> {
  const client = createClient({
    baseUrl,
    timeoutMs: 60_000,
    ...(viaFetch ? { fetch: (url: string, init: RequestInit) => fetch(url, init) } : {}),
  });
  const body = new TextEncoder().encode(JSON.stringify(request));
  // Warm up: connections opened, code paths compiled.
  await Promise.all(Array.from({ length: CONCURRENCY }, () => client.chat(body)));
  const before = process.cpuUsage();
  let sent = 0;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (sent < REQUESTS) {
        sent += 1;
        await client.chat(body);
      }
    }),
  );
  const used = process.cpuUsage(before);
  return (used.user + used.system) / REQUESTS / 1000;
}

try {
  for (const round of [1, 2]) {
    const http = await cpuPerRequest(false);
    const viaFetch = await cpuPerRequest(true);
    process.stdout.write(
      `round ${round}: node:http ${http.toFixed(2)} ms, fetch ${viaFetch.toFixed(2)} ms of CPU per request (fetch ÷ node:http ${(viaFetch / http).toFixed(2)})\n`,
    );
  }
} finally {
  fake.kill("SIGTERM");
}
