import { EXIT } from "./exit-codes.js";
import { main } from "./main.js";
import { runWasAbandoned } from "./signals.js";

const code = await main(process.argv.slice(2));
process.exitCode = code;
// A run abandoned after Ctrl-C may leave a file-system call that never returns, holding the
// process open. process.exit() would wait for that call too; a signal's default action does not,
// and the shell still sees the status the run earned (128 + 2 for SIGINT is 130, 143 for SIGTERM).
if (runWasAbandoned()) {
  setTimeout(
    () => process.kill(process.pid, code === EXIT.terminated ? "SIGTERM" : "SIGINT"),
    500,
  ).unref();
}
