import { IMAGE_EXTENSIONS } from "../discover/extensions.js";
import type { TarEntry } from "./tar-index.js";

/** The members of a shard sharing one key: one sample, in the order the shard holds them. */
export interface Sample {
  key: string;
  members: SampleMember[];
}

interface SampleMember extends TarEntry {
  /** What follows the key: `jpg`, `txt`, `json`, `seg.png`. */
  ext: string;
}

const IMAGE_SET = new Set<string>(IMAGE_EXTENSIONS);

/**
 * WebDataset's split of a member's name: the key is the name up to the first dot of its last
 * part (`a/b/000001.seg.png` is key `a/b/000001`, extension `seg.png`). Null for a name with
 * no dot, which belongs to no sample.
 */
export function splitMemberName(name: string): { key: string; ext: string } | null {
  const slash = name.lastIndexOf("/");
  const dot = name.indexOf(".", slash + 1);
  if (dot <= slash + 1 || dot === name.length - 1) return null;
  return { key: name.slice(0, dot), ext: name.slice(dot + 1) };
}

/**
 * The shard's samples in the order their first members appear. A key met again further on is the
 * same sample (a well-made shard keeps a sample's members together; one that does not still
 * loses none of them).
 */
export function groupSamples(entries: readonly TarEntry[]): {
  samples: Sample[];
  /** Members whose names carry no key (no dot): copied to an output shard, captioned never. */
  loose: TarEntry[];
} {
  const byKey = new Map<string, Sample>();
  const loose: TarEntry[] = [];
  for (const entry of entries) {
    const split = splitMemberName(entry.name);
    if (!split) {
      loose.push(entry);
      continue;
    }
    let sample = byKey.get(split.key);
    if (!sample) {
      sample = { key: split.key, members: [] };
      byKey.set(split.key, sample);
    }
    sample.members.push({ ...entry, ext: split.ext });
  }
  return { samples: [...byKey.values()], loose };
}

/**
 * The member captioned: the sample's first file whose extension names an image; null when none
 * does (a link named `x.jpg` is not read: it could point anywhere).
 */
export function imageMember(sample: Sample): SampleMember | null {
  return (
    sample.members.find(
      (member) => member.type === "file" && IMAGE_SET.has(member.ext.toLowerCase()),
    ) ?? null
  );
}
