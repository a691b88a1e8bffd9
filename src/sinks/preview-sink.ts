import { type FileSinkOptions, refuseSpecialFiles, remakesOf } from "./file-sink.js";
import { storedCaptions } from "./out-file/lookup.js";
import { readFinishedWork } from "./out-file/scan.js";
import { outColumns } from "./out-file/writers.js";
import { PromptTally } from "./prompt-tally.js";
import { recordKeys } from "./record-keys.js";
import { recordedRows } from "./recorded-rows.js";
import type { RecordSink } from "./sink.js";

/**
 * A dry run's sink: it reads what OUT already holds, so the preview skips what a real run would
 * skip, and writes, locks and repairs nothing.
 */
export function previewSink(options: FileSinkOptions): RecordSink {
  const { output, format, errorsPath, overwrite, nameSetting } = options;
  const columns = outColumns(options.properties, options.prompts, options.clips);
  const stored = storedCaptions(output, format, columns);
  const keys = recordKeys(options.recordRoot);
  const recorded = recordedRows(output, format, keys, columns);
  return {
    recorded: (imagePath) => (overwrite ? Promise.resolve(undefined) : recorded.get(imagePath)),
    // The same refusals and warnings as a real run, so the preview does not promise a run that
    // cannot start, nor hide what the real one would say.
    open: async (tasks) => {
      keys.learn(tasks);
      await refuseSpecialFiles(output, errorsPath);
      const keep = options.keepRows ? recorded.keep() : undefined;
      const prompts = new PromptTally(options.promptHash);
      const remakes = remakesOf(options);
      const finished = overwrite
        ? { done: new Set<string>(), hashes: new Set<string>(), repairedBytes: 0 }
        : await readFinishedWork(output, format, columns, {
            repair: false,
            afresh: `set ${nameSetting("overwrite")} to start a fresh one`,
            onRow: (row) => {
              keep?.(row);
              prompts.count(row.prompt_hash);
              remakes.see(row);
            },
          });
      remakes.apply(finished);
      const changed = remakes.redoing ? null : prompts.warning(output, nameSetting);
      if (changed) options.onWarning(changed);
      return remakes.finished(finished, tasks, keys.key, options.recordOnly === true);
    },
    stored: (sha256) => (overwrite ? Promise.resolve(undefined) : stored.get(sha256)),
    write: async () => {},
    fail: async () => {},
    close: async () => {},
  };
}
