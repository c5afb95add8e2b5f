import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // Each file starts its own servers; the limits cover a cold PostgreSQL schema and a 2-core CI machine.
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
