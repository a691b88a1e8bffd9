import { type AnswerSchema, compileSchema } from "../../src/prompts/structured.js";

/** A schema compiled as a run compiles it; a test that gives a bad one fails here, saying why. */
export function compiled(schema: object): AnswerSchema {
  const result = compileSchema(schema, "fallback name!");
  if ("problems" in result) throw new Error(result.problems.join("; "));
  return result;
}
