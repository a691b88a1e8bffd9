/**
 * The fake as a standalone server, for trying the CLI by hand and for the bench:
 * `npx tsx test/helpers/fake-endpoint.ts --port 8080 --fault-rate 0.3` (`--no-video` to refuse
 * video_url parts as llama-server does). Prints its base URL, and closes on SIGINT or SIGTERM.
 */
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { parseRevision } from "../guide-revisions.js";
import type { VideoLimits } from "./options.js";
import { startFakeEndpoint } from "./server.js";

/** Whether the module at `moduleUrl` is the script node was started with. */
export function isEntryPoint(moduleUrl: string): boolean {
  const entry = process.argv[1];
  return entry !== undefined && moduleUrl === pathToFileURL(entry).href;
}

/** Runs the server from the command line; a bad flag ends the process with exit 2. */
export function runFromCommandLine(): void {
  main().catch((error: unknown) => {
    process.stderr.write(
      `fake-endpoint: ${error instanceof Error ? error.message : String(error)}\n`,
    );
    process.exit(2);
  });
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      port: { type: "string", default: "0" },
      latency: { type: "string", default: "0" },
      "fault-rate": { type: "string", default: "0" },
      "api-key": { type: "string" },
      rate: { type: "string" },
      seed: { type: "string", default: "1" },
      "response-format": { type: "string", default: "honour" },
      "invalid-json-rate": { type: "string", default: "0" },
      degenerate: { type: "string" },
      batch: { type: "string" },
      slowdown: { type: "string" },
      revision: { type: "string" },
      context: { type: "string" },
      "context-server": { type: "string", default: "llama" },
      // llama-server's refusal of video_url parts, for trying the client against one.
      "no-video": { type: "boolean", default: false },
      "video-max-short-side": { type: "string" },
      "video-max-fps": { type: "string" },
      "video-max-seconds": { type: "string" },
      "video-max-bytes": { type: "string" },
    },
    strict: true,
  });
  const port = parseNumber("--port", values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new RangeError(`--port must be an integer in 0..65535, got ${values.port}`);
  }
  const videoLimits: VideoLimits = {
    ...optionalNumber("maxShortSide", "--video-max-short-side", values["video-max-short-side"]),
    ...optionalNumber("maxFps", "--video-max-fps", values["video-max-fps"]),
    ...optionalNumber("maxSeconds", "--video-max-seconds", values["video-max-seconds"]),
    ...optionalNumber("maxBytes", "--video-max-bytes", values["video-max-bytes"]),
  };
  const endpoint = await startFakeEndpoint({
    port,
    video: !values["no-video"],
    ...(Object.keys(videoLimits).length === 0 ? {} : { videoLimits }),
    latencyMs: parseNumber("--latency", values.latency),
    faultRate: parseNumber("--fault-rate", values["fault-rate"]),
    seed: parseNumber("--seed", values.seed),
    responseFormat: oneOf("--response-format", values["response-format"], [
      "honour",
      "ignore",
      "reject",
    ] as const),
    invalidJsonRate: parseNumber("--invalid-json-rate", values["invalid-json-rate"]),
    ...(values.degenerate === undefined
      ? {}
      : { degenerate: oneOf("--degenerate", values.degenerate, ["loop", "refusal"] as const) }),
    ...(values["api-key"] === undefined ? {} : { apiKey: values["api-key"] }),
    ...(values.revision === undefined ? {} : { revision: parseRevision(values.revision) }),
    ...(values.batch === undefined ? {} : { batch: parseNumber("--batch", values.batch) }),
    ...(values.slowdown === undefined
      ? {}
      : { slowdown: parseNumber("--slowdown", values.slowdown) }),
    ...(values.rate === undefined
      ? {}
      : { rateLimit: { perSecond: parseNumber("--rate", values.rate) } }),
    ...(values.context === undefined
      ? {}
      : {
          context: {
            tokens: parseNumber("--context", values.context),
            server: oneOf("--context-server", values["context-server"], ["llama", "vllm"] as const),
          },
        }),
  });
  process.stdout.write(`${endpoint.baseUrl}\n`);
  const shutdown = (): void => {
    endpoint.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once("SIGINT", shutdown);
  process.once("SIGTERM", shutdown);
}

function oneOf<T extends string>(flag: string, text: string | undefined, values: readonly T[]): T {
  const found = values.find((value) => value === text);
  if (found === undefined) throw new RangeError(`${flag} must be one of ${values.join(", ")}`);
  return found;
}

/** `{ [key]: number }` for a flag that was given, `{}` for one that was not. */
function optionalNumber<K extends string>(
  key: K,
  flag: string,
  text: string | undefined,
): Partial<Record<K, number>> {
  if (text === undefined) return {};
  const parsed: Partial<Record<K, number>> = {};
  parsed[key] = parseNumber(flag, text);
  return parsed;
}

function parseNumber(flag: string, text: string | undefined): number {
  const value = Number(text);
  if (text === undefined || text.trim() === "" || !Number.isFinite(value)) {
    throw new RangeError(`${flag} must be a number, got ${text}`);
  }
  return value;
}
