import type { NamedPrompt, PromptSet } from "../prompts/prompt-set.js";
import { captionProtocol } from "../prompts/protocol.js";
import { chooseModel, type ServedModel } from "../send/models.js";
import type { CaptionProtocol } from "../send/request.js";
import { defaultMaxTokens } from "../settings/defaults.js";
import type { ResolvedRunOptions } from "../settings/resolve-run-options.js";

/**
 * With several prompts, how one endpoint builds each prompt's requests when it is asked for a
 * model id: a prompt with a model of its own asks the server for the id it serves of that (once,
 * from what the server lists), the others the endpoint's.
 */
export function promptProtocols(
  options: ResolvedRunOptions,
  set: PromptSet,
  server: { listed: ServedModel[] | null; baseUrl: string },
  warn: (message: string) => void,
): (model: string) => ReadonlyMap<string, CaptionProtocol> {
  const ownModels = new Map(
    set.prompts.flatMap((prompt) => {
      if (prompt.model === undefined) return [];
      const chosen = chooseModel(
        prompt.model,
        server.listed,
        server.baseUrl,
        `${options.nameSetting("prompts")}: ${prompt.name}.model`,
      );
      if (chosen.warning) warn(chosen.warning);
      return [[prompt.name, chosen.model] as const];
    }),
  );
  return (id) =>
    new Map(
      set.prompts.map((prompt) => {
        const model = ownModels.get(prompt.name) ?? id;
        return [
          prompt.name,
          captionProtocol({
            model,
            template: prompt.template,
            ...requestOf(prompt, model, options),
            answer: prompt.answer,
            tags: prompt.tags,
            sidecarExt: options.sidecar?.ext ?? ".txt",
            nameSetting: options.nameSetting,
            onWarning: warn,
          }),
        ];
      }),
    );
}

/**
 * A prompt's reply budget and temperature: its own, else the run's as the options gave it, else
 * the default for the prompt's model (a Thinking model needs room to think).
 */
function requestOf(
  prompt: NamedPrompt,
  model: string,
  options: ResolvedRunOptions,
): { maxTokens: number; temperature: number | undefined } {
  return {
    maxTokens: prompt.maxTokens ?? options.given.maxTokens ?? defaultMaxTokens(model),
    temperature: prompt.temperature ?? options.temperature,
  };
}
