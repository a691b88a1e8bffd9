import type { Ajv, ValidateFunction } from "ajv";
import { loadWhenNeeded } from "../util/load.js";

/**
 * Structured answers: a JSON Schema sent as `response_format`, the reply parsed and checked
 * against it with ajv, and the object's top-level properties as the row's fields.
 */
export interface AnswerSchema {
  /** `json_schema.name`: vLLM and SGLang require one. */
  name: string;
  schema: Record<string, unknown>;
  /** The top-level properties, in the schema's order: CSV gets a column for each. */
  properties: readonly string[];
  /** The property the caption is taken from (`caption`, `description` or `text`), if any. */
  captionProperty: string | null;
  validate: ValidateFunction;
}

const CAPTION_PROPERTIES = ["caption", "description", "text"] as const;

/** Checks a schema and compiles its validator; the problems say what to change. */
export function compileSchema(
  schema: unknown,
  fallbackName: string,
): AnswerSchema | { problems: string[] } {
  if (typeof schema !== "object" || schema === null || Array.isArray(schema)) {
    return { problems: ['expected a JSON Schema: a JSON object such as {"type": "object", …}'] };
  }
  const record = schema as Record<string, unknown>;
  const properties = record.properties;
  if (
    record.type !== "object" ||
    typeof properties !== "object" ||
    properties === null ||
    Array.isArray(properties) ||
    Object.keys(properties).length === 0
  ) {
    return {
      problems: [
        'the schema\'s top level must be {"type": "object", "properties": {…}}: its properties become the fields of each row',
      ],
    };
  }
  let validate: ValidateFunction;
  try {
    validate = validatorFor(record.$schema).compile(record);
  } catch (error) {
    return { problems: [`not a valid JSON Schema: ${(error as Error).message}`] };
  }
  const names = Object.keys(properties);
  return {
    name: schemaName(record.title, fallbackName),
    schema: record,
    properties: names,
    captionProperty: CAPTION_PROPERTIES.find((name) => names.includes(name)) ?? null,
    validate,
  };
}

/** Draft 2020-12 and 2019-09 by their `$schema`; anything else as draft-07, ajv's default. */
function validatorFor(dialect: unknown): Ajv {
  const options = { allErrors: true, strict: false } as const;
  if (typeof dialect === "string" && dialect.includes("2020-12")) {
    const { Ajv2020 } = loadWhenNeeded("ajv/dist/2020.js") as typeof import("ajv/dist/2020.js");
    return new Ajv2020(options);
  }
  if (typeof dialect === "string" && dialect.includes("2019-09")) {
    const { Ajv2019 } = loadWhenNeeded("ajv/dist/2019.js") as typeof import("ajv/dist/2019.js");
    return new Ajv2019(options);
  }
  const { Ajv: Draft07 } = loadWhenNeeded("ajv") as typeof import("ajv");
  return new Draft07(options);
}

/** OpenAI's rule for the name, which the servers copy: letters, digits, `_` and `-`, up to 64. */
function schemaName(title: unknown, fallback: string): string {
  const raw = typeof title === "string" && title.trim() !== "" ? title : fallback;
  const name = raw
    .replace(/[^A-Za-z0-9_-]+/g, "_")
    .replace(/^_+|_+$/g, "")
    .slice(0, 64);
  return name === "" ? "caption" : name;
}

/** The portable form every server in the research notes reads (the schema under `schema`). */
export function responseFormat(answer: AnswerSchema): object {
  return {
    type: "json_schema",
    json_schema: { name: answer.name, schema: answer.schema, strict: true },
  };
}

/**
 * What the prompt says about the answer. Sent in every mode: llama.cpp turns the schema into a
 * grammar the model never sees, and the docs of vLLM, SGLang and Ollama advise it too.
 */
export function schemaInstruction(answer: AnswerSchema): string {
  return `Answer with a single JSON object, and nothing else, that matches this JSON Schema:\n${JSON.stringify(answer.schema)}`;
}

/** The reply read as JSON: the whole of it, allowing a Markdown code fence around it. */
export function parseWhole(text: string): unknown {
  const fenced = /^\s*```(?:json)?\s*\n?([\s\S]*?)\n?\s*```\s*$/i.exec(text);
  try {
    return JSON.parse(fenced ? (fenced[1] ?? "") : text);
  } catch {
    return undefined;
  }
}

/**
 * The first JSON object in a reply that wraps it in prose ("Here is the JSON: {…}"): from each
 * `{`, the balanced span to its closing brace (braces inside strings do not count), if it parses.
 */
export function firstJsonObject(text: string): unknown {
  for (let start = text.indexOf("{"); start !== -1; start = text.indexOf("{", start + 1)) {
    const end = closingBrace(text, start);
    if (end === -1) continue;
    try {
      return JSON.parse(text.slice(start, end + 1));
    } catch {
      // Not JSON after all (a brace in prose): try the next one.
    }
  }
  return undefined;
}

function closingBrace(text: string, start: number): number {
  let depth = 0;
  let inString = false;
  for (let i = start; i < text.length; i += 1) {
    const char = text[i];
    if (inString) {
      if (char === "\\") i += 1;
      else if (char === '"') inString = false;
    } else if (char === '"') {
      inString = true;
    } else if (char === "{") {
      depth += 1;
    } else if (char === "}") {
      depth -= 1;
      if (depth === 0) return i;
    }
  }
  return -1;
}

/** Why `value` does not match the schema (ajv's words), or null when it does. */
export function schemaProblem(answer: AnswerSchema, value: unknown): string | null {
  if (answer.validate(value)) return null;
  return answer.validate.errors
    ? answerErrors(answer.validate.errors)
    : "does not match the schema";
}

function answerErrors(errors: NonNullable<ValidateFunction["errors"]>): string {
  return errors
    .slice(0, 5)
    .map((error) => `${error.instancePath || "the answer"} ${error.message ?? "is invalid"}`)
    .join("; ");
}

/** The caption of a structured answer: its caption-like property, else the JSON text. */
export function captionOfAnswer(answer: AnswerSchema, data: Record<string, unknown>): string {
  const value = answer.captionProperty === null ? undefined : data[answer.captionProperty];
  if (typeof value === "string") return value;
  return JSON.stringify(data);
}

/** One CSV cell for a property's value: lists joined with ", ", objects as JSON text. */
export function cellOf(value: unknown): string {
  if (value === undefined || value === null) return "";
  if (Array.isArray(value)) {
    return value.map((item) => (typeof item === "string" ? item : JSON.stringify(item))).join(", ");
  }
  if (typeof value === "object") return JSON.stringify(value);
  return String(value);
}
