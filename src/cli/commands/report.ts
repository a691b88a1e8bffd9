import path from "node:path";
import { UsageError } from "../../errors.js";
import { writeReport } from "../../report/write-report.js";
import {
  defaultErrorsPath,
  formatFromContent,
  formatFromName,
} from "../../settings/output-format.js";
import { parquetRecordPath } from "../../sinks/out-file/parquet-record.js";
import { statOrNull } from "../../util/folders.js";
import type { CommandIo } from "../command-io.js";
import { exitCodeOf } from "../exit-codes.js";

/** Where the page goes when -o is not given: beside OUT, named after it. */
export function defaultPagePath(output: string): string {
  const parsed = path.parse(output);
  return path.join(parsed.dir, `${parsed.name}.report.html`);
}

/** `caption report OUT [-o page.html]`: a page to look at every image beside its caption. */
export async function run(
  args: Record<string, unknown>,
  { context, reporter }: CommandIo,
): Promise<number> {
  const given = String(args.out ?? "");
  const output = path.resolve(context.cwd, given);
  // A Parquet OUT's rows are in its record until the run writes it (one killed first).
  const inRecord =
    formatFromName(output) === "parquet" &&
    (await statOrNull(parquetRecordPath(output)))?.isFile() === true;
  if (!(await statOrNull(output))?.isFile() && !inRecord) {
    throw new UsageError([`${given}: no such file; name the OUT (-o) of a caption run`]);
  }
  const format = (await formatFromContent(output)) ?? formatFromName(output) ?? "csv";
  const page = path.resolve(
    context.cwd,
    typeof args.output === "string" && args.output !== "" ? args.output : defaultPagePath(output),
  );
  if (!/\.html?$/i.test(page)) {
    throw new UsageError([
      `-o/--output: expected a .html file, got ${JSON.stringify(args.output)}`,
    ]);
  }
  const errorsGiven = typeof args.errors === "string" && args.errors !== "";
  const errorsPath = errorsGiven
    ? path.resolve(context.cwd, String(args.errors))
    : defaultErrorsPath(output);
  if (errorsGiven && !(await statOrNull(errorsPath))?.isFile()) {
    throw new UsageError([
      `--errors: ${String(args.errors)}: no such file; name the run's errors file`,
    ]);
  }
  const live = context.stderr.isTTY === true;
  const result = await writeReport({
    output,
    format,
    errorsPath,
    page,
    cwd: context.cwd,
    onProgress: live
      ? (rows, thumbs) =>
          context.stderr.write(
            `\r\x1b[Kreport: ${rows} rows, ${thumbs.made + thumbs.reused} thumbnails${thumbs.failed ? `, ${thumbs.failed} unreadable` : ""}`,
          )
      : undefined,
  });
  if (live) context.stderr.write("\r\x1b[K");
  const shown = path.relative(context.cwd, page) || page;
  const { summary } = result;
  if (result.skipped > 0) {
    reporter.say(
      `${result.skipped} lines of ${given} or its errors file are no record and were left out`,
      "warn",
    );
  }
  // Not one could be read: most likely the report runs from another folder than the run did.
  if (result.unreadable > 0 && result.made + result.reused === 0) {
    reporter.say(
      `no image of ${given} could be read for a thumbnail: run caption report from the folder the run ran in`,
      "warn",
    );
  }
  reporter.say(
    `report: ${summary.captioned} captioned, ${summary.failed} failed, ${summary.flaggedRows} flagged → ${shown} (thumbnails in ${path.relative(context.cwd, result.thumbnails) || result.thumbnails}: ${result.made} made, ${result.reused} kept${result.unreadable ? `, ${result.unreadable} unreadable` : ""})`,
    "info",
  );
  return exitCodeOf({ done: true });
}
