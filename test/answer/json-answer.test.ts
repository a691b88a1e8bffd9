import { describe, expect, it } from "vitest";
import {
  captionOfAnswer,
  cellOf,
  firstJsonObject,
  parseWhole,
  schemaProblem,
} from "../../src/answer/json-answer.js";
import { compiled } from "../helpers/schema.js";

describe("reading a structured answer", () => {
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
