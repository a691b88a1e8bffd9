import type { RunEvent } from "../run/events.js";
import { AUTO_START } from "../send/auto-concurrency.js";
import type { RequestBudget } from "../send/request-budget.js";
import type { ResolvedEndpoint } from "../settings/run-options.js";

/**
 * One shard's run as its worker follows it, from the run's events and its requests' budget: the
 * images still to end, and the requests it may have out. One image has at most one request out at
 * a time, so the images left bound its requests in flight from above, whatever the run does.
 */
export class ShardTrack {
  #todo: number;
  #ended = 0;
  #takes = 0;
  #ends = 0;
  /** Under `-c auto`, what the run's limiter allows now, as it last said. */
  allowed: number | null = null;
  /** Told whenever the figures move. */
  onChange: () => void = () => {};

  constructor(images: number) {
    this.#todo = images;
  }

  get remaining(): number {
    return Math.max(0, this.#todo - this.#ended);
  }

  /**
   * Requests this run may have out: never fewer than it has. A request handed to another endpoint
   * ends with no event and so counts on; that errs on the side of fewer in flight.
   */
  get outstanding(): number {
    return Math.min(Math.max(0, this.#takes - this.#ends), this.remaining);
  }

  took(): void {
    this.#takes += 1;
  }

  observe(event: RunEvent): void {
    switch (event.type) {
      case "discovered":
        // Rows already in the shard's output are no work of this run.
        this.#todo = event.todo;
        break;
      case "captioned":
        this.#ended += 1;
        // A copy of an identical image took no request.
        if (event.copyOf === null) this.#ends += 1;
        break;
      case "failed":
        this.#ended += 1;
        // An image that could not be read failed before any request.
        if (event.failure.attempts > 0) this.#ends += 1;
        break;
      case "unfinished":
        this.#ended += 1;
        break;
      case "retrying":
        // The request that failed has ended; the retry takes the budget again.
        this.#ends += 1;
        break;
      case "concurrency":
        this.allowed = event.allowed;
        break;
      default:
        return;
    }
    this.onChange();
  }
}

interface Lane {
  /** Oldest first: the first runs as its own limiter lets it, each later one in what is left. */
  runs: ShardTrack[];
  /** Its last images are in flight: the next shard is asked for, not yet here. */
  wanting: boolean;
}

interface Waiter {
  track: ShardTrack;
  concurrency: number | "auto";
  resolve: (granted: boolean) => void;
  signal: AbortSignal;
  onAbort: () => void;
}

/**
 * A worker's shards as lanes, one per `--shards-at-once`. A lane whose run has no more images
 * than requests it may have in flight asks for its next shard then, so that shard's images are
 * read, prepared and ready while the last ones of the run before are answered, and its slots
 * never stand empty at a shard boundary. Each endpoint's `-c` still bounds the lane: a later run
 * may send only while the images the runs before it have left, and its own requests out, are
 * fewer than that. (Its own limiter bounds it too; this is the part it cannot see.)
 */
export class ShardLanes {
  readonly #lanes: Lane[];
  /** The endpoints the runs send to, by label, with their `-c`: the same for every run here. */
  readonly #concurrency = new Map<string, number | "auto">();
  #waiters: Waiter[] = [];
  #stopped = false;
  /** Shards to hold at once: those running, plus one for each lane asking or empty. */
  #wanted: number;
  readonly #onWanted: (jobs: number) => void;

  /** `onWanted` is told how many shards the worker should hold now, whenever that changes. */
  constructor(lanes: number, onWanted: (jobs: number) => void) {
    this.#lanes = Array.from({ length: Math.max(1, lanes) }, () => ({ runs: [], wanting: false }));
    this.#wanted = this.#lanes.length;
    this.#onWanted = onWanted;
  }

  /** A shard's run begins: after the runs of a lane that asked for it, else in an empty lane. */
  join(track: ShardTrack): void {
    const lane =
      this.#lanes.find((candidate) => candidate.wanting) ??
      this.#lanes.find((candidate) => candidate.runs.length === 0) ??
      // More shards than asked for (a fetch raced an end): behind the lane nearest its end.
      this.#lanes.reduce((best, candidate) => (left(candidate) < left(best) ? candidate : best));
    lane.wanting = false;
    lane.runs.push(track);
    track.onChange = () => this.#refresh();
    this.#refresh();
  }

  /** A shard's run has ended, one way or another. */
  leave(track: ShardTrack): void {
    for (const lane of this.#lanes) {
      const at = lane.runs.indexOf(track);
      if (at === -1) continue;
      lane.runs.splice(at, 1);
      if (lane.runs.length === 0) lane.wanting = false;
    }
    track.onChange = () => {};
    this.#refresh();
  }

  /** The worker is stopping: no more shards asked for. */
  stop(): void {
    this.#stopped = true;
    for (const lane of this.#lanes) lane.wanting = false;
    this.#refresh();
  }

  /** The budget a run's requests to `endpoint` take: this lane's turn first, then `shared`. */
  budget(track: ShardTrack, endpoint: ResolvedEndpoint, shared: RequestBudget): RequestBudget {
    this.#concurrency.set(endpoint.label, endpoint.concurrency);
    this.#refresh();
    return {
      take: async (signal) => {
        if (!(await this.#admit(track, endpoint.concurrency, signal))) return false;
        return shared.take(signal);
      },
      refused: (waitMs) => shared.refused(waitMs),
      observe: (headers) => shared.observe?.(headers),
    };
  }

  #admit(track: ShardTrack, concurrency: number | "auto", signal: AbortSignal): Promise<boolean> {
    if (signal.aborted) return Promise.resolve(false);
    if (this.#mayStart(track, concurrency)) {
      track.took();
      return Promise.resolve(true);
    }
    return new Promise((resolve) => {
      const waiter: Waiter = {
        track,
        concurrency,
        resolve,
        signal,
        onAbort: () => {
          this.#waiters = this.#waiters.filter((other) => other !== waiter);
          resolve(false);
        },
      };
      signal.addEventListener("abort", waiter.onAbort, { once: true });
      this.#waiters.push(waiter);
    });
  }

  #mayStart(track: ShardTrack, concurrency: number | "auto"): boolean {
    const lane = this.#lanes.find((candidate) => candidate.runs.includes(track));
    const at = lane ? lane.runs.indexOf(track) : -1;
    if (!lane || at <= 0) return true;
    const ahead = lane.runs.slice(0, at).reduce((sum, run) => sum + run.remaining, 0);
    return ahead + track.outstanding < capOf(concurrency, lane);
  }

  #refresh(): void {
    // A later run's check counts every image an earlier one has left, waiting or not: it cannot
    // pass it.
    for (const waiter of [...this.#waiters]) {
      if (!this.#mayStart(waiter.track, waiter.concurrency)) continue;
      this.#waiters = this.#waiters.filter((other) => other !== waiter);
      waiter.signal.removeEventListener("abort", waiter.onAbort);
      waiter.track.took();
      waiter.resolve(true);
    }
    for (const lane of this.#lanes) {
      if (this.#stopped || lane.wanting || lane.runs.length === 0) continue;
      const slots = [...this.#concurrency.values()].reduce<number>(
        (sum, concurrency) => sum + capOf(concurrency, lane),
        0,
      );
      // No endpoint known yet: the first run has not reached its servers.
      if (slots > 0 && left(lane) <= slots) lane.wanting = true;
    }
    const wanted = this.#lanes.reduce(
      (sum, lane) => sum + (lane.runs.length === 0 ? 1 : lane.runs.length + (lane.wanting ? 1 : 0)),
      0,
    );
    if (wanted !== this.#wanted) {
      this.#wanted = wanted;
      this.#onWanted(wanted);
    }
  }
}

/** Images a lane's runs have left. */
function left(lane: Lane): number {
  return lane.runs.reduce((sum, run) => sum + run.remaining, 0);
}

/** An endpoint's `-c` for a lane; under `auto`, what the lane's oldest run is allowed now. */
function capOf(concurrency: number | "auto", lane: Lane): number {
  if (concurrency !== "auto") return concurrency;
  return lane.runs[0]?.allowed ?? AUTO_START;
}
