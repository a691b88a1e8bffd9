/**
 * Which records of a file are each image's latest: a run appends a row that replaces an older one
 * (`--redo`) and rewrites OUT at its end, but a reader may meet the file before that (a run still
 * going, one killed first). The later row wins for every reader.
 *
 * In bounded memory, since the review page reads OUT of a million rows in a few megabytes: a first
 * pass marks each key in a fixed bit set, and the keys met again in a second; only those (the
 * images written twice, and the rare key the bits mistake for one) are then counted exactly.
 */
export async function latestRows<T>(
  records: () => AsyncIterable<T>,
  keyOf: (record: T) => string | null,
): Promise<(record: T, index: number) => boolean> {
  const seen = new BitSet();
  const twice = new BitSet();
  let any = false;
  for await (const record of records()) {
    const key = keyOf(record);
    if (key === null) continue;
    if (seen.has(key)) {
      twice.add(key);
      any = true;
    } else seen.add(key);
  }
  // The usual file, one row per image: every record is the latest.
  if (!any) return () => true;
  const last = new Map<string, number>();
  let index = 0;
  for await (const record of records()) {
    const key = keyOf(record);
    if (key !== null && twice.has(key)) last.set(key, index);
    index += 1;
  }
  return (record, at) => {
    const key = keyOf(record);
    return key === null || !twice.has(key) || last.get(key) === at;
  };
}

/** 2^23 bits (1 MiB), three probes a key: at a million keys, about 4 % are mistaken for seen. */
const BITS = 1 << 23;
const PROBES = 3;

class BitSet {
  readonly #words = new Uint32Array(BITS / 32);

  add(key: string): void {
    for (const bit of probes(key))
      this.#words[bit >>> 5] = (this.#words[bit >>> 5] ?? 0) | (1 << (bit & 31));
  }

  has(key: string): boolean {
    for (const bit of probes(key)) {
      if (((this.#words[bit >>> 5] ?? 0) & (1 << (bit & 31))) === 0) return false;
    }
    return true;
  }
}

/** Double hashing of two FNV-1a hashes (different offsets): PROBES bit positions. */
function probes(key: string): number[] {
  let a = 0x811c9dc5;
  let b = 0x01000193 ^ 0x5bd1e995;
  for (let i = 0; i < key.length; i++) {
    const c = key.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul(b ^ c, 0x01000193) ^ (b >>> 15);
  }
  const step = (b >>> 0) | 1;
  const bits: number[] = [];
  for (let i = 0; i < PROBES; i++) bits.push(((a >>> 0) + i * step) % BITS);
  return bits;
}
