import path from "node:path";
import { UsageError } from "../../errors.js";
import { mergeShards } from "../../scale/merge.js";
import { validateLayer } from "../../settings/check.js";
import { flagOf } from "../../settings/naming.js";
import { chooseOutputFormat } from "../../settings/output-format.js";
import { checkDatasetOutputs } from "../../settings/outputs.js";
import { SETTING_SPECS, settingsOf } from "../../settings/table.js";
import type { CommandIo } from "../command-io.js";
import { exitCodeOf } from "../exit-codes.js";

/** `caption merge DIR -o OUT`: the shards' captions as one file. */
export async function run(
  args: Record<string, unknown>,
  { context, reporter }: CommandIo,
): Promise<number> {
  const dir = path.resolve(context.cwd, String(args.dir));
  // The settings merge takes, from the table: each checked, then how they go together.
  const problems: string[] = [];
  const values = Object.fromEntries(settingsOf("merge").map((key) => [key, args[key]]));
  const flags = validateLayer(
    { describe: (key) => SETTING_SPECS[key].flag, values, typed: true },
    problems,
  );
  const outputs = checkDatasetOutputs(flags, flagOf, problems);
  if (problems.length > 0) throw new UsageError(problems);
  const given = flags.output !== undefined;
  if (!given && !outputs.sidecar && !outputs.hfMetadata && !outputs.xmp) {
    throw new UsageError([
      "-o/--output is required (or --sidecar, --hf-metadata, --xmp): the CSV, JSONL or Parquet file to merge into",
    ]);
  }
  const output = flags.output === undefined ? undefined : path.resolve(context.cwd, flags.output);
  const format = output ? (await chooseOutputFormat(output, undefined)).format : "jsonl";
  const report = await mergeShards({
    dir,
    output,
    format,
    outputs,
    nameSetting: flagOf,
    partial: args.partial === true,
    csvFormulaGuard: flags.csvFormulaGuard === true,
  });
  const into = [
    output ? path.relative(context.cwd, output) || output : null,
    outputs.sidecar ? "sidecars" : null,
    outputs.xmp ? "XMP sidecars" : null,
    outputs.hfMetadata ? "metadata files" : null,
  ].filter(Boolean);
  const errors = report.errorsPath
    ? ` → ${path.relative(context.cwd, report.errorsPath)}`
    : " (not written without -o)";
  reporter.say(
    `merged ${report.shards} shards: ${report.rows} captions → ${into.join(", ")}, ${report.failures} failures${errors}${report.unfinished ? ` (${report.unfinished} unfinished shards left out)` : ""}`,
    "info",
  );
  if (report.inside > 0) {
    reporter.say(
      `${report.inside} captioned ${report.inside === 1 ? "image lies" : "images lie"} inside shards or Parquet files, with no folder to write a sidecar, XMP or metadata beside: their captions are in OUT only`,
      "warn",
    );
  }
  if (report.unaccounted > 0) {
    reporter.say(
      `${report.unaccounted} images of finished shards have neither a caption nor a failure row; remove those shards' .done.json files and enqueue again to caption them`,
      "warn",
    );
  }
  return exitCodeOf({ mergedAll: report.failures === 0 && report.unaccounted === 0 });
}
