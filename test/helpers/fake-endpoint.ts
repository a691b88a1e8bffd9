/**
 * The fake OpenAI-compatible endpoint, at the path the bench, docs/development.md and the tests
 * name; it lives in ./fake-endpoint/, split by concern (see its index.ts).
 *
 * Run directly for manual use: `npx tsx test/helpers/fake-endpoint.ts --port 8080`.
 */
import { isEntryPoint, runFromCommandLine } from "./fake-endpoint/cli.js";

export * from "./fake-endpoint/index.js";

if (isEntryPoint(import.meta.url)) runFromCommandLine();
