#!/usr/bin/env node
// The command's entry, in CommonJS on purpose. libuv sizes its thread pool once, at first use,
// and loading an ES module already uses it (the loader reads files through it), so the size can
// only be set here, before the first ES module is loaded. A run decodes one image per core plus
// one, each on one thread (run/pipeline.ts caps them, so no more pixels are held), and reads and
// hashes the next files meanwhile: with only a thread per core, those reads waited behind the
// decoders and a core stood idle (a tenth of the CPU of a photo archive on two cores). The
// malloc arenas are capped here too, for the same reason of timing (see malloc-arenas.cjs).
const { availableParallelism } = require("node:os");
const { limitMallocArenas } = require("./malloc-arenas.cjs");

process.env.UV_THREADPOOL_SIZE ??= String(availableParallelism() + 2);
limitMallocArenas();
import("./caption.js").catch((error) => {
  process.stderr.write(`caption: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
