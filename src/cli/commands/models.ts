import { familyOfListed, listedIdOf, MODEL_FAMILIES } from "../../send/model-families.js";
import { type ServedModel, servedModels } from "../../send/models.js";
import { DEFAULT_MODEL } from "../../settings/defaults.js";
import type { CommandIo } from "../command-io.js";
import { endpointClients } from "../endpoint-clients.js";
import { exitCodeOf } from "../exit-codes.js";

const MODELS_COMMAND_TIMEOUT_MS = 15_000;

/**
 * `caption models`: the ids `GET {base}/models` lists, one a line, with owner and date, and the
 * short name (`-m`) each answers to.
 */
export async function run(
  args: Record<string, unknown>,
  { context, reporter }: CommandIo,
): Promise<number> {
  const servers = endpointClients(args, { context, reporter });
  let answered = true;
  for (const { timeoutMs, baseUrl, client, shown } of servers) {
    // A list is a quick answer: a server that has not given one in a few seconds will not.
    const { body, problem } = await client.models(Math.min(timeoutMs, MODELS_COMMAND_TIMEOUT_MS));
    const models = servedModels(body);
    if (models === null) {
      reporter.say(
        `${baseUrl} gave no model list (${problem ?? "the reply has no data list"})${problem?.includes("HTTP 404") ? "; it may not have the route, which is no obstacle to captioning" : ""}`,
        "error",
      );
      answered = false;
      continue;
    }
    for (const model of models) {
      const owner = model.ownedBy ? `\t${shown(model.ownedBy)}` : "";
      const created =
        model.created === null
          ? ""
          : `\t${new Date(model.created * 1000).toISOString().slice(0, 10)}`;
      // With several servers each line says whose it is.
      const whose = servers.length > 1 ? `${baseUrl}\t` : "";
      const family = familyNote(model.id, models);
      // What a server lists is its text, shown rather than obeyed.
      context.stdout.write(
        `${whose}${shown(model.id)}${owner}${created}${family ? `\t${shown(family)}` : ""}\n`,
      );
    }
    reporter.say(`${baseUrl} serves ${models.length} ${models.length === 1 ? "model" : "models"}`);
  }
  return exitCodeOf({ answered });
}

/**
 * Which short name a listed id answers to: "(instruct, the default)", "(thinking)"; or, for one
 * of a family that another listed id answers for, which one that is. Null for other models.
 */
function familyNote(id: string, models: readonly ServedModel[]): string | null {
  const ids = models.map((model) => model.id);
  const picked = MODEL_FAMILIES.find((family) => listedIdOf(family, ids) === id);
  if (picked) return `(${picked.alias}${picked.alias === DEFAULT_MODEL ? ", the default" : ""})`;
  const member = familyOfListed(id);
  if (!member) return null;
  return `(of the ${member.alias} family; -m ${member.alias} asks for ${listedIdOf(member, ids)})`;
}
