import type { ArchiveMember } from "../types.js";
import type { ContainerKind } from "./containers.js";
import { indexParquet } from "./parquet-rows.js";
import { indexTar } from "./tar-index.js";
import { groupSamples, imageMember } from "./webdataset.js";

/** The images inside one container, in its order, each named by what follows its `#`. */
export interface Expansion {
  images: { name: string; member: ArchiveMember }[];
  /** Samples of a shard with no image member: not captioned, counted. */
  skipped: number;
}

/**
 * Lists the images of a shard (one per sample with an image member) or of a Parquet file (one
 * per row). Throws ShardError or ParquetError when the container cannot be read as one.
 */
export async function expandContainer(absPath: string, kind: ContainerKind): Promise<Expansion> {
  if (kind === "parquet") {
    const { column, rows } = await indexParquet(absPath);
    const images = Array.from({ length: rows }, (_, row) => ({
      name: String(row),
      member: { kind: "parquet", row, column, index: row } as const,
    }));
    return { images, skipped: 0 };
  }
  const { samples } = groupSamples(await indexTar(absPath));
  const images: Expansion["images"] = [];
  let skipped = 0;
  samples.forEach((sample, index) => {
    const image = imageMember(sample);
    if (!image) {
      skipped += 1;
      return;
    }
    images.push({
      name: sample.key,
      member: {
        kind: "tar",
        key: sample.key,
        name: image.name,
        offset: image.offset,
        size: image.size,
        exts: sample.members.map((member) => member.ext),
        index,
      },
    });
  });
  return { images, skipped };
}
