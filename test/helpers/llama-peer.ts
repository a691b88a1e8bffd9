import { type ChildProcess, spawn } from "node:child_process";
import { readFile } from "node:fs/promises";
import { createServer } from "node:net";
import { fileURLToPath } from "node:url";

/** The real llama.cpp server beside the project (../shared/peers/llama), or where LLAMA_PEER says. */
export const LLAMA_PEER =
  process.env.LLAMA_PEER ??
  fileURLToPath(new URL("../../../shared/peers/llama/start.sh", import.meta.url));

/** A loopback port nobody listens on right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => resolve(typeof address === "object" && address ? address.port : 0));
    });
  });
}

/**
 * The peer with its MiniCPM-V pair on a free loopback port, at start.sh's defaults (4 slots
 * sharing one KV cache of 4096 tokens), its output in `log`; resolves once it answers /health.
 */
export async function startLlamaPeer(
  log: string,
): Promise<{ server: ChildProcess; baseUrl: string }> {
  const port = await freePort();
  const server = spawn("bash", ["-c", `exec "$0" minicpmv ${port} > "${log}" 2>&1`, LLAMA_PEER], {
    stdio: "ignore",
  });
  for (let waited = 0; waited < 60_000; waited += 200) {
    const healthy = await fetch(`http://127.0.0.1:${port}/health`)
      .then((reply) => reply.ok)
      .catch(() => false);
    if (healthy) return { server, baseUrl: `http://127.0.0.1:${port}/v1` };
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  server.kill("SIGTERM");
  throw new Error(`llama-server did not come up: ${await readFile(log, "utf8").catch(() => "")}`);
}
