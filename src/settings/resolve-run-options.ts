import path from "node:path";
import { byOptionName, type NameSetting, UsageError } from "../errors.js";
import { type PromptSet, parsePromptSet } from "../prompts/prompt-set.js";
import { promptHash } from "../prompts/protocol.js";
import { type AnswerSchema, compileSchema } from "../prompts/structured.js";
import { TAGS_PROMPT, TAGS_SCHEMA } from "../prompts/tags.js";
import { type PromptTemplate, parseTemplate } from "../prompts/template.js";
import { endpointLabels } from "../send/endpoint-labels.js";
import type { SidecarOptions } from "../sinks/sidecar-sink.js";
import type { OutputFormat } from "../types.js";
import {
  DEFAULT_BASE_URL,
  DEFAULT_PROMPT,
  defaultConcurrency,
  normaliseBaseUrl,
} from "./defaults.js";
import { checkEndpoints } from "./endpoints.js";
import { fromEnvironment, unknownOptions } from "./environment.js";
import { librarySettingProblems } from "./library-check.js";
import { type WithDefaults, withDefaults } from "./library-options.js";
import { libraryNameOf } from "./naming.js";
import { chooseOutputFormat, defaultErrorsPath } from "./output-format.js";
import { checkDatasetOutputs } from "./outputs.js";

import type { ResolvedEndpoint, RunOptions } from "./run-options.js";

/**
 * RunOptions with every value checked and every default applied: the table's (`WithDefaults`),
 * then those worked out from other options.
 */
export type ResolvedRunOptions = WithDefaults<
  Omit<RunOptions, "endpoints" | "concurrency" | "env" | "jsonSchema">
> & {
  cwd: string;
  format: OutputFormat;
  errorsPath: string;
  overwrite: boolean;
  dryRun: boolean;
  /** The first endpoint's, normalised. */
  baseUrl: string;
  /** Said as warnings when the run starts (the trial key is in use). */
  notices: string[];
  /** At least one: `endpoints`, or the one `baseUrl` names; each with its own concurrency. */
  endpoints: ResolvedEndpoint[];
  /** The prompt's text, and the prompt checked. */
  prompt: string;
  template: PromptTemplate;
  /** The schema answers are checked against, from `jsonSchema` or `tags`. */
  answer: AnswerSchema | undefined;
  /** `prompts`, checked and in the order they are asked; then `template` and `answer` are unused. */
  promptSet: PromptSet | undefined;
  promptHash: string;
  maxTokens: number;
  /**
   * The reply budget the options gave (not a default): with several prompts it is each prompt's
   * that has none of its own, whose default is its own model's otherwise.
   */
  given: { maxTokens: number | undefined };
  nameSetting: NameSetting;
};

/**
 * Applies the defaults and checks every option, collecting all problems into one UsageError whose
 * lines name the options, so a program gets the same care as the command line.
 */
export async function resolveRunOptions(options: RunOptions): Promise<ResolvedRunOptions> {
  const problems: string[] = unknownOptions(options);
  const environment = fromEnvironment(options);
  problems.push(...environment.problems);
  if (
    !Array.isArray(options.inputs) ||
    options.inputs.length === 0 ||
    !options.inputs.every((input) => typeof input === "string" && input !== "")
  ) {
    problems.push("inputs: expected a non-empty list of folders, files or glob patterns");
  }
  if (typeof options.output !== "string" || options.output === "") {
    problems.push("output: expected the path of a .csv, .jsonl or .parquet file");
  }
  problems.push(...librarySettingProblems(options));
  // How the outputs go together, by the same check as the command line's.
  const sidecar: unknown = options.sidecar;
  if (typeof sidecar === "object" && sidecar !== null && "ext" in sidecar) {
    const { ext, policy, join } = options.sidecar as SidecarOptions;
    checkDatasetOutputs(
      { sidecar: ext, sidecarPolicy: policy, sidecarJoin: join },
      libraryNameOf,
      problems,
    );
  }
  if (options.endpoints !== undefined) problems.push(...checkEndpoints(options.endpoints));
  // Options a program gives as objects or switches, which the settings table does not hold.
  problems.push(...shapeProblems(options));
  const template = parseTemplate(options.prompt ?? (options.tags ? TAGS_PROMPT : DEFAULT_PROMPT));
  if ("problems" in template) {
    for (const problem of template.problems) problems.push(`prompt: ${problem}`);
  }
  if (options.tags && options.jsonSchema !== undefined) {
    const name = options.nameSetting ?? byOptionName;
    problems.push(
      `tags: asks for its own schema, so it cannot be combined with ${name("jsonSchema")}`,
    );
  }
  problems.push(...budgetProblems(options));
  const promptSet = promptSetOf(options, problems);
  if (options.redo !== undefined && options.overwrite === true) {
    const name = options.nameSetting ?? byOptionName;
    problems.push(
      `${name("redo")}: makes some rows of OUT again, and ${name("overwrite")} discards them all; give one of them`,
    );
  }
  const schema = options.tags ? TAGS_SCHEMA : options.jsonSchema;
  const answer = schema === undefined ? undefined : compileSchema(schema, "caption");
  if (answer && "problems" in answer) {
    for (const problem of answer.problems) problems.push(`jsonSchema: ${problem}`);
  }
  if (problems.length > 0 || "problems" in template || (answer && "problems" in answer)) {
    throw new UsageError(problems);
  }

  const given = withDefaults(options);
  const cwd = options.cwd ?? process.cwd();
  const output = path.resolve(cwd, options.output);
  // An explicit format is taken as given (the CLI has already held it against OUT's name).
  const format = options.format ?? (await chooseOutputFormat(output, undefined)).format;
  const baseUrl = options.baseUrl ?? environment.baseUrl ?? DEFAULT_BASE_URL;
  const endpoints = resolveEndpoints(options.endpoints, {
    baseUrl,
    apiKeyFor: (url) => environment.keyFor(url).apiKey,
    // An alias stays one: which id it means depends on what each server lists.
    model: given.model,
    concurrency: options.concurrency,
    rpm: options.rpm,
    inputPrice: options.inputPrice,
    outputPrice: options.outputPrice,
  });
  return {
    // Every option as given, with the table's defaults where it was left out; then those that
    // are worked out from others.
    ...given,
    endpoints,
    output,
    cwd,
    format,
    errorsPath: path.resolve(cwd, options.errorsPath ?? defaultErrorsPath(output)),
    overwrite: options.overwrite ?? false,
    dryRun: options.dryRun ?? false,
    baseUrl: normaliseBaseUrl(baseUrl),
    notices: environment.notices,
    prompt: template.text,
    template,
    answer,
    promptSet,
    promptHash: promptSet?.hash ?? promptHash(template.text, answer),
    given: { maxTokens: options.maxTokens },
    nameSetting: options.nameSetting ?? byOptionName,
  };
}

function resolveEndpoints(
  endpoints: RunOptions["endpoints"],
  run: Omit<ResolvedEndpoint, "label" | "keyOption" | "concurrency" | "apiKey"> & {
    concurrency: number | "auto" | undefined;
    /** The key of an endpoint that names none: the run's, or what the environment gives it. */
    apiKeyFor: (baseUrl: string) => string | undefined;
  },
): ResolvedEndpoint[] {
  const entries = endpoints ?? [{ baseUrl: run.baseUrl }];
  const baseUrls = entries.map((entry) => normaliseBaseUrl(entry.baseUrl));
  const labels = endpointLabels(baseUrls);
  return entries.map((entry, index) => ({
    baseUrl: baseUrls[index] ?? run.baseUrl,
    apiKey: entry.apiKey ?? run.apiKeyFor(baseUrls[index] ?? run.baseUrl),
    model: entry.model ?? run.model,
    concurrency:
      entry.concurrency ?? run.concurrency ?? defaultConcurrency(baseUrls[index] ?? run.baseUrl),
    rpm: entry.rpm ?? run.rpm,
    inputPrice: entry.inputPrice ?? run.inputPrice,
    outputPrice: entry.outputPrice ?? run.outputPrice,
    label: labels[index] ?? "",
    keyOption: entry.apiKey !== undefined && endpoints ? `endpoints[${index}].apiKey` : "apiKey",
  }));
}

/** What is wrong with the options that are switches or objects of a program's own. */
function shapeProblems(options: RunOptions): string[] {
  const problems: string[] = [];
  for (const key of ["overwrite", "dryRun", "recordOnly"] as const) {
    const value: unknown = options[key];
    if (value !== undefined && typeof value !== "boolean") {
      problems.push(`${key}: expected true or false, got ${JSON.stringify(value)}`);
    }
  }
  for (const [key, shape] of [
    ["prepare", "{ maxPixels, maxSide, imageFormat, quality }"],
    ["video", '{ include: true, mode: "auto", side: 448, fps: 1, seconds: 60 }'],
    ["sidecar", '{ ext: ".txt", policy: "append", join: ", " }'],
  ] as const) {
    const value: unknown = options[key];
    if (value !== undefined && (typeof value !== "object" || value === null)) {
      problems.push(`${key}: expected an object like ${shape}, got ${JSON.stringify(value)}`);
    }
  }
  const sidecar: unknown = options.sidecar;
  if (typeof sidecar === "object" && sidecar !== null && !("ext" in sidecar)) {
    problems.push('sidecar.ext: required, the extension of the files beside the images (".txt")');
  }
  return problems;
}

/**
 * Several prompts, checked; they hold every prompt of the run, so a prompt, a schema or tags
 * given beside them is a problem, as is a caption prompt without them.
 */
function promptSetOf(options: RunOptions, problems: string[]): PromptSet | undefined {
  const name = options.nameSetting ?? byOptionName;
  if (options.prompts === undefined) {
    if (options.captionPrompt !== undefined) {
      problems.push(
        `${name("captionPrompt")}: names one of ${name("prompts")}, which is not given`,
      );
    }
    return undefined;
  }
  const beside = (["prompt", "jsonSchema", "tags"] as const).filter(
    (key) => options[key] !== undefined && options[key] !== false,
  );
  if (beside.length > 0) {
    problems.push(
      `${name("prompts")}: holds every prompt of the run, so ${beside.map(name).join(", ")} cannot be given beside it; put ${beside.length === 1 ? "it" : "them"} in a prompt of the file (prompt, json_schema, tags)`,
    );
  }
  const set = parsePromptSet(options.prompts, options.captionPrompt, name("prompts"));
  if ("problems" in set) {
    problems.push(
      ...set.problems.map((problem) =>
        problem.startsWith("captionPrompt:")
          ? problem.replace("captionPrompt", name("captionPrompt"))
          : problem,
      ),
    );
    return undefined;
  }
  return set;
}

/** A cost budget cannot be judged without a price to count the tokens at. */
export function budgetProblems(
  options: Pick<
    RunOptions,
    "budgetCost" | "endpoints" | "inputPrice" | "outputPrice" | "nameSetting"
  >,
): string[] {
  if (options.budgetCost === undefined) return [];
  const endpoints: unknown[] = Array.isArray(options.endpoints) ? options.endpoints : [];
  const priced = [options, ...endpoints].some((each) => {
    if (typeof each !== "object" || each === null) return false;
    const { inputPrice, outputPrice } = each as Record<string, unknown>;
    return (
      (typeof inputPrice === "number" && inputPrice > 0) ||
      (typeof outputPrice === "number" && outputPrice > 0)
    );
  });
  if (priced) return [];
  const name = options.nameSetting ?? byOptionName;
  return [
    `${name("budgetCost")}: needs prices to count the tokens at: give ${name("inputPrice")} and ${name("outputPrice")} (per million tokens, above 0)`,
  ];
}
