import { randomBytes } from "node:crypto";
import { readFile, rename, rm } from "node:fs/promises";
import path from "node:path";
import { UsageError } from "../errors.js";
import { defaultErrorsPath } from "../output-format.js";
import { compileSchema } from "../prompts/structured.js";
import { TAGS_SCHEMA } from "../prompts/tags.js";
import type { CaptionRecord, FailureRecord, OutputFormat } from "../types.js";
import { openCaptionWriter, openJsonlWriter, type RecordWriter } from "../writers/index.js";
import { readSettingsFile } from "./queue-settings.js";
import { readDone, readShards, shardFiles } from "./shards.js";

export interface MergeRequest {
  dir: string;
  output: string;
  format: OutputFormat;
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
  errorsPath: string;
}

/**
 * The shards' outputs as one OUT: one row per image, shards in the order they were made and each
 * shard's rows by path, so merging the same shards twice gives the same file. The images that
 * failed go to the errors file beside OUT. Both are written whole (temporary file, rename).
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
  const schema = settings.tags ? TAGS_SCHEMA : settings.jsonSchema;
  const answer = schema === undefined ? undefined : compileSchema(schema, "caption");
  const properties = answer && !("problems" in answer) ? answer.properties : [];

  const errorsPath = defaultErrorsPath(request.output);
  const rowsTemp = temporaryBeside(request.output);
  const errorsTemp = temporaryBeside(errorsPath);
  let rows: RecordWriter<CaptionRecord> | null = null;
  let errors: RecordWriter<FailureRecord> | null = null;
  const report: MergeReport = {
    shards: finished.length,
    unfinished,
    rows: 0,
    failures: 0,
    errorsPath,
  };
  try {
    rows = await openCaptionWriter(rowsTemp, request.format, {
      properties,
      csvFormulaGuard: request.csvFormulaGuard,
    });
    errors = await openJsonlWriter<FailureRecord>(errorsTemp);
    const seen = new Set<string>();
    for (const shard of finished) {
      const files = shardFiles(request.dir, shard.id);
      const captions = byPath(await readRecords<CaptionRecord>(files.output));
      for (const record of captions) {
        // An image is in one shard only; a row twice in one output would be a bug, not data.
        if (seen.has(record.path)) continue;
        seen.add(record.path);
        await rows.write(record);
        report.rows += 1;
      }
      for (const failure of byPath(await readRecords<FailureRecord>(files.errors))) {
        if (seen.has(failure.path)) continue;
        seen.add(failure.path);
        await errors.write(failure);
        report.failures += 1;
      }
    }
    await rows.close();
    await errors.close();
    await rename(rowsTemp, request.output);
    await rename(errorsTemp, errorsPath);
    return report;
  } finally {
    await rows?.close().catch(() => {});
    await errors?.close().catch(() => {});
    await rm(rowsTemp, { force: true });
    await rm(errorsTemp, { force: true });
  }
}

/** A shard's JSONL rows; a torn last line (a worker killed mid-write) is not a row. */
async function readRecords<T>(file: string): Promise<T[]> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw error;
  }
  const records: T[] = [];
  for (const line of text.split("\n")) {
    if (line.trim() === "") continue;
    try {
      records.push(JSON.parse(line) as T);
    } catch {
      // Torn by a kill; the shard's next run captioned that image again.
    }
  }
  return records;
}

function byPath<T extends { path: string }>(records: T[]): T[] {
  return records.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

function temporaryBeside(file: string): string {
  return path.join(
    path.dirname(file),
    `.${path.basename(file)}.${randomBytes(4).toString("hex")}.tmp`,
  );
}
