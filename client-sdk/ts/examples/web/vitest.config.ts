import { defineConfig } from "vitest/config";

// The browser end-to-end test (`npm run test:browser`): it builds nothing itself; dist/ must be built first.
export default defineConfig({
  test: {
    include: ["e2e/**/*.test.ts"],
    testTimeout: 120_000,
    hookTimeout: 120_000,
  },
});
