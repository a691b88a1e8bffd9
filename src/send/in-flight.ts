/**
 * Requests this process has in flight to each server, whichever run sent them: a worker runs
 * several shards at once against the same server, each with its own limiter, and only together
 * do they say whether a request was alone there.
 */
const servers = new Map<string, { active: number; starts: number }>();

export interface InFlight {
  /** The request is over (answered or not); said once. */
  end(): void;
  /**
   * Whether it was this process's only request to that server from start to end: none other was
   * in flight when it started, and none started while it ran.
   */
  readonly alone: boolean;
}

/** Marks a request to `server` (its base URL) as in flight. */
export function startRequest(server: string): InFlight {
  const counts = servers.get(server) ?? { active: 0, starts: 0 };
  servers.set(server, counts);
  const aloneAtStart = counts.active === 0;
  counts.active += 1;
  counts.starts += 1;
  const started = counts.starts;
  let open = true;
  return {
    end() {
      if (!open) return;
      open = false;
      counts.active -= 1;
      if (counts.active === 0) servers.delete(server);
    },
    get alone() {
      return aloneAtStart && counts.starts === started;
    },
  };
}
