import { lstat, readFile, rm, rmdir } from "node:fs/promises";
import { hostname } from "node:os";
import path from "node:path";
import lockfile from "proper-lockfile";
import { RunAbortedError } from "../errors.js";
import { readNoFollow } from "../trust/links.js";
import { ensureFolder } from "../util/folders.js";
import { writeWhole } from "./write-whole.js";

/** Who holds a lock, written inside the lock folder so a second run can name it. */
interface LockOwner {
  pid: number;
  host: string;
  startedAt: string;
}

export interface OutputLock {
  release(): Promise<void>;
}

const OWNER_FILE = "owner.json";
const OWNER_LIMIT_BYTES = 4096;
/** A holder refreshes the lock's mtime every STALE_MS / 2; one that stopped for this long is gone. */
const STALE_MS = 20_000;

/**
 * Makes sure only one run writes OUT at a time (two cron jobs overlapping, say). The lock lives in
 * a folder `<OUT>.lock` beside OUT: proper-lockfile's own lock (`held`, whose mtime it keeps
 * fresh) and, next to it, who holds it. A lock left by a crashed run is taken over at once when
 * its process is gone from this machine, and after STALE_MS otherwise.
 */
export async function lockOutput(
  output: string,
  onWarning: (text: string) => void,
): Promise<OutputLock> {
  const lockPath = `${output}.lock`;
  const held = path.join(lockPath, "held");
  // OUT's folder may be someone else's: a lock folder that is a link would have the run write
  // its owner file, and remove things, wherever it leads.
  if ((await lstat(lockPath).catch(() => null))?.isSymbolicLink()) {
    throw new RunAbortedError(
      "output_locked",
      `${lockPath} is a symlink, and the run keeps its lock only in a folder of its own: remove the link, or name another OUT`,
    );
  }
  await ensureFolder(lockPath);
  const options = {
    realpath: false,
    lockfilePath: held,
    stale: STALE_MS,
    onCompromised: (error: Error) =>
      onWarning(
        `warning: lost the lock on ${path.basename(output)} (${error.message}); another run may start writing it`,
      ),
  };
  let release: () => Promise<void>;
  try {
    release = await lockfile.lock(output, options);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ELOCKED") throw error;
    const owner = await readOwner(lockPath);
    if (!owner || (await isAlive(owner))) throw lockedError(output, lockPath, owner);
    // The run that held it crashed: its process is gone from this very machine.
    await rm(held, { recursive: true, force: true });
    try {
      release = await lockfile.lock(output, options);
    } catch (retryError) {
      if ((retryError as NodeJS.ErrnoException).code !== "ELOCKED") throw retryError;
      throw lockedError(output, lockPath, await readOwner(lockPath));
    }
  }
  const owner: LockOwner = {
    pid: process.pid,
    host: hostname(),
    startedAt: new Date().toISOString(),
  };
  // The lock is ours now, and so is what is in its folder: a link planted as owner.json is
  // removed (the link, not what it leads to), and the owner written whole under its own name.
  await rm(path.join(lockPath, OWNER_FILE), { force: true });
  await writeWhole(path.join(lockPath, OWNER_FILE), `${JSON.stringify(owner)}\n`);
  return {
    release: async () => {
      // Owner first, then proper-lockfile's folder, then ours only if empty: a run that took the
      // lock in between keeps it.
      await rm(path.join(lockPath, OWNER_FILE), { force: true });
      await release();
      await rmdir(lockPath).catch(() => {});
    },
  };
}

async function readOwner(lockPath: string): Promise<LockOwner | null> {
  try {
    // Never through a link, and never more than an owner's few bytes.
    const read = await readNoFollow(path.join(lockPath, OWNER_FILE), OWNER_LIMIT_BYTES);
    if (read.kind !== "text") return null;
    const value: unknown = JSON.parse(read.text);
    if (typeof value !== "object" || value === null) return null;
    const { pid, host, startedAt } = value as Record<string, unknown>;
    if (typeof pid !== "number" || typeof host !== "string" || typeof startedAt !== "string")
      return null;
    return { pid, host, startedAt };
  } catch {
    // Not written yet (the other run is just starting) or unreadable: assume it is alive.
    return null;
  }
}

async function isAlive(owner: LockOwner): Promise<boolean> {
  if (owner.host !== hostname()) return true;
  try {
    process.kill(owner.pid, 0);
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
  // kill(pid, 0) succeeds on a zombie: a run killed with -9 lingers as one until its parent reaps
  // it, for seconds where PID 1 reaps late (a container without --init), and it writes no more.
  return !(await isZombie(owner.pid));
}

/** Linux's word on a process: Z (zombie) or X (dead) is gone. No /proc (macOS): not known. */
async function isZombie(pid: number): Promise<boolean> {
  let stat: string;
  try {
    stat = await readFile(`/proc/${pid}/stat`, "utf8");
  } catch {
    return false;
  }
  // "pid (comm) state …": comm may itself hold ") ", so the state follows the last one.
  const state = stat.slice(stat.lastIndexOf(")") + 2).charAt(0);
  return state === "Z" || state === "X";
}

function lockedError(output: string, lockPath: string, owner: LockOwner | null): RunAbortedError {
  const who = owner
    ? `caption run (pid ${owner.pid} on ${owner.host}, started ${owner.startedAt})`
    : "caption run";
  return new RunAbortedError(
    "output_locked",
    `another ${who} is writing ${output}; wait for it to finish, or if no such run is alive, delete ${lockPath}`,
  );
}
