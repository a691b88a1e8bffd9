#!/usr/bin/env node
// The command's entry, in CommonJS on purpose. libuv sizes its thread pool once, at first use,
// and loading an ES module already uses it (the loader reads files through it), so the size can
// only be set here, before the first ES module is loaded. One thread per core: each image is
// decoded on one thread, so threads beyond the cores buy no speed and only hold more pixels. The
// malloc arenas are capped here too, for the same reason of timing (see malloc-arenas.cjs).
const { availableParallelism } = require("node:os");
const { limitMallocArenas } = require("./malloc-arenas.cjs");

process.env.UV_THREADPOOL_SIZE ??= String(Math.max(2, availableParallelism()));
limitMallocArenas();
import("./caption.js").catch((error) => {
  process.stderr.write(`caption: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
