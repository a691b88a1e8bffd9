#!/usr/bin/env node
// The command's entry, in CommonJS on purpose. libuv sizes its thread pool once, at first use,
// and loading an ES module already uses it (the loader reads files through it), so the size can
// only be set here, before the first ES module is loaded. One thread per core: each image is
// decoded on one thread, and every thread that allocates costs a glibc malloc arena (tens of MB
// at 12 MP), so threads beyond the cores buy no speed and cost memory.
const { availableParallelism } = require("node:os");

process.env.UV_THREADPOOL_SIZE ??= String(Math.max(2, availableParallelism()));
import("./caption.js").catch((error) => {
  process.stderr.write(`caption: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
