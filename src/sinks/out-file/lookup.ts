import { stat } from "node:fs/promises";
import type { OutputFormat } from "../../types.js";
import { rowsSource } from "./parquet-record.js";
import { scanOutput } from "./scan.js";
import type { StoredCaption } from "./stored-caption.js";

/** Every complete row of OUT by content hash; read only when a copy of a finished image turns up. */
export async function readCaptionsByHash(
  output: string,
  outputFormat: OutputFormat,
  columns: readonly string[],
): Promise<Map<string, StoredCaption>> {
  const byHash = new Map<string, StoredCaption>();
  const { file: path, format } = await rowsSource(output, outputFormat);
  const size = (await stat(path)).size;
  await scanOutput(path, size, format, columns, (row) => {
    if (row.sha256) byHash.set(row.sha256, row);
  });
  return byHash;
}

/** Every complete row of OUT by path; empty when OUT does not exist. */
export async function readCaptionsByPath(
  output: string,
  outputFormat: OutputFormat,
  columns: readonly string[],
): Promise<Map<string, StoredCaption>> {
  const byPath = new Map<string, StoredCaption>();
  const { file: path, format } = await rowsSource(output, outputFormat);
  const size = await stat(path).then(
    (info) => info.size,
    () => 0,
  );
  await scanOutput(path, size, format, columns, (row) => {
    byPath.set(row.path, row);
  });
  return byPath;
}

/**
 * Looks captions up by content hash, reading OUT once and again only after it has grown. Copies
 * of earlier images are rare, so OUT is not held in memory until the first one turns up.
 */
export function storedCaptions(
  path: string,
  format: OutputFormat,
  columns: readonly string[],
): { get(sha256: string): Promise<StoredCaption | undefined>; forget(): void } {
  let byHash: Promise<Map<string, StoredCaption>> | null = null;
  return {
    async get(sha256) {
      byHash ??= readCaptionsByHash(path, format, columns).catch(() => new Map());
      return (await byHash).get(sha256);
    },
    forget() {
      byHash = null;
    },
  };
}
