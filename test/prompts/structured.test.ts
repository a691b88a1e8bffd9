import { describe, expect, it } from "vitest";
import { compileSchema } from "../../src/prompts/structured.js";
import { compiled } from "../helpers/schema.js";

describe("asking for a structured answer", () => {
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
});
