/**
 * Which id a server is asked for: the families of MiniCPM models and the pure resolution against
 * a `/models` list, without a server.
 */
import { describe, expect, it } from "vitest";
import { UsageError } from "../../src/errors.js";
import {
  familyNamed,
  familyOfListed,
  listedIdOf,
  MODEL_FAMILIES,
} from "../../src/send/model-families.js";
import { chooseModel, type ServedModel } from "../../src/send/models.js";
import { DEFAULT_MODEL } from "../../src/settings/defaults.js";
import { REVISION_MODELS } from "../helpers/guide-revisions.js";

const BASE = "http://gpu:8000/v1";
const served = (...ids: string[]): ServedModel[] =>
  ids.map((id) => ({ id, ownedBy: null, created: null, contextTokens: null }));
const family = (alias: string) => {
  const found = MODEL_FAMILIES.find((each) => each.alias === alias);
  if (!found) throw new Error(`no family ${alias}`);
  return found;
};
const refusal = (run: () => unknown): string => {
  try {
    run();
  } catch (error) {
    if (error instanceof UsageError) return error.problems.join("\n");
    throw error;
  }
  throw new Error("expected a UsageError");
};

describe("model families", () => {
  it("hold every id the guide has given, newest revision first", () => {
    expect(family("instruct").ids).toEqual([
      "MiniCPM-V-4.6-1B",
      "MiniCPM-V-4.6-Instruct",
      "MiniCPM-V-4.6-1.3B-Instruct",
    ]);
    expect(family("thinking").ids).toEqual([
      "MiniCPM-V-4.6-Thinking",
      "MiniCPM-V-4.6-1.3B-think-0506_tau2_rl",
    ]);
    expect(family("omni").ids).toEqual(["MiniCPM-O-4.5-9B", "MiniCPM-o-4.5"]);
    expect(family("v4.5").ids).toEqual(["MiniCPM-V-4.5-9B"]);
    // Every id each revision's hosted API lists belongs to a family.
    for (const { ids } of Object.values(REVISION_MODELS)) {
      for (const id of ids) expect(familyOfListed(id), id).not.toBeNull();
    }
  });

  it("name a family by its alias or one of its ids in any letter case, never by a near miss", () => {
    expect(familyNamed("instruct")?.alias).toBe("instruct");
    expect(familyNamed("Thinking")?.alias).toBe("thinking");
    expect(familyNamed("minicpm-o-4.5")?.alias).toBe("omni");
    expect(familyNamed("MiniCPM-V-4.6-1.3B-Instruct")?.alias).toBe("instruct");
    expect(familyNamed(" V4.5 ")?.alias).toBe("v4.5");
    expect(familyNamed("MiniCPM-V-4.6-Instruc")).toBeNull();
    expect(familyNamed("openbmb/MiniCPM-V-4.6")).toBeNull();
    expect(familyNamed("qwen2.5-vl")).toBeNull();
  });

  it.each([
    ["openbmb/MiniCPM-V-4.6", "instruct"],
    ["openbmb/minicpm-v4.6:latest", "instruct"],
    ["MiniCPM-V-4.6-Q4_K_M.gguf", "instruct"],
    ["openbmb/MiniCPM-V-4.6-Thinking", "thinking"],
    ["openbmb/minicpm-v4.6-thinking", "thinking"],
    ["openbmb/MiniCPM-o-4_5", "omni"],
    ["openbmb/minicpm-o4.5", "omni"],
    ["openbmb/MiniCPM-V-4_5", "v4.5"],
    ["MINICPM-V-4.6-THINKING", "thinking"],
  ])("take the listed name %s for the %s family", (id, alias) => {
    expect(familyOfListed(id)?.alias).toBe(alias);
  });

  it.each(["Qwen2.5-VL-7B-Instruct", "MiniCPM-V-2_6", "minicpm-v4.65", "llava"])(
    "take %s for none",
    (id) => {
      expect(familyOfListed(id)).toBeNull();
    },
  );

  it("prefer the alias a server lists, then the newest known id, then a name that looks like it", () => {
    expect(listedIdOf(family("omni"), ["MiniCPM-O-4.5-9B", "omni"])).toBe("omni");
    expect(
      listedIdOf(family("instruct"), [
        "openbmb/MiniCPM-V-4.6",
        "MiniCPM-V-4.6-Instruct",
        "MiniCPM-V-4.6-1B",
      ]),
    ).toBe("MiniCPM-V-4.6-1B");
    expect(listedIdOf(family("instruct"), ["llava", "openbmb/MiniCPM-V-4.6"])).toBe(
      "openbmb/MiniCPM-V-4.6",
    );
    // A known Thinking id never stands in for the instruct model however it is spelled.
    expect(listedIdOf(family("instruct"), ["MiniCPM-V-4.6-Thinking"])).toBeNull();
  });
});

describe("chooseModel", () => {
  it("asks for a listed id as it is, and for Ollama's :latest by the untagged name", () => {
    expect(chooseModel("llava", served("llava", "qwen"), BASE)).toEqual({
      model: "llava",
      warning: null,
    });
    expect(
      chooseModel("openbmb/minicpm-v4.6", served("openbmb/minicpm-v4.6:latest", "x"), BASE),
    ).toEqual({ model: "openbmb/minicpm-v4.6", warning: null });
  });

  it("asks for a listed id in the letter case the server lists it, and says so", () => {
    expect(chooseModel("minicpm-v-4.6-1b", served("MiniCPM-V-4.6-1B", "x"), BASE)).toEqual({
      model: "MiniCPM-V-4.6-1B",
      warning: `${BASE} lists MiniCPM-V-4.6-1B, not minicpm-v-4.6-1b: asking it for MiniCPM-V-4.6-1B`,
    });
  });

  it.each(Object.entries(REVISION_MODELS))(
    "resolves the default and each alias against the %s list",
    (_, revision) => {
      const list = served(...revision.ids);
      expect(chooseModel(DEFAULT_MODEL, list, BASE)).toEqual({
        model: revision.instruct,
        warning: null,
      });
      expect(chooseModel("thinking", list, BASE).model).toBe(revision.thinking);
      if (revision.omni) expect(chooseModel("omni", list, BASE).model).toBe(revision.omni);
      if (revision.v45) expect(chooseModel("v4.5", list, BASE).model).toBe(revision.v45);
    },
  );

  it("asks for the listed id of the family of an id an older guide gave, with one line", () => {
    const list = served(...REVISION_MODELS["2026-07-23"].ids);
    expect(chooseModel("MiniCPM-V-4.6-Instruct", list, BASE)).toEqual({
      model: "MiniCPM-V-4.6-1B",
      warning: `${BASE} serves the instruct model as MiniCPM-V-4.6-1B, not MiniCPM-V-4.6-Instruct: asking it for MiniCPM-V-4.6-1B`,
    });
    expect(chooseModel("MiniCPM-o-4.5", list, BASE).model).toBe("MiniCPM-O-4.5-9B");
    expect(chooseModel("MiniCPM-V-4.6-1B", served("MiniCPM-V-4.6-Instruct", "x"), BASE).model).toBe(
      "MiniCPM-V-4.6-Instruct",
    );
  });

  it("asks a server that lists the short name itself for that name", () => {
    expect(chooseModel("MiniCPM-o-4.5", served("omni", "llava"), BASE)).toEqual({
      model: "omni",
      warning: `${BASE} lists omni, not MiniCPM-o-4.5: asking it for omni`,
    });
  });

  it("resolves a family against the names self-hosted servers give it", () => {
    expect(chooseModel("instruct", served("openbmb/MiniCPM-V-4.6", "llava"), BASE).model).toBe(
      "openbmb/MiniCPM-V-4.6",
    );
    expect(
      chooseModel(
        "thinking",
        served("openbmb/minicpm-v4.6:latest", "openbmb/minicpm-v4.6-thinking:latest"),
        BASE,
      ).model,
    ).toBe("openbmb/minicpm-v4.6-thinking:latest");
    expect(chooseModel("instruct", served("MiniCPM-V-4.6-Q4_K_M.gguf"), BASE)).toEqual({
      model: "MiniCPM-V-4.6-Q4_K_M.gguf",
      warning: null,
    });
  });

  it("with no list, sends an alias as its family's newest id and an id as it is", () => {
    for (const list of [null, []]) {
      expect(chooseModel("instruct", list, BASE)).toEqual({
        model: "MiniCPM-V-4.6-1B",
        warning: null,
      });
      expect(chooseModel("omni", list, BASE).model).toBe("MiniCPM-O-4.5-9B");
      expect(chooseModel("MiniCPM-V-4.6-Instruct", list, BASE).model).toBe(
        "MiniCPM-V-4.6-Instruct",
      );
      expect(chooseModel("anything", list, BASE).model).toBe("anything");
    }
  });

  it("only warns when a list of one holds nothing of the family, as llama.cpp lists one file", () => {
    // A family is asked for by what the server calls its one model, so rows record that.
    expect(chooseModel("thinking", served("qwen2.5-vl-7b-q4.gguf"), BASE)).toEqual({
      model: "qwen2.5-vl-7b-q4.gguf",
      warning: `${BASE} lists only the model qwen2.5-vl-7b-q4.gguf, not the thinking model (MiniCPM-V-4.6-Thinking, MiniCPM-V-4.6-1.3B-think-0506_tau2_rl); going on, asking it for qwen2.5-vl-7b-q4.gguf, since servers that list one model (llama.cpp's) answer whatever is asked`,
    });
    // An id the user typed is sent as typed.
    expect(chooseModel("my-model", served("one.gguf"), BASE).model).toBe("my-model");
    expect(chooseModel("whatever", served("one.gguf"), BASE).warning).toMatch(
      /lists only the model one\.gguf, not whatever; going on/,
    );
  });

  it("answers a misspelt short name with the short name, where the list serves that family", () => {
    const list = served(...REVISION_MODELS["2026-07-23"].ids);
    expect(refusal(() => chooseModel("instrcut", list, BASE))).toMatch(
      /does not serve instrcut \(did you mean instruct\?\)/,
    );
  });

  it("refuses a family a list of several does not serve, naming the setting", () => {
    const list = served(...REVISION_MODELS["2026-05-18"].ids);
    expect(refusal(() => chooseModel("v4.5", list, BASE, "--model"))).toBe(
      `--model: ${BASE} does not serve the v4.5 model (MiniCPM-V-4.5-9B); it serves MiniCPM-V-4.6-Instruct, MiniCPM-V-4.6-Thinking, MiniCPM-o-4.5`,
    );
  });

  it("refuses an unknown id a list of several does not hold, with the closest ids", () => {
    const list = served(...REVISION_MODELS["2026-07-23"].ids);
    expect(refusal(() => chooseModel("MiniCPM-V-4.6-1C", list, BASE))).toBe(
      `model: ${BASE} does not serve MiniCPM-V-4.6-1C (did you mean MiniCPM-V-4.6-1B?); it serves ${list.map((each) => each.id).join(", ")}`,
    );
  });
});
