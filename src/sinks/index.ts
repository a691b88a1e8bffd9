import path from "node:path";
import type { NameSetting } from "../errors.js";
import type { OutputFormat } from "../types.js";
import { FileSink } from "./file-sink.js";
import { type HfMetadataFormat, HfMetadataSink } from "./hf-metadata-sink.js";
import type { PromptColumns } from "./out-file/writers.js";
import { previewSink } from "./preview-sink.js";
import { type SidecarOptions, SidecarSink } from "./sidecar-sink.js";
import { combineSinks, type RecordSink, type Sink } from "./sink.js";
import { type WebDatasetOutOptions, WebDatasetSink } from "./webdataset-out.js";
import { removeStaleTemporaries } from "./write-whole.js";
import { type XmpNaming, XmpSink } from "./xmp-sink.js";

export interface OutputsOptions {
  output: string;
  format: OutputFormat;
  errorsPath: string;
  overwrite: boolean;
  csvFormulaGuard: boolean;
  dryRun: boolean;
  /** OUT is only the record of the other outputs (see FileSink). */
  recordOnly?: boolean | undefined;
  /** Record rows keyed relative to this folder (see FileSink). */
  recordRoot?: string | undefined;
  /** The run may caption clips: OUT has their columns (see FileSink). */
  clips?: boolean | undefined;
  sidecar?: SidecarOptions | undefined;
  /** Write `metadata.jsonl`/`.csv` for Hugging Face at the root of each folder input. */
  hfMetadata?: HfMetadataFormat | undefined;
  /** Merge the caption into an XMP sidecar per image, named this way. */
  xmp?: XmpNaming | undefined;
  /** Write each input shard again with its captions. */
  webdataset?: WebDatasetOutOptions | undefined;
  inputs: readonly string[];
  cwd: string;
  onWarning: (message: string) => void;
  nameSetting: NameSetting;
  /** A structured answer's properties: CSV columns of their own. */
  properties?: readonly string[] | undefined;
  /** Which prompt this run uses, to warn when OUT was made with another. */
  promptHash?: string | undefined;
  /** Which of OUT's rows to make again (`--redo`). */
  redo?: string | undefined;
  /** Several prompts' columns (`--prompts`): an image is done once its row answers them all. */
  prompts?: PromptColumns | undefined;
}

/** Every output as one sink, and the row the record held for an image when the run began. */
export type Outputs = Sink & Pick<RecordSink, "recorded">;

/**
 * Every output a run asked for, as one sink. OUT comes first: its row is the record the other
 * outputs are checked against when a run resumes, so each of them is written after it.
 */
export function openOutputs(options: OutputsOptions): Outputs {
  // Asked for by path later: by the outputs beside the images, and to finish a row of several prompts.
  const keepRows = Boolean(
    options.sidecar || options.xmp || options.hfMetadata || options.prompts || options.webdataset,
  );
  const record = options.dryRun
    ? previewSink({ ...options, keepRows })
    : new FileSink({ ...options, keepRows });
  const sinks: Sink[] = [record];
  if (options.sidecar) {
    sinks.push(
      new SidecarSink(options.sidecar, record.recorded, options.dryRun, options.onWarning),
    );
  }
  if (options.xmp) {
    sinks.push(
      new XmpSink(
        options.xmp,
        record.recorded,
        options.dryRun,
        options.nameSetting,
        options.onWarning,
      ),
    );
  }
  if (options.hfMetadata) {
    sinks.push(
      new HfMetadataSink(
        options.inputs,
        options.cwd,
        options.hfMetadata,
        record.recorded,
        options.dryRun,
        options.prompts?.names,
        options.onWarning,
      ),
    );
  }
  if (options.webdataset) {
    sinks.push(
      new WebDatasetSink(options.webdataset, record.recorded, options.dryRun, options.nameSetting),
    );
  }
  const combined = combineSinks(sinks);
  // Files beside the images are written through temporaries; a killed run's are swept once here.
  const sweep = !options.dryRun && Boolean(options.sidecar || options.xmp);
  return {
    open: async (tasks) => {
      if (sweep) await removeStaleTemporaries(tasks.map((task) => path.dirname(task.absPath)));
      return combined.open(tasks);
    },
    stored: (sha256) => combined.stored(sha256),
    write: (record, replace) => combined.write(record, replace),
    fail: (failure) => combined.fail(failure),
    close: () => combined.close(),
    recorded: record.recorded,
  };
}
