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
