import { promptHash } from "./protocol.js";
import { type AnswerSchema, compileSchema } from "./structured.js";
import { TAGS_PROMPT, TAGS_SCHEMA } from "./tags.js";
import { type PromptTemplate, parseTemplate } from "./template.js";

/**
 * Several named prompts asked of each image in one pass (`--prompts`): each its own template, and
 * optionally its own model, token budget, temperature and schema; one may use another's answer.
 */

/** How a program (or a prompts file, read as JSON or YAML) writes one prompt. */
export interface PromptSpec {
  /** The template; `{answer.NAME}` is another prompt's answer, `{answer.NAME.FIELD}` a field of it. */
  prompt?: string;
  /** A model of its own (an id or a family, as `model`). */
  model?: string;
  max_tokens?: number;
  temperature?: number;
  /** A structured answer: the schema itself (a prompts file may name a JSON file instead). */
  json_schema?: Record<string, unknown>;
  /** The answer is a list of tags, as `--tags` asks. */
  tags?: boolean;
}

/** One prompt, checked. */
export interface NamedPrompt {
  name: string;
  template: PromptTemplate;
  model: string | undefined;
  maxTokens: number | undefined;
  temperature: number | undefined;
  answer: AnswerSchema | undefined;
  tags: boolean;
  /** The prompts whose answers it uses: asked before it, for each image. */
  needs: readonly string[];
  /** Which template and schema made an answer: `--redo prompt-changed` tells them apart. */
  hash: string;
}

export interface PromptSet {
  /** In the order they are asked of each image: each after the prompts it uses. */
  prompts: readonly NamedPrompt[];
  /** The names, in the order given: the columns of OUT. */
  names: readonly string[];
  /** The prompt whose answer is the row's `caption`, and the outputs beside the image. */
  main: string;
  /** Every prompt's hash, by name: the rows' `prompt_hash`. */
  hash: string;
}

/** A name fit for a CSV column and a placeholder: `caption_<name>`, `{answer.<name>}`. */
const NAME = /^[A-Za-z][A-Za-z0-9_]{0,39}$/;
const KEYS = ["prompt", "model", "max_tokens", "temperature", "json_schema", "tags"] as const;

/**
 * Checks a set of prompts as a program or a prompts file gives it (`{ short: "…", long: {…} }`),
 * and puts them in the order they are asked. Every problem is named, as `prompts.long.max_tokens`.
 */
export function parsePromptSet(
  given: unknown,
  main: string | undefined,
  from = "prompts",
): PromptSet | { problems: string[] } {
  if (typeof given !== "object" || given === null || Array.isArray(given)) {
    return {
      problems: [
        `${from}: expected an object of named prompts, e.g. {"short": "One sentence about the image.", "long": {"prompt": "…", "max_tokens": 800}}`,
      ],
    };
  }
  const entries = Object.entries(given as Record<string, unknown>);
  const problems: string[] = [];
  if (entries.length === 0) problems.push(`${from}: names no prompt; give at least one`);
  const names = entries.map(([name]) => name);
  const prompts: NamedPrompt[] = [];
  for (const [name, value] of entries) {
    const at = `${from}: ${name}`;
    if (!NAME.test(name)) {
      problems.push(
        `${at}: a prompt's name is a letter, then letters, digits or "_" (at most 40): it names a column, caption_${name}`,
      );
      continue;
    }
    const prompt = parseOne(name, typeof value === "string" ? { prompt: value } : value, names, at);
    if ("problems" in prompt) problems.push(...prompt.problems);
    else prompts.push(prompt);
  }
  const chosen = main ?? names[0] ?? "";
  if (main !== undefined && !names.includes(main)) {
    problems.push(
      `captionPrompt: "${main}" is not one of the prompts (${names.join(", ")}); it names the one whose answer is the caption`,
    );
  }
  if (problems.length > 0) return { problems };
  const ordered = inOrder(prompts);
  if ("problems" in ordered) return ordered;
  return {
    prompts: ordered,
    names,
    main: chosen,
    hash: prompts.map((prompt) => `${prompt.name}=${prompt.hash}`).join(","),
  };
}

function parseOne(
  name: string,
  value: unknown,
  names: readonly string[],
  at: string,
): NamedPrompt | { problems: string[] } {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    return { problems: [`${at}: expected the prompt's text, or an object with "prompt"`] };
  }
  const spec = value as Record<string, unknown>;
  const problems: string[] = [];
  for (const key of Object.keys(spec)) {
    if (!(KEYS as readonly string[]).includes(key)) {
      problems.push(`${at}.${key}: not a setting of a prompt; they are ${KEYS.join(", ")}`);
    }
  }
  const tags = spec.tags === true;
  if (spec.tags !== undefined && typeof spec.tags !== "boolean") {
    problems.push(`${at}.tags: expected true or false`);
  }
  const text = spec.prompt ?? (tags ? TAGS_PROMPT : undefined);
  if (typeof text !== "string" || text.trim() === "") {
    problems.push(`${at}.prompt: required, the prompt's text`);
  }
  const others = names.filter((other) => other !== name);
  const template = typeof text === "string" ? parseTemplate(text, others) : null;
  if (template && "problems" in template) {
    for (const problem of template.problems) problems.push(`${at}.prompt: ${problem}`);
  }
  const number = (key: "max_tokens" | "temperature", min: number, max: number, whole: boolean) => {
    const raw = spec[key];
    if (raw === undefined) return undefined;
    if (typeof raw !== "number" || raw < min || raw > max || (whole && !Number.isInteger(raw))) {
      problems.push(
        `${at}.${key}: expected ${whole ? "a whole number" : "a number"} from ${min} to ${max}, got ${JSON.stringify(raw)}`,
      );
      return undefined;
    }
    return raw;
  };
  const maxTokens = number("max_tokens", 1, 1_000_000, true);
  const temperature = number("temperature", 0, 2, false);
  if (spec.model !== undefined && (typeof spec.model !== "string" || spec.model === "")) {
    problems.push(`${at}.model: expected a model id or family`);
  }
  if (tags && spec.json_schema !== undefined) {
    problems.push(`${at}: tags asks for its own schema, so it cannot have a json_schema`);
  }
  const schema = tags ? TAGS_SCHEMA : spec.json_schema;
  const answer = schema === undefined ? undefined : compileSchema(schema, name);
  if (answer && "problems" in answer) {
    for (const problem of answer.problems) problems.push(`${at}.json_schema: ${problem}`);
  }
  if (problems.length > 0 || !template || "problems" in template) return { problems };
  const checked = answer && !("problems" in answer) ? answer : undefined;
  return {
    name,
    template,
    model: typeof spec.model === "string" ? spec.model : undefined,
    maxTokens,
    temperature,
    answer: checked,
    tags,
    needs: [...new Set([...template.answers].map((key) => key.split(".")[0] ?? key))],
    hash: promptHash(template.text, checked),
  };
}

/**
 * Each prompt after those it uses, in the order given where there is a choice. A prompt that
 * waits on itself, through others or not, is a problem before anything is sent.
 */
function inOrder(prompts: readonly NamedPrompt[]): NamedPrompt[] | { problems: string[] } {
  const ordered: NamedPrompt[] = [];
  const placed = new Set<string>();
  while (ordered.length < prompts.length) {
    const next = prompts.find(
      (prompt) => !placed.has(prompt.name) && prompt.needs.every((need) => placed.has(need)),
    );
    if (!next) {
      const waiting = prompts.filter((prompt) => !placed.has(prompt.name));
      return {
        problems: [
          `prompts: ${waiting.map((prompt) => `${prompt.name} uses ${prompt.needs.map((need) => `{answer.${need}}`).join(", ")}`).join("; ")}: a cycle, so none of them can be asked first; take one of those answers out`,
        ],
      };
    }
    ordered.push(next);
    placed.add(next.name);
  }
  return ordered;
}

/** The fields of each structured prompt, by name: OUT's `<name>.<field>` columns. */
export function promptFields(set: PromptSet): Record<string, readonly string[]> {
  return Object.fromEntries(
    set.prompts.flatMap((prompt) =>
      prompt.answer ? [[prompt.name, prompt.answer.properties] as const] : [],
    ),
  );
}

/**
 * Whether a row's `prompt_hash` says the current prompts made it. With several prompts each
 * answer is judged by its own prompt's hash (`short=…,long=…`), so adding a prompt to the file
 * changes nothing for the answers already made; one prompt's hash is compared whole.
 */
export function madeByCurrent(rowHash: string, current: string): boolean {
  if (!current.includes("=") || !rowHash.includes("=")) return rowHash === current;
  const now = hashesOf(current);
  return [...hashesOf(rowHash)].every(([name, hash]) => !now.has(name) || now.get(name) === hash);
}

/** Each prompt's hash by its name, from a row's `prompt_hash` of several (`short=…,long=…`). */
export function hashesOf(promptHash: string): Map<string, string> {
  return new Map(
    promptHash
      .split(",")
      .filter((pair) => pair.includes("="))
      .map((pair) => pair.split("=") as [string, string]),
  );
}
