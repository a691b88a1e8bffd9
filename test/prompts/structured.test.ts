import { describe, expect, it } from "vitest";
import {
  type AnswerSchema,
  captionOfAnswer,
  cellOf,
  compileSchema,
  firstJsonObject,
  parseWhole,
  schemaProblem,
} from "../../src/prompts/structured.js";

function compiled(schema: object): AnswerSchema {
  const result = compileSchema(schema, "fallback name!");
  if ("problems" in result) throw new Error(result.problems.join("; "));
  return result;
}

describe("structured answers", () => {
  it("finds the first JSON object in prose, braces inside strings included", () => {
    expect(
      firstJsonObject('Here is the JSON: {"caption": "a {curly} cat"} Hope it helps! {"x": 1}'),
    ).toEqual({
      caption: "a {curly} cat",
    });
    expect(firstJsonObject('I think {this} is it: {"a": {"b": "\\"}"}}')).toEqual({
      a: { b: '"}' },
    });
    expect(firstJsonObject("no JSON here")).toBeUndefined();
    expect(firstJsonObject('{"cut": "off')).toBeUndefined();
  });

  it("reads a whole reply as JSON, with or without a Markdown fence", () => {
    expect(parseWhole('  {"a": 1}\n')).toEqual({ a: 1 });
    expect(parseWhole('```json\n{"a": 1}\n```')).toEqual({ a: 1 });
    expect(parseWhole('Sure: {"a": 1}')).toBeUndefined();
  });

  it("names the schema after its title, or a cleaned fallback", () => {
    expect(compiled({ title: "My Schema", type: "object", properties: { a: {} } }).name).toBe(
      "My_Schema",
    );
    expect(compiled({ type: "object", properties: { a: {} } }).name).toBe("fallback_name");
  });

  it("refuses what cannot give rows: not an object schema, or not a schema at all", () => {
    expect(compileSchema([], "x")).toEqual({
      problems: [expect.stringMatching(/expected a JSON Schema/)],
    });
    expect(compileSchema({ type: "string" }, "x")).toEqual({
      problems: [expect.stringMatching(/top level must be/)],
    });
    expect(compileSchema({ type: "object", properties: { a: { type: 5 } } }, "x")).toEqual({
      problems: [expect.stringMatching(/^not a valid JSON Schema/)],
    });
  });

  it("validates with ajv, draft 2020-12 by its $schema", () => {
    const answer = compiled({
      $schema: "https://json-schema.org/draft/2020-12/schema",
      type: "object",
      properties: {
        pair: { type: "array", prefixItems: [{ type: "string" }, { type: "number" }] },
      },
      required: ["pair"],
    });
    expect(schemaProblem(answer, { pair: ["a", 1] })).toBeNull();
    expect(schemaProblem(answer, { pair: [1, "a"] })).toMatch(/\/pair\/0 must be string/);
    expect(schemaProblem(answer, {})).toMatch(/must have required property 'pair'/);
  });

  it("takes the caption from caption, description or text, else the JSON", () => {
    const described = compiled({ type: "object", properties: { tags: {}, description: {} } });
    expect(captionOfAnswer(described, { description: "a cat", tags: [] })).toBe("a cat");
    const other = compiled({ type: "object", properties: { mood: {} } });
    expect(captionOfAnswer(other, { mood: "calm" })).toBe('{"mood":"calm"}');
  });

  it("turns values into CSV cells: lists joined, objects as JSON", () => {
    expect(cellOf(["a", "b", 3])).toBe("a, b, 3");
    expect(cellOf({ x: 1 })).toBe('{"x":1}');
    expect(cellOf(false)).toBe("false");
    expect(cellOf(null)).toBe("");
  });
});
