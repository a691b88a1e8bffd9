/**
 * What a server's rate-limit headers say, before any 429: OpenAI's `x-ratelimit-*-requests`
 * and the IETF `RateLimit-Policy` / `RateLimit` fields (and their older separate
 * `RateLimit-Limit`, `-Remaining`, `-Reset` form).
 */
export interface RateHeaders {
  /** Requests a second the server allows, when the headers give it. */
  perSecond: number | null;
  /** The quota is spent and no rate is given: nothing should start for this long. */
  waitMs: number | null;
}

export function readRateHeaders(headers: Headers | null | undefined): RateHeaders | null {
  if (!headers) return null;
  return openAiForm(headers) ?? ietfForm(headers);
}

/**
 * `limit` requests, `remaining` of them left, full again in `reset`: a bucket refilling at
 * (limit − remaining) ÷ reset. Servers round `remaining` down, which skews that for a small
 * spend, so a rate is read only from a spend of several requests; below that, a spent quota is
 * a wait until it refills.
 */
function openAiForm(headers: Headers): RateHeaders | null {
  const limit = number(headers.get("x-ratelimit-limit-requests"));
  const remaining = number(headers.get("x-ratelimit-remaining-requests"));
  const resetMs = duration(headers.get("x-ratelimit-reset-requests"));
  if (limit === null || remaining === null || resetMs === null) return null;
  const spent = limit - remaining;
  const perSecond = spent >= MIN_SPENT && resetMs > 0 ? (spent * 1000) / resetMs : null;
  const waitMs = perSecond === null && remaining <= 0 ? resetMs : null;
  return { perSecond, waitMs };
}

function ietfForm(headers: Headers): RateHeaders | null {
  // The older drafts put the quota first, bare (`100;w=60`), in RateLimit-Policy or after the
  // limit in RateLimit-Limit (`100, 100;w=60`); the current one names it (`"default";q=100;w=60`).
  const policy = headers.get("ratelimit-policy") ?? headers.get("ratelimit-limit");
  const state = headers.get("ratelimit");
  // The shortest window paces; a daily quota would only crawl (its end comes as a 429 or a spent
  // state). Of two policies over one window, the stricter.
  const pacing = (policy?.split(",") ?? [])
    .map((item) => ({ quota: param(item, "q") ?? bareQuota(item), window: param(item, "w") }))
    .filter((each): each is { quota: number; window: number } => {
      return each.quota !== null && each.window !== null && each.window > 0;
    })
    .sort((a, b) => a.window - b.window || a.quota - b.quota)[0];
  const perSecond = pacing ? pacing.quota / pacing.window : null;
  let remaining: number | null = null;
  let resetSeconds: number | null = null;
  if (state) {
    remaining = param(state, "r");
    resetSeconds = param(state, "t");
  } else {
    remaining = number(headers.get("ratelimit-remaining"));
    resetSeconds = number(headers.get("ratelimit-reset"));
  }
  if (perSecond === null && remaining === null) return null;
  const waitMs =
    perSecond === null && remaining !== null && remaining <= 0 && resetSeconds !== null
      ? resetSeconds * 1000
      : null;
  return { perSecond, waitMs };
}

/** The bare number an older draft's policy item starts with (`100;w=60`). */
function bareQuota(item: string): number | null {
  const match = /^\s*(\d+(?:\.\d+)?)\s*(?:;|$)/.exec(item);
  return match ? Number(match[1]) : null;
}

/** `name=value` among a structured field's parameters (`"default";q=100;w=60`). */
function param(field: string, name: string): number | null {
  const match = new RegExp(`(?:^|[;,\\s])${name}=(\\d+(?:\\.\\d+)?)`).exec(field);
  return match ? Number(match[1]) : null;
}

const MIN_SPENT = 4;

function number(text: string | null): number | null {
  if (text === null || text.trim() === "") return null;
  const value = Number(text);
  return Number.isFinite(value) ? value : null;
}

/** OpenAI's durations: `1s`, `20ms`, `6m0s`, `1h2m3.5s`. */
function duration(text: string | null): number | null {
  if (text === null) return null;
  const parts =
    /^(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m(?!s))?(?:(\d+(?:\.\d+)?)s)?(?:(\d+(?:\.\d+)?)ms)?$/.exec(
      text.trim(),
    );
  if (!parts || text.trim() === "") return null;
  const [, h, m, s, ms] = parts;
  return (
    Number(h ?? 0) * 3_600_000 + Number(m ?? 0) * 60_000 + Number(s ?? 0) * 1000 + Number(ms ?? 0)
  );
}
