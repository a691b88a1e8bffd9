import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // Integration tests spawn the real CLI; a slow CI box needs more than the 5 s default.
    testTimeout: 30_000,
    hookTimeout: 30_000,
  },
});
