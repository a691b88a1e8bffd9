// Preloaded into the CLI by a test (NODE_OPTIONS=--require): when the process ends, glibc prints
// one "Arena N:" block per malloc arena on stderr, which is how the test counts them.
const koffi = require("koffi");
const stats = koffi.load("libc.so.6").func("void malloc_stats()");
process.on("exit", () => stats());
