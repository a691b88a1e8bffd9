import { createClient } from "../send/client.js";
import { libraryOptionsOf, withDefaults } from "../settings/library-options.js";
import { forTerminal } from "../trust/text.js";
import { redactSecret, urlCredentials } from "../util/redact.js";
import type { CommandIo } from "./command-io.js";
import { chooseKey, loadConfig } from "./context.js";
import { flagsFor } from "./naming.js";

/**
 * What `caption check` and `caption models` share: the endpoint settings, the keys, a client for
 * each server named (several when `--base-url` is repeated or the config lists `endpoints`).
 */
export function endpointClients(args: Record<string, unknown>, { context, reporter }: CommandIo) {
  const config = loadConfig(args, context, reporter, "check");
  const key = chooseKey(config, reporter, context.env);
  const { timeoutMs, maxReplyBytes } = withDefaults(libraryOptionsOf(config.values));
  const servers = key.endpoints ?? [
    { baseUrl: config.baseUrl, apiKey: key.apiKey, model: config.model },
  ];
  // Whatever a server sends back is masked of every key of the command before it is shown.
  const secrets = servers.flatMap((server) => [server.apiKey, ...urlCredentials(server.baseUrl)]);
  const shown = (text: string) => forTerminal(redactSecret(text, secrets));
  return servers.map((server) => ({
    shown,
    config,
    baseUrl: server.baseUrl,
    model: server.model ?? config.model,
    trial: key.trial,
    timeoutMs,
    apiKey: server.apiKey,
    client: createClient({
      baseUrl: server.baseUrl,
      apiKey: server.apiKey,
      timeoutMs,
      maxReplyBytes,
      nameSetting: flagsFor(config),
      ...(context.fetch ? { fetch: context.fetch } : {}),
    }),
  }));
}
