import path from "node:path";
import { UsageError } from "../errors.js";
import { readLimited } from "../trust/read-limited.js";
import { describeErrno, folderInputs } from "../util/folders.js";

/** Where the record of a run without -o lives: the first folder input, else the working directory. */
export async function recordFolder(inputs: string[], cwd: string): Promise<string> {
  return (await folderInputs(inputs, cwd))[0] ?? cwd;
}

/** The schema file `--json-schema` names, parsed; the library checks that it is a schema. */
export async function readJsonSchema(
  file: string | undefined,
  from: string,
): Promise<Record<string, unknown> | undefined> {
  if (file === undefined) return undefined;
  const text = await readNamedFile(file, from, "a JSON Schema file");
  let schema: unknown;
  try {
    schema = JSON.parse(text);
  } catch (error) {
    throw new UsageError([`${from}: ${file} is not valid JSON (${(error as Error).message})`]);
  }
  if (typeof schema !== "object" || schema === null || Array.isArray(schema)) {
    throw new UsageError([`${from}: ${file} holds no JSON object; a schema is one`]);
  }
  return schema as Record<string, unknown>;
}

/**
 * The prompts file `--prompts` names (JSON, or YAML: any name but .json), parsed, with each
 * `json_schema` that names a file (relative to the prompts file) read in its place; the library
 * checks the prompts.
 */
export async function readPromptsFile(
  file: string | undefined,
  from: string,
): Promise<Record<string, unknown> | undefined> {
  if (file === undefined) return undefined;
  const text = await readNamedFile(file, from, "a JSON or YAML file of prompts");
  let value: unknown;
  try {
    value =
      path.extname(file).toLowerCase() === ".json"
        ? JSON.parse(text)
        : ((await import("yaml")).parse(text) as unknown);
  } catch (error) {
    const kind = path.extname(file).toLowerCase() === ".json" ? "JSON" : "YAML";
    throw new UsageError([
      `${from}: ${file} is not valid ${kind} (${(error as Error).message.split("\n")[0]})`,
    ]);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new UsageError([
      `${from}: ${file} holds no object of named prompts, e.g. short: "One sentence about the image."`,
    ]);
  }
  const prompts: Record<string, unknown> = {};
  for (const [name, spec] of Object.entries(value as Record<string, unknown>)) {
    const schema =
      typeof spec === "object" && spec !== null
        ? (spec as Record<string, unknown>).json_schema
        : undefined;
    prompts[name] =
      typeof schema === "string"
        ? {
            ...(spec as Record<string, unknown>),
            json_schema: await readJsonSchema(
              path.resolve(path.dirname(file), schema),
              `${from}: ${name}.json_schema`,
            ),
          }
        : spec;
  }
  return prompts;
}

/** A file a setting names, read whole up to the cap a named file has; refused as `from` says. */
async function readNamedFile(file: string, from: string, what: string): Promise<string> {
  const read = await readLimited(file);
  if (!read.ok && read.reason !== "unreadable") {
    // A folder, a device, a pipe or a huge file: refused before more than the cap is read.
    throw new UsageError([`${from} ${file}: ${read.problem}; name ${what}`]);
  }
  if (!read.ok) {
    const code = read.errno;
    const why = code === "ENOENT" ? "no such file" : describeErrno(code ?? read.problem);
    throw new UsageError([`${from}: cannot read ${file} (${why}); name ${what}`]);
  }
  return read.text;
}

/** `--hf-metadata` describes folders: it needs one among the inputs, and OUT elsewhere. */
export async function checkHfInputs(inputs: string[], cwd: string, output: string | undefined) {
  const folders = await folderInputs(inputs, cwd);
  if (folders.length === 0) {
    throw new UsageError([
      "--hf-metadata writes metadata.jsonl at the root of each folder given as an input, and none of the inputs is a folder; name the dataset folder (caption photos/ --hf-metadata)",
    ]);
  }
  const out = output ? path.resolve(output) : null;
  if (out && folders.some((folder) => /^metadata\.(jsonl|csv)$/.test(path.relative(folder, out)))) {
    throw new UsageError([
      "-o/--output: that is the metadata file --hf-metadata writes; name OUT something else",
    ]);
  }
}
