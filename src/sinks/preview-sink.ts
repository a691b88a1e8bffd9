import type { NameSetting } from "../errors.js";
import { readFinishedWork, storedCaptions } from "../resume.js";
import type { OutputFormat } from "../types.js";
import { recordedRows, recordKeys, refuseSpecialFiles } from "./file-sink.js";
import type { RecordSink } from "./sink.js";

/**
 * A dry run's sink: it reads what OUT already holds, so the preview skips what a real run would
 * skip, and writes, locks and repairs nothing.
 */
export function previewSink(
  output: string,
  format: OutputFormat,
  errorsPath: string,
  overwrite: boolean,
  recordOnly: boolean | undefined,
  recordRoot: string | undefined,
  keepRows: boolean,
  nameSetting: NameSetting,
  columns: readonly string[],
): RecordSink {
  const stored = storedCaptions(output, format, columns);
  const keys = recordKeys(recordRoot);
  const recorded = recordedRows(output, format, keys, columns);
  return {
    recorded: (imagePath) => (overwrite ? Promise.resolve(undefined) : recorded.get(imagePath)),
    // The same refusals as a real run, so the preview does not promise a run that cannot start.
    open: async (tasks) => {
      keys.learn(tasks);
      await refuseSpecialFiles(output, errorsPath);
      const finished = overwrite
        ? { done: new Set<string>(), hashes: new Set<string>(), repairedBytes: 0 }
        : await readFinishedWork(output, format, columns, {
            repair: false,
            afresh: `set ${nameSetting("overwrite")} to start a fresh one`,
            onRow: keepRows ? recorded.keep() : undefined,
          });
      return recordOnly ? { ...finished, done: new Set(tasks.map((task) => task.path)) } : finished;
    },
    stored: (sha256) => (overwrite ? Promise.resolve(undefined) : stored.get(sha256)),
    write: async () => {},
    fail: async () => {},
    close: async () => {},
  };
}
