/**
 * The most of a reply body a run reads. A caption's reply is a few KB (a thinking model's, tens of
 * KB; a long `/models` list, hundreds): a server that sends 100 MB has gone wrong or means harm,
 * and a retry would only fetch the same 100 MB again.
 */
export const DEFAULT_MAX_REPLY_BYTES = 4 * 1024 * 1024;

/**
 * Thrown by a transport when a body passes the cap, as declared by its content-length or as read;
 * the connection is destroyed then, so the rest is never received into memory.
 */
export class ReplyTooLarge extends Error {
  override name = "ReplyTooLarge";

  constructor(
    readonly limit: number,
    readonly status: number,
    /** The content-length the server declared, when that was what gave it away. */
    readonly declared: number | null,
  ) {
    super(
      declared === null
        ? `the HTTP ${status} reply passed ${limit} bytes`
        : `the HTTP ${status} reply declared ${declared} bytes, over ${limit}`,
    );
  }
}

/** A declared content-length, when it is one: a number of bytes. */
export function declaredLength(value: string | null | undefined): number | null {
  if (value === null || value === undefined || !/^\s*\d+\s*$/.test(value)) return null;
  return Number(value);
}

/**
 * A web stream's bytes, up to `limit`: past it the stream is cancelled (so a fetch stops
 * receiving) and ReplyTooLarge thrown. For the injected-fetch path; node:http has its own.
 */
export async function readCapped(
  body: ReadableStream<Uint8Array> | null | undefined,
  limit: number,
  status: number,
): Promise<Buffer> {
  if (!body) return Buffer.alloc(0);
  const reader = body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > limit) {
      await reader.cancel().catch(() => {});
      throw new ReplyTooLarge(limit, status, null);
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks, total);
}
