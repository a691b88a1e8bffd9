import { createRequire } from "node:module";

/**
 * Loads a CommonJS package when it is first needed rather than when the program starts: most runs
 * never compile a schema, write an XMP sidecar or touch a CSV, and loading those packages is
 * start-up time every run would pay.
 */
export const loadWhenNeeded = createRequire(import.meta.url);
