import { CaptionError } from "../errors.js";
import { READ_WHOLE_LIMIT } from "../prepare/hash.js";
import { openRegularFile } from "../trust/read-limited.js";
import type { ImageTask } from "../types.js";
import { readParquetCell } from "./parquet-rows.js";

/**
 * The bytes of an image inside a shard or a Parquet file, read in place: a shard's member from
 * its offset, a Parquet row from its row group. Throws a CaptionError (its row's code) when the
 * container changed under the run or the image is larger than an image is read whole.
 */
export async function readMember(task: ImageTask): Promise<Buffer> {
  const member = task.member;
  if (!member) throw new Error(`${task.path} is not inside a shard or a Parquet file`);
  if (member.kind === "parquet") return readParquetCell(task.absPath, member);
  if (member.size > READ_WHOLE_LIMIT) {
    throw new CaptionError(
      "member_too_large",
      `${member.name} is ${member.size} bytes in the shard; an image is read whole up to ${READ_WHOLE_LIMIT}`,
    );
  }
  const file = await openRegularFile(task.absPath).catch((error: NodeJS.ErrnoException) => {
    throw new CaptionError(
      "shard_unreadable",
      `cannot open the shard: ${error.code ?? error.message}`,
    );
  });
  try {
    const bytes = Buffer.allocUnsafe(member.size);
    const { bytesRead } = await file.read(bytes, 0, member.size, member.offset);
    if (bytesRead < member.size) {
      throw new CaptionError(
        "shard_unreadable",
        `the shard ends inside ${member.name}: it changed since the run listed it`,
      );
    }
    return bytes;
  } finally {
    await file.close();
  }
}
