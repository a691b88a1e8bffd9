/** Whether dist/bin.js is at least as new as everything under src/ (always, in an installed copy). */
export function compiledIsFresh(root: URL): boolean;
