import { rename, rm } from "node:fs/promises";
import path from "node:path";
import { splitMemberInput } from "../archive/containers.js";
import { isClipPath } from "../discover/extensions.js";
import type { NameSetting } from "../errors.js";
import { UsageError } from "../errors.js";
import { compileSchema } from "../prompts/structured.js";
import { TAGS_SCHEMA } from "../prompts/tags.js";
import { defaultErrorsPath } from "../settings/output-format.js";
import type { DatasetOutputs } from "../settings/outputs.js";
import type { RecordedCaption } from "../sinks/beside-image-sink.js";
import { HfMetadataSink } from "../sinks/hf-metadata-sink.js";
import { parquetRecordPath } from "../sinks/out-file/parquet-record.js";
import { writeParquetFromRecord } from "../sinks/out-file/parquet-write.js";
import {
  openCaptionWriter,
  openJsonlWriter,
  type RecordWriter,
} from "../sinks/out-file/writers.js";
import { SidecarSink } from "../sinks/sidecar-sink.js";
import { combineSinks, type Sink } from "../sinks/sink.js";
import { removeStaleTemporaries, temporaryPath } from "../sinks/write-whole.js";
import { XmpSink } from "../sinks/xmp-sink.js";
import type { CaptionRecord, FailureRecord, OutputFormat } from "../types.js";
import { type QueueSettings, readEnqueuedInputs, readSettingsFile } from "./queue-settings.js";
import { readDone, readShardRecords, readShards, shardFiles } from "./shards.js";

export interface MergeRequest {
  dir: string;
  /** OUT; none when only dataset outputs are asked for. */
  output: string | undefined;
  format: OutputFormat;
  /** The dataset outputs it may also write, as a run would beside the images. */
  outputs: Partial<DatasetOutputs>;
  nameSetting: NameSetting;
  /** Merge what the finished shards hold even though others are not finished. */
  partial: boolean;
  csvFormulaGuard: boolean;
}

export interface MergeReport {
  shards: number;
  /** Shards left out because they are not finished (with --partial). */
  unfinished: number;
  rows: number;
  failures: number;
  errorsPath: string | null;
  /** Images of finished shards with neither a caption nor a failure (should be none). */
  unaccounted: number;
  /**
   * Captioned images inside WebDataset shards or Parquet files, which have no folder to write
   * sidecars, XMP or metadata beside (when those are asked for): their captions are in OUT alone.
   */
  inside: number;
}

/**
 * The shards' outputs as one OUT: one row per image, shards in the order they were made and each
 * shard's rows by path, so merging the same shards twice gives the same file. The images that
 * failed go to the errors file beside OUT. Both are written whole (temporary file, rename). A
 * Parquet OUT gets its record as a run's has (parquet-record.ts), then is written from it, so a
 * run onto the merged OUT resumes from the merge.
 */
export async function mergeShards(request: MergeRequest): Promise<MergeReport> {
  const settings = await readSettingsFile(request.dir);
  const shards = await readShards(request.dir);
  if (!settings || shards.length === 0) {
    throw new UsageError([
      `${request.dir}: holds no shards (no queue.json and shards/*.json); name the --out DIR of caption enqueue`,
    ]);
  }
  const finished: typeof shards = [];
  for (const shard of shards) {
    if (await readDone(request.dir, shard.id)) finished.push(shard);
  }
  const unfinished = shards.length - finished.length;
  if (unfinished > 0 && !request.partial) {
    throw new UsageError([
      `${request.dir}: ${unfinished} of ${shards.length} shards are not finished yet (see caption status); wait for them, or merge what is done with --partial`,
    ]);
  }
  const parquet = request.format === "parquet";
  const schema = settings.tags ? TAGS_SCHEMA : settings.jsonSchema;
  const answer = schema === undefined ? undefined : compileSchema(schema, "caption");
  const properties = answer && !("problems" in answer) ? answer.properties : [];

  const output = request.output ?? null;
  const errorsPath = output ? defaultErrorsPath(output) : null;
  const rowsTemp = output ? temporaryPath(output) : null;
  const errorsTemp = errorsPath ? temporaryPath(errorsPath) : null;
  let rows: RecordWriter<CaptionRecord> | null = null;
  let errors: RecordWriter<FailureRecord> | null = null;
  const report: MergeReport = {
    shards: finished.length,
    unfinished,
    rows: 0,
    failures: 0,
    errorsPath,
    unaccounted: 0,
    inside: 0,
  };
  // Held for the dataset outputs only: with just OUT, rows stream through a shard at a time.
  const wantOutputs = Boolean(
    request.outputs.sidecar || request.outputs.hfMetadata || request.outputs.xmp,
  );
  const captioned = new Map<string, CaptionRecord>();
  // The shards' JSONL rows carry each clip's `video`; a merged CSV gets its columns, a queue of
  // clips named as files (without --video) too.
  const clips =
    settings.video?.include === true ||
    finished.some((shard) => shard.files.some((file) => isClipPath(file)));
  try {
    if (rowsTemp && errorsTemp) {
      // A Parquet OUT's rows go to its record first, as JSONL.
      rows = await openCaptionWriter(rowsTemp, parquet ? "jsonl" : request.format, {
        properties,
        clips,
        csvFormulaGuard: request.csvFormulaGuard,
      });
      errors = await openJsonlWriter<FailureRecord>(errorsTemp);
    }
    for (const shard of finished) {
      const held = await readShardRecords(shardFiles(request.dir, shard.id));
      for (const record of held.rows) {
        if (wantOutputs) captioned.set(record.path, record);
        await rows?.write(record);
      }
      for (const failure of held.failures) await errors?.write(failure);
      report.rows += held.rows.length;
      report.failures += held.failures.length;
      // Every image of a finished shard has a row or a failure; one with neither is said.
      report.unaccounted += Math.max(
        0,
        shard.files.length - held.rows.length - held.failures.length,
      );
    }
    await rows?.close();
    await errors?.close();
    if (output && rowsTemp && errorsPath && errorsTemp) {
      if (parquet) {
        const record = parquetRecordPath(output);
        await rename(rowsTemp, record);
        await writeParquetFromRecord(record, output, { properties, clips });
      } else {
        await rename(rowsTemp, output);
      }
      await rename(errorsTemp, errorsPath);
    }
    report.inside = await writeDatasetOutputs(request, settings, captioned);
    return report;
  } finally {
    await rows?.close().catch(() => {});
    await errors?.close().catch(() => {});
    if (rowsTemp) await rm(rowsTemp, { force: true });
    if (errorsTemp) await rm(errorsTemp, { force: true });
  }
}

/**
 * Sidecars, XMP and Hugging Face metadata for the merged captions, through the same sinks a run
 * writes them with: each completes what it lacks from the record (here, the merged rows) without
 * a request, leaves what it already holds, and never clobbers a file the user wrote.
 */
async function writeDatasetOutputs(
  request: MergeRequest,
  settings: QueueSettings,
  captioned: Map<string, CaptionRecord>,
): Promise<number> {
  const { sidecar, hfMetadata, xmp } = request.outputs;
  if (!sidecar && !hfMetadata && !xmp) return 0;
  const recorded: RecordedCaption = async (imagePath) => {
    const row = captioned.get(imagePath);
    return row ? { ...row, prompt_hash: row.prompt_hash ?? null } : undefined;
  };
  const sinks: Sink[] = [];
  if (sidecar) sinks.push(new SidecarSink(sidecar, recorded));
  if (xmp) sinks.push(new XmpSink(xmp, recorded, false, request.nameSetting));
  if (hfMetadata) {
    const inputs = (await readEnqueuedInputs(request.dir)) ?? [];
    sinks.push(new HfMetadataSink(inputs, settings.cwd, hfMetadata, recorded));
  }
  const sink = combineSinks(sinks);
  // An image inside a shard or a Parquet file has no folder to write beside: OUT holds it.
  const tasks = [...captioned.keys()]
    .filter((imagePath) => !splitMemberInput(imagePath))
    .map((imagePath) => ({ path: imagePath, absPath: path.resolve(settings.cwd, imagePath) }));
  try {
    await removeStaleTemporaries(tasks.map((task) => path.dirname(task.absPath)));
    await sink.open(tasks);
  } finally {
    await sink.close();
  }
  return captioned.size - tasks.length;
}
