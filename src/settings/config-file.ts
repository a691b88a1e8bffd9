import { existsSync, readdirSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { readLimitedSync } from "../trust/read-limited.js";
import { closestName } from "../util/suggest.js";
import { SETTING_KEYS, type SettingKey } from "./table.js";

/**
 * The package's own config/ folder: the one beside the package.json above this module, which runs
 * both as src/settings/config-file.ts and as dist/settings/config-file.js, in a clone or in an installed copy.
 */
export const EXAMPLE_CONFIG_DIR = path.join(packageRoot(), "config");

function packageRoot(): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  for (let dir = here; ; dir = path.dirname(dir)) {
    if (existsSync(path.join(dir, "package.json"))) return dir;
    if (path.dirname(dir) === dir) return path.dirname(here);
  }
}

/** The names `--config NAME` accepts: the example configs shipped in config/, sorted. */
export function exampleConfigNames(dir: string = EXAMPLE_CONFIG_DIR): string[] {
  try {
    return readdirSync(dir)
      .filter((file) => file.endsWith(".json"))
      .map((file) => file.slice(0, -".json".length))
      .sort();
  } catch {
    return [];
  }
}

/**
 * Where `--config VALUE` points. A file that exists relative to the working folder always wins;
 * otherwise a bare name (no path separator, no .json) is an example config in config/.
 */
export function locateConfigFile(
  value: string,
  cwd: string,
  exampleDir: string,
): { file: string; shown: string; named: boolean } {
  const file = path.resolve(cwd, value);
  const bare = !/[\\/]/.test(value) && !value.toLowerCase().endsWith(".json");
  if (!bare || existsSync(file)) return { file, shown: value, named: false };
  const example = path.join(exampleDir, `${value}.json`);
  return { file: example, shown: example, named: true };
}

/**
 * Reads one config file. `named` when it was asked for by name (`--config vllm`): a missing one is
 * then an unknown name, reported with the names there are.
 */
export function readConfigFile(
  file: string,
  shown: string,
  problems: string[],
  exampleDir: string,
  named: boolean,
): Record<string, unknown> | null {
  const read = readLimitedSync(file);
  if (!read.ok && read.reason !== "unreadable") {
    problems.push(`--config ${shown}: ${read.problem}`);
    return null;
  }
  if (!read.ok) {
    const code = read.errno;
    const names = exampleConfigNames(exampleDir);
    const list = names.length > 0 ? names.join(", ") : "none found";
    if (named && code === "ENOENT") {
      const name = path.basename(file, ".json");
      problems.push(
        `--config: no file "${name}" here and no example config of that name; give a path to a JSON file, or one of: ${list}`,
      );
      return null;
    }
    // `--config config/vllm.json` from outside a clone: the example is there by name.
    const example = path.basename(shown).replace(/\.json$/i, "");
    const hint =
      code === "ENOENT" && names.includes(example)
        ? `; the example config of that name is --config ${example}`
        : "";
    problems.push(
      `--config: cannot read ${shown} (${code === "ENOENT" ? "no such file" : (code ?? read.problem)})${hint}`,
    );
    return null;
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(read.text);
  } catch (error) {
    problems.push(`${shown}: not valid JSON (${(error as Error).message})`);
    return null;
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    problems.push(`${shown}: expected a JSON object of settings, like {"model": "..."}`);
    return null;
  }
  const values: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(parsed)) {
    if (key === "$comment" || key.startsWith("//")) continue;
    if (!SETTING_KEYS.includes(key as SettingKey) && key !== "endpoints") {
      const known = [...SETTING_KEYS, "endpoints"];
      const near = closestName(key, known);
      problems.push(
        `${shown}: unknown key "${key}"${near ? ` (did you mean "${near}"?)` : ""}; known keys: ${known.join(", ")}`,
      );
      continue;
    }
    values[key] = value;
  }
  return values;
}
