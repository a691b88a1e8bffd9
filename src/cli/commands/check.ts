import { extractCaption } from "../../answer/extract.js";
import { UsageError } from "../../errors.js";
import {
  chooseModel,
  MODEL_LIST_TIMEOUT_MS,
  olderIdsOf,
  saysModelMissing,
  servedModels,
} from "../../send/models.js";
import { buildTextRequest } from "../../send/request.js";
import { defaultMaxTokens } from "../../settings/defaults.js";
import { flagOf } from "../../settings/naming.js";
import type { CommandIo } from "../command-io.js";
import { refusalMessage } from "../context.js";
import { endpointClients } from "../endpoint-clients.js";
import { exitCodeOf } from "../exit-codes.js";
import { asFlags, flagsFor } from "../naming.js";

/** `caption check`: one text-only request to each server, as a run would ask it. */
export async function run(
  args: Record<string, unknown>,
  { context, reporter }: CommandIo,
): Promise<number> {
  let answered = true;
  let refused = false;
  for (const { config, baseUrl, model: given, trial, client, shown } of endpointClients(args, {
    context,
    reporter,
  })) {
    // As a run would: the id this server lists of the family asked for, or the run's refusal.
    const listed = servedModels((await client.models(MODEL_LIST_TIMEOUT_MS)).body);
    let model: string;
    try {
      const choice = chooseModel(given, listed, baseUrl, flagsFor(config)("model"));
      if (choice.warning) reporter.say(choice.warning, "warn");
      model = choice.model;
    } catch (error) {
      if (!(error instanceof UsageError)) throw error;
      for (const problem of error.problems) reporter.say(asFlags(problem), "error");
      refused = true;
      continue;
    }
    // With no list to choose from, the family's older ids are what the server may call it.
    const older = listed === null ? olderIdsOf(model) : [];
    const ask = () =>
      client.chat(
        buildTextRequest("Introduce yourself in one sentence.", {
          model,
          maxTokens: config.values.maxTokens ?? defaultMaxTokens(model),
          temperature: config.values.temperature,
        }),
      );
    try {
      let reply: Awaited<ReturnType<typeof ask>>;
      for (;;) {
        try {
          reply = await ask();
          break;
        } catch (error) {
          const next = older.shift();
          if (!saysModelMissing(error) || next === undefined) throw error;
          reporter.say(
            `${baseUrl} lists no models and says ${model} does not exist: asking it for ${next}, of the same family`,
            "warn",
          );
          model = next;
        }
      }
      const { caption } = extractCaption(reply.body, flagOf);
      context.stdout.write(`${shown(caption)}\n`);
      reporter.say(`${baseUrl} answered as ${model} in ${reply.latencyMs} ms`);
    } catch (error) {
      const message =
        refusalMessage(error, trial) ?? (error instanceof Error ? error.message : String(error));
      reporter.say(`check failed against ${baseUrl} with model ${model}: ${message}`, "error");
      answered = false;
    }
  }
  // A model the server does not serve is the run's usage error too.
  return exitCodeOf({ answered, refused });
}
