// glibc gives every thread that allocates a malloc arena of its own, up to eight per core, and an
// arena keeps what libvips freed in it: at -c 32 on 12 MP photos that was about a third of a
// run's memory (290 MiB with 16 arenas, 210 MiB with 2, at the same speed). MALLOC_ARENA_MAX
// would do the same, but glibc reads it only when the process starts, and starting the process
// again under it would leave a child behind a `kill -9`. mallopt(M_ARENA_MAX) works from inside,
// through koffi (libc has no Node binding), as long as it runs before glibc fixes its limit, which
// it does once the ninth arena is asked for: hence here, in the entry, before sharp is loaded.
const M_ARENA_MAX = -8;
const ARENAS = 2;

/**
 * Caps glibc's malloc arenas for this process. Returns whether it did: false off glibc Linux,
 * without koffi's binary for this platform, or when the user chose for themselves through
 * MALLOC_ARENA_MAX or GLIBC_TUNABLES.
 */
function limitMallocArenas() {
  const { env } = process;
  if (process.platform !== "linux") return false;
  if (env.MALLOC_ARENA_MAX !== undefined || /arena_max/.test(env.GLIBC_TUNABLES ?? "")) {
    return false;
  }
  try {
    const koffi = require("koffi");
    // musl names its libc otherwise, and has no arenas to cap.
    const libc = koffi.load("libc.so.6");
    const mallopt = libc.func("int mallopt(int param, int value)");
    return mallopt(M_ARENA_MAX, ARENAS) === 1;
  } catch {
    // Only memory is at stake; the run goes on with glibc's own limit.
    return false;
  }
}

module.exports = { limitMallocArenas };
