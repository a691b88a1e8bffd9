import { readdir } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { isFamilyAlias } from "../../src/send/model-families.js";
import { exampleConfigNames } from "../../src/settings/config-file.js";
import { resolveConfig } from "../../src/settings/resolve.js";

const CONFIG_DIR = fileURLToPath(new URL("../../config/", import.meta.url));

describe("example configs", async () => {
  const files = (await readdir(CONFIG_DIR)).filter((f) => f.endsWith(".json"));

  it("cover the hosted API, vLLM, llama-server and Ollama", () => {
    expect(files).toEqual(
      expect.arrayContaining([
        "hosted-minicpm.json",
        "vllm.json",
        "llama-server.json",
        "ollama.json",
      ]),
    );
  });

  it.each(files)("%s loads without a problem", (file) => {
    const config = resolveConfig({
      flags: {},
      env: {},
      cwd: CONFIG_DIR,
      configFile: path.join(CONFIG_DIR, file),
    });
    expect(config.baseUrl).toMatch(/^https?:\/\/.+\/v1$/);
    expect(config.model).not.toBe("");
  });

  it.each(files.filter((file) => file.startsWith("hosted-")))(
    "%s names its model by family, so the provider renaming its ids does not break it",
    (file) => {
      const config = resolveConfig({
        flags: {},
        env: {},
        cwd: "/",
        configFile: path.join(CONFIG_DIR, file),
      });
      expect(isFamilyAlias(config.model), config.model).toBe(true);
    },
  );

  it.each(files)("%s loads by its name too, from any folder", (file) => {
    const name = file.replace(/\.json$/, "");
    expect(exampleConfigNames()).toContain(name);
    const byPath = resolveConfig({
      flags: {},
      env: {},
      cwd: CONFIG_DIR,
      configFile: path.join(CONFIG_DIR, file),
    });
    const byName = resolveConfig({ flags: {}, env: {}, cwd: "/", configFile: name });
    // The same settings; messages name a flag for the package's copy, the file for one given by path.
    expect({ ...byName, settingFrom: {} }).toEqual({ ...byPath, settingFrom: {} });
    expect(byName.settingFrom).toEqual({});
  });
});
