import path from "node:path";
import { parseTemplate } from "../prompts/template.js";
import { readLimitedSync } from "../trust/read-limited.js";
import { DEFAULT_PROMPT } from "./defaults.js";
import type { SettingKey } from "./table.js";

/** The layer that set the prompt, and whether as text or as a file to read. */
export interface PromptSource {
  layer: {
    describe: (key: SettingKey) => string;
    baseDir: string;
    values: Record<string, unknown>;
  };
  key: "prompt" | "promptFile";
}

/**
 * The prompt a run sends: the default, or the most specific layer's text or file. Its problems
 * (an empty or unreadable file, a bad template) name the flag, key or file it came from.
 */
export function resolvePrompt(promptFrom: PromptSource | null, problems: string[]): string {
  let prompt = DEFAULT_PROMPT;
  if (promptFrom?.key === "prompt") prompt = promptFrom.layer.values.prompt as string;
  if (promptFrom?.key === "promptFile") {
    const file = path.resolve(
      promptFrom.layer.baseDir,
      promptFrom.layer.values.promptFile as string,
    );
    const where = promptFrom.layer.describe("promptFile");
    const read = readLimitedSync(file);
    if (read.ok) {
      prompt = read.text.trim();
      if (prompt === "") problems.push(`${where}: ${file} is empty`);
    } else if (read.reason === "unreadable") {
      problems.push(`${where}: cannot read ${file} (${read.errno ?? read.problem})`);
    } else {
      // A device, a pipe, a folder or a huge file: refused before more than the cap is read.
      problems.push(`${where} ${String(promptFrom.layer.values.promptFile)}: ${read.problem}`);
    }
  }
  if (promptFrom?.key === "prompt" && prompt.trim() === "") {
    problems.push(`${promptFrom.layer.describe("prompt")}: the prompt is empty`);
  }
  // Checked here as well as by the library, to name the flag, key or file the prompt came from.
  const template = parseTemplate(prompt);
  if (promptFrom && "problems" in template) {
    for (const problem of template.problems) {
      problems.push(`${promptFrom.layer.describe(promptFrom.key)}: ${problem}`);
    }
  }
  return prompt;
}
