import { execFileSync } from "node:child_process";
import { readFile, rename, writeFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { optionReference, REFERENCE_BEGIN, REFERENCE_END } from "../src/cli/option-reference.js";

// Rewrites the generated part of docs/options.md from the settings table; the prose stays.
const file = fileURLToPath(new URL("../docs/options.md", import.meta.url));
const text = await readFile(file, "utf8");
const begin = text.indexOf(REFERENCE_BEGIN);
const end = text.indexOf(REFERENCE_END);
if (begin < 0 || end < begin) {
  throw new Error(`${file}: no generated section (${REFERENCE_BEGIN} … ${REFERENCE_END})`);
}
const next = text.slice(0, begin) + optionReference() + text.slice(end + REFERENCE_END.length);
await writeFile(`${file}.tmp`, next);
await rename(`${file}.tmp`, file);
// Biome lays the tables out; the test compares them with the padding taken out.
execFileSync("npx", ["biome", "format", "--write", file], { stdio: "ignore" });
const after = await readFile(file, "utf8");
process.stdout.write(
  after === text ? "docs/options.md was up to date\n" : "docs/options.md rewritten\n",
);
