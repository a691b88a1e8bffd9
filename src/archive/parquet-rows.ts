import {
  type AsyncBuffer,
  asyncBufferFromFile,
  type FileMetaData,
  parquetMetadataAsync,
  parquetReadObjects,
  parquetSchema,
  type SchemaTree,
} from "hyparquet";
import { compressors } from "hyparquet-compressors";
import { CaptionError } from "../errors.js";
import { READ_WHOLE_LIMIT } from "../prepare/hash.js";
import { openRegularFile } from "../trust/read-limited.js";

/** A Parquet file that cannot be read as one: its rows are not captioned, its row says why. */
export class ParquetError extends CaptionError {
  constructor(message: string) {
    super("parquet_unreadable", message);
    this.name = "ParquetError";
  }
}

/** A footer larger than this is no dataset's schema but an attack on memory. */
const MAX_FOOTER = 64 * 1024 * 1024;
/**
 * A row group's image column is decoded whole, up to this: Hugging Face writes row groups of a
 * hundred images or so, tens of megabytes; two are kept at once.
 */
const MAX_GROUP_BYTES = 512 * 1024 * 1024;
/** Rows listed per file at most. */
const MAX_ROWS = 4_000_000;

interface ParquetImages {
  /** The column holding the images. */
  column: string;
  rows: number;
}

/**
 * The image column of a Parquet file and how many rows it has. The column is Hugging Face's
 * Image feature (a struct of `bytes` and `path`) or raw bytes (BYTE_ARRAY that is not text):
 * the one named `image` if there is such, else the first of them, a struct before raw bytes.
 */
export async function indexParquet(absPath: string): Promise<ParquetImages> {
  // Listed afresh: a file replaced since the last run is not read by its old footer.
  recentFiles.delete(absPath);
  const { metadata } = await openParquet(absPath);
  const rows = Number(metadata.num_rows);
  if (rows > MAX_ROWS) throw new ParquetError(`${rows} rows: more than ${MAX_ROWS} are not read`);
  const columns = parquetSchema(metadata).children;
  const kinds = columns
    .map((child) => ({ name: child.element.name, kind: imageKind(child) }))
    .filter((column) => column.kind !== null);
  const chosen =
    kinds.find((column) => column.name === "image") ??
    kinds.find((column) => column.kind === "struct") ??
    kinds[0];
  if (!chosen) {
    throw new ParquetError(
      `no image column: no struct of bytes and path (Hugging Face's Image) and no binary column among ${columns.map((c) => c.element.name).join(", ")}`,
    );
  }
  return { column: chosen.name, rows };
}

function imageKind(node: SchemaTree): "struct" | "bytes" | null {
  const bytes = node.children.find((child) => child.element.name === "bytes");
  if (bytes && isBinary(bytes)) return "struct";
  return node.children.length === 0 && isBinary(node) ? "bytes" : null;
}

function isBinary(node: SchemaTree): boolean {
  const { type, converted_type, logical_type } = node.element;
  return (
    type === "BYTE_ARRAY" &&
    node.children.length === 0 &&
    converted_type === undefined &&
    logical_type === undefined
  );
}

interface OpenParquet {
  file: AsyncBuffer;
  metadata: FileMetaData;
}

/** Files opened lately, by path: each row read would otherwise parse the footer again. */
const recentFiles = new Map<string, Promise<OpenParquet>>();
const RECENT_FILES = 4;

function openParquet(absPath: string): Promise<OpenParquet> {
  let opened = recentFiles.get(absPath);
  if (!opened) {
    opened = readFooter(absPath);
    remember(recentFiles, absPath, opened, RECENT_FILES);
  }
  return opened;
}

/** Keeps `value` among the `most` latest of `recent`; a failure is not kept. */
function remember<T>(
  recent: Map<string, Promise<T>>,
  key: string,
  value: Promise<T>,
  most: number,
) {
  recent.set(key, value);
  value.catch(() => recent.delete(key));
  while (recent.size > most) {
    const oldest = recent.keys().next().value;
    if (oldest === undefined) break;
    recent.delete(oldest);
  }
}

/** Checks the footer's length before hyparquet reads it, so a hostile file cannot ask for 4 GB. */
async function readFooter(absPath: string): Promise<OpenParquet> {
  let tail: Buffer;
  let size: number;
  try {
    const handle = await openRegularFile(absPath);
    try {
      size = (await handle.stat()).size;
      tail = Buffer.alloc(8);
      if (size >= 8) await handle.read(tail, 0, 8, size - 8);
    } finally {
      await handle.close();
    }
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new ParquetError(
      code === "ENOTREG"
        ? "not a regular file (a pipe or a device named like a Parquet file)"
        : `cannot open it: ${code ?? error}`,
    );
  }
  if (size < 12 || tail.subarray(4).toString("latin1") !== "PAR1") {
    throw new ParquetError("not a Parquet file (no PAR1 footer)");
  }
  const footer = tail.readUInt32LE(0);
  if (footer > MAX_FOOTER || footer > size - 12) {
    throw new ParquetError(`a footer of ${footer} bytes, more than the file or the cap allows`);
  }
  try {
    const file = await asyncBufferFromFile(absPath);
    return { file, metadata: await parquetMetadataAsync(file) };
  } catch (error) {
    throw new ParquetError(`its footer cannot be read: ${(error as Error).message}`);
  }
}

/**
 * Row groups decoded lately, their image column only. Rows are read in order by a few readers at
 * once, so the last few groups serve them all; a group is decoded once, not once per row.
 */
const recentGroups = new Map<string, Promise<unknown[]>>();
const RECENT_GROUPS = 2;

/** The image bytes of one row. Throws a CaptionError when the row holds none. */
export async function readParquetCell(
  absPath: string,
  member: { row: number; column: string },
): Promise<Buffer> {
  const { file, metadata } = await openParquet(absPath);
  let start = 0;
  let group = 0;
  for (const rowGroup of metadata.row_groups) {
    const rows = Number(rowGroup.num_rows);
    if (member.row < start + rows) break;
    start += rows;
    group += 1;
  }
  if (group >= metadata.row_groups.length) {
    throw new ParquetError(
      `row ${member.row} is past the file's end: it changed since it was listed`,
    );
  }
  const rowGroup = metadata.row_groups[group];
  const end = start + Number(rowGroup?.num_rows ?? 0);
  // Decoded whole: a few kilobytes of ZSTD may say they are gigabytes, which are not made.
  const unpacked = (rowGroup?.columns ?? [])
    .filter((chunk) => chunk.meta_data?.path_in_schema[0] === member.column)
    .reduce((sum, chunk) => sum + Number(chunk.meta_data?.total_uncompressed_size ?? 0), 0);
  if (unpacked > MAX_GROUP_BYTES) {
    throw new ParquetError(
      `row group ${group}'s images are ${unpacked} bytes decompressed, more than the ${MAX_GROUP_BYTES} one is read up to`,
    );
  }
  const cacheKey = `${absPath}\0${group}\0${member.column}`;
  let values = recentGroups.get(cacheKey);
  if (!values) {
    values = parquetReadObjects({
      file,
      metadata,
      // ZSTD (Polars' default), GZIP, Brotli and LZ4 besides hyparquet's own Snappy.
      compressors,
      columns: [member.column],
      rowStart: start,
      rowEnd: end,
      utf8: false,
    }).then((rows) => rows.map((row) => row[member.column]));
    remember(recentGroups, cacheKey, values, RECENT_GROUPS);
  }
  const cell = (
    await values.catch((error: Error) => {
      throw new ParquetError(`row group ${group} cannot be read: ${error.message}`);
    })
  )[member.row - start];
  const bytes = cellBytes(cell);
  if (!bytes) throw new CaptionError("no_image", `row ${member.row} holds no image bytes`);
  if (bytes.length > READ_WHOLE_LIMIT) {
    throw new CaptionError(
      "member_too_large",
      `row ${member.row}'s image is ${bytes.length} bytes; an image is read whole up to ${READ_WHOLE_LIMIT}`,
    );
  }
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function cellBytes(cell: unknown): Uint8Array | null {
  if (cell instanceof Uint8Array) return cell;
  if (cell !== null && typeof cell === "object" && "bytes" in cell) {
    const bytes = (cell as { bytes: unknown }).bytes;
    if (bytes instanceof Uint8Array) return bytes;
  }
  return null;
}
