import { Parser } from "yargs/helpers";
import { AuthError, RunAbortedError, UsageError } from "../errors.js";
import type { FetchLike } from "../send/client.js";
import type { CaptionConfig } from "../settings/caption-config.js";
import { isHostedApi } from "../settings/defaults.js";
import { resolveConfig } from "../settings/resolve.js";
import type { SettingCommand } from "../settings/spec.js";
import { SETTING_KEYS, SETTING_SPECS } from "../settings/table.js";
import { keyFor, TRIAL_KEY_NOTICE, trialKeyRefused } from "../settings/trial-key.js";
import { urlCredentials } from "../util/redact.js";
import type { Reporter } from "./progress.js";

export interface CliContext {
  cwd: string;
  env: NodeJS.ProcessEnv;
  stdout: NodeJS.WritableStream & { isTTY?: boolean };
  stderr: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  /** The HTTP transport; tests of the hosted default inject one so nothing leaves the machine. */
  fetch?: FetchLike;
}

export const defaultContext = (): CliContext => ({
  cwd: process.cwd(),
  env: process.env,
  stdout: process.stdout,
  stderr: process.stderr,
});

/**
 * A command's config; from here on the key it names is masked in everything printed. Every
 * problem (a bad value anywhere, a required setting missing) is reported at once.
 */
export function loadConfig(
  args: Record<string, unknown>,
  context: CliContext,
  reporter: Reporter,
  command: "caption" | "config" | SettingCommand,
): CaptionConfig {
  const flags: Record<string, unknown> = {};
  for (const key of SETTING_KEYS) {
    // Under the name yargs gives it: "--shard-size" → shardSize.
    const value = args[Parser.camelCase(SETTING_SPECS[key].flag.slice(2))];
    if (value !== undefined) flags[key] = value;
  }
  const problems: string[] = [];
  const logFormat = args.logFormat;
  if (logFormat !== undefined && logFormat !== "text" && logFormat !== "json") {
    problems.push(`--log-format: expected one of text, json, got ${JSON.stringify(logFormat)}`);
  }
  let config: CaptionConfig | null = null;
  try {
    config = resolveConfig({
      flags,
      env: context.env,
      cwd: context.cwd,
      configFile: typeof args.config === "string" ? args.config : undefined,
      command,
    });
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    problems.push(...error.problems);
  }
  if (problems.length > 0 || !config) throw new UsageError(problems);
  reporter.setSecret(config.apiKey);
  const urls = [config.baseUrl, ...(config.endpoints ?? []).map((each) => each.baseUrl)];
  if (config.values.redis) urls.push(config.values.redis);
  for (const url of urls) {
    for (const credential of urlCredentials(url)) reporter.setSecret(credential);
  }
  return config;
}

/** The key to send, announcing the shared trial key when that is the one. */
export function chooseKey(config: CaptionConfig, reporter: Reporter, env: NodeJS.ProcessEnv) {
  const key = keyFor(config.baseUrl, config.apiKey);
  // Each of several endpoints gets its own key, or the run's; the trial key only the hosted API.
  const { sharedKey } = config;
  const keys = (config.endpoints ?? []).map((endpoint) =>
    keyFor(
      endpoint.baseUrl,
      endpoint.apiKey ?? (isHostedApi(endpoint.baseUrl) ? sharedKey.hostedKey : sharedKey.key),
    ),
  );
  for (const each of keys) reporter.setSecret(each.apiKey);
  const trial = key.trial || keys.some((each) => each.trial);
  if (trial) {
    const openai = env.OPENAI_API_KEY ? " (OPENAI_API_KEY is never sent to the hosted API)" : "";
    reporter.say(`${TRIAL_KEY_NOTICE}${openai}`, "warn");
  }
  reporter.setSecret(key.apiKey);
  const endpoints = config.endpoints?.map((endpoint, index) => ({
    ...endpoint,
    apiKey: keys[index]?.apiKey,
  }));
  return { ...key, trial, endpoints };
}

/** A refusal of the trial key is about the trial, not about a key the user gave. */
export function refusalMessage(error: unknown, trial: boolean, resumable = false): string | null {
  if (!trial) return null;
  const auth = error instanceof AuthError ? error : null;
  const cause = error instanceof RunAbortedError ? error.cause : null;
  const refused = auth ?? (cause instanceof AuthError ? cause : null);
  if (!refused) return null;
  const text = trialKeyRefused(`HTTP ${refused.status ?? "401"}`);
  return resumable ? `${text}, then rerun to resume` : text;
}
