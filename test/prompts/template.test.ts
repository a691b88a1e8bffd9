import { describe, expect, it } from "vitest";
import { PLACEHOLDERS, parseTemplate } from "../../src/prompts/template.js";

function render(text: string, values: Record<string, string>): string {
  const template = parseTemplate(text);
  if ("problems" in template) throw new Error(template.problems.join("; "));
  return template.render(values);
}

describe("prompt templates", () => {
  it.each(Object.keys(PLACEHOLDERS))("fills {%s}", (name) => {
    expect(render(`<{${name}}>`, { [name]: "value" })).toBe("<value>");
  });

  it("keeps text without placeholders as it is, and {{ }} as braces", () => {
    expect(render("Describe this image.", {})).toBe("Describe this image.");
    expect(render('Answer as {{"tags": [...]}} for {stem}', { stem: "a" })).toBe(
      'Answer as {"tags": [...]} for a',
    );
  });

  it("says which placeholders a template uses", () => {
    const template = parseTemplate("{stem} in {folder}, {stem} again");
    expect("uses" in template && [...template.uses].sort()).toEqual(["folder", "stem"]);
  });

  it("lists every problem: unknown names with the valid ones, lone braces with the fix", () => {
    const result = parseTemplate('{nme} and {size} and {"a": 1} and } and {');
    expect("problems" in result && result.problems).toEqual([
      expect.stringMatching(
        /^unknown placeholder \{nme\}; the placeholders are \{path\}, \{file\}/,
      ),
      expect.stringMatching(/^unknown placeholder \{size\}/),
      expect.stringMatching(
        /^"\{"a": 1\}" at character 22 is not a placeholder; write "\{\{" and "\}\}"/,
      ),
      expect.stringMatching(/^a lone "\}" at character 35; write "\}\}"/),
      expect.stringMatching(/^a lone "\{" at character 41; write "\{\{"/),
    ]);
  });
});
