import { describe, expect, it } from "vitest";
import { UsageError } from "../../src/errors.js";
import { unknownOptions } from "../../src/settings/environment.js";
import { resolveRunOptions } from "../../src/settings/resolve-run-options.js";
import type { RunOptions } from "../../src/settings/run-options.js";
import type { SettingKind } from "../../src/settings/spec.js";
import { SETTING_KEYS, SETTING_SPECS } from "../../src/settings/table.js";

/** A value no setting of this kind accepts, or null where the library takes another shape. */
function badValue(kind: SettingKind): unknown {
  switch (kind.type) {
    case "int":
    case "number":
      return kind.max + 1;
    case "choice":
      return "none-of-these";
    case "boolean":
      return "yes";
    case "url":
      return "ftp://example.invalid/v1";
    case "text":
      return 5;
    case "string":
      return "";
    case "switch":
      // A program names the output it wants: true or false is a command line's or a file's.
      return kind.values ? "none-of-these" : true;
    default:
      return null;
  }
}

function withValueAt(path: string, value: unknown): RunOptions {
  const options: Record<string, unknown> = { inputs: ["photos"], output: "out.csv", env: {} };
  const [top, inner] = path.split(".") as [string, string | undefined];
  if (inner === undefined) options[top] = value;
  else {
    // A sidecar needs its other parts for its own checks to pass.
    const base = top === "sidecar" ? { ext: ".txt", policy: "append", join: ", " } : {};
    options[top] = { ...base, [inner]: value };
  }
  return options as unknown as RunOptions;
}

describe("the library checks its options by the settings table", () => {
  const named = SETTING_KEYS.filter((key) => SETTING_SPECS[key].library !== undefined);

  it("knows every option the table names", () => {
    const tops = named.map((key) => (SETTING_SPECS[key].library as string).split(".")[0]);
    expect(unknownOptions(Object.fromEntries(tops.map((top) => [top, 1])))).toEqual([]);
  });

  for (const key of named) {
    const spec = SETTING_SPECS[key];
    const library = spec.library as string;
    const bad = badValue(spec.kind);
    if (bad === null || key === "apiKey" || key === "output") continue;
    it(`refuses a bad ${library}, naming it as a program wrote it`, async () => {
      const scaled = typeof bad === "number" && spec.libraryScale ? bad * spec.libraryScale : bad;
      const refused = await resolveRunOptions(withValueAt(library, scaled)).catch(
        (error: unknown) => error,
      );
      expect(refused).toBeInstanceOf(UsageError);
      expect((refused as UsageError).problems.join("\n")).toMatch(
        new RegExp(`^${library.replace(".", "\\.")}: `, "m"),
      );
    });
  }

  it("holds a sidecar's extension to the same rule as --sidecar: never an image's or an XMP's", async () => {
    for (const [ext, why] of [
      [".jpg", /^sidecar\.ext: "\.jpg" is the extension of images or XMP sidecars/m],
      ["txt", /^sidecar\.ext: "txt" is not an extension like \.txt/m],
    ] as const) {
      const refused = await resolveRunOptions(withValueAt("sidecar.ext", ext)).catch(
        (error: unknown) => error,
      );
      expect((refused as UsageError).problems.join("\n")).toMatch(why);
    }
    const fine = await resolveRunOptions(withValueAt("sidecar.ext", ".caption")).catch(
      (error: unknown) => error,
    );
    expect(fine).not.toBeInstanceOf(Error);
    const missing = await resolveRunOptions({
      inputs: ["photos"],
      output: "out.csv",
      env: {},
      sidecar: { policy: "skip" },
    } as unknown as RunOptions).catch((error: unknown) => error);
    expect((missing as UsageError).problems).toContain(
      'sidecar.ext: required, the extension of the files beside the images (".txt")',
    );
  });

  it("refuses outputs that do not go together, as the command line does", async () => {
    const refused = await resolveRunOptions({
      inputs: ["photos"],
      output: "out.csv",
      env: {},
      sidecar: { ext: ".txt", policy: "skip", join: " | " },
    }).catch((error: unknown) => error);
    expect((refused as UsageError).problems).toContain(
      "sidecar.join only applies with sidecar.policy append or prepend",
    );
  });

  it("takes numbers as numbers, names a bound in the option's own unit, and knows nested keys", async () => {
    const refused = await resolveRunOptions({
      inputs: ["photos"],
      output: "out.csv",
      env: {},
      maxTokens: "5",
      timeoutMs: 100_000_000,
      prepare: { maxPixel: 4 },
      sidecar: { ext: ".txt", polcy: "append" },
    } as unknown as RunOptions).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(UsageError);
    const problems = (refused as UsageError).problems;
    expect(problems).toContain('maxTokens: expected a number, got "5"');
    expect(problems.join("\n")).toMatch(/^timeoutMs: .*at most 86400000, got 100000000$/m);
    expect(problems).toContain(
      "prepare.maxPixel: not an option of captionImages (did you mean prepare.maxPixels?)",
    );
    expect(problems).toContain(
      "sidecar.polcy: not an option of captionImages (did you mean sidecar.policy?)",
    );
  });

  it("refuses a switch given as text and an object given as something else", async () => {
    const refused = await resolveRunOptions({
      inputs: ["photos"],
      output: "out.csv",
      env: {},
      overwrite: "yes",
      prepare: { quality: 500 },
      sidecar: ".txt",
    } as unknown as RunOptions).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(UsageError);
    const problems = (refused as UsageError).problems;
    expect(problems).toContain('overwrite: expected true or false, got "yes"');
    expect(problems).toContain("prepare.quality: expected a whole number from 1 to 100, got 500");
    expect(problems.join("\n")).toMatch(/^sidecar: expected an object like/m);
    expect(problems.join("\n")).not.toMatch(/undefined/);
  });
});
