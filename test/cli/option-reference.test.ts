import { readFile } from "node:fs/promises";
import { describe, expect, it } from "vitest";
import { optionReference, REFERENCE_BEGIN, REFERENCE_END } from "../../src/cli/option-reference.js";
import { SETTING_KEYS, SETTING_SPECS } from "../../src/settings/table.js";

const DOC = new URL("../../docs/options.md", import.meta.url);

/** The text less the padding a formatter puts in a Markdown table. */
function unpadded(text: string): string {
  return text
    .split("\n")
    .map((line) => line.replace(/ +/g, " ").replace(/-{3,}/g, "---"))
    .join("\n");
}

describe("the option reference in docs/options.md", () => {
  it("is what the settings table generates (run npm run docs after changing the table)", async () => {
    const text = await readFile(DOC, "utf8");
    const begin = text.indexOf(REFERENCE_BEGIN);
    const end = text.indexOf(REFERENCE_END);
    expect(begin, "docs/options.md lost its generated section").toBeGreaterThanOrEqual(0);
    expect(unpadded(text.slice(begin, end + REFERENCE_END.length))).toBe(
      unpadded(optionReference()),
    );
  });

  it("has a row for every setting, naming its flag, config key and variables", () => {
    const reference = optionReference();
    for (const key of SETTING_KEYS) {
      const spec = SETTING_SPECS[key];
      const row = reference
        .split("\n")
        .find((line) => line.split(" | ")[0]?.endsWith(`\`${spec.flag}\``));
      expect(row, spec.flag).toBeDefined();
      expect(row).toContain(`\`${key}\``);
      for (const variable of spec.env ?? []) expect(row).toContain(`\`${variable}\``);
    }
  });
});
