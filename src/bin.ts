import { main } from "./cli.js";

const code = await main(process.argv.slice(2));
process.exitCode = code;
// Once main has returned, nothing of the run is left to wait for. What can still hold the process
// open is a file-system call that never returns (a run abandoned after Ctrl-C). process.exit()
// would wait for that call too; a signal's default action does not, and the shell still sees the
// status the run earned (128 + 2 for SIGINT is 130, 143 for SIGTERM).
setTimeout(() => {
  const signal = code === 130 ? "SIGINT" : code === 143 ? "SIGTERM" : "SIGKILL";
  process.kill(process.pid, signal);
}, 1000).unref();
