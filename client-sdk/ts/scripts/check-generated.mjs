// Fails when src/gen is not what scripts/generate.mjs makes of the current proto/ (CI runs this).
import { execFileSync } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const sdk = join(dirname(fileURLToPath(import.meta.url)), "..");
execFileSync(process.execPath, [join(sdk, "scripts", "generate.mjs")], { stdio: "inherit" });
const changed = execFileSync("git", ["status", "--porcelain", "--", "src/gen"], { cwd: sdk, encoding: "utf8" });
if (changed.trim() !== "") {
  console.error(`client-sdk/ts/src/gen is stale; run \`npm run generate -w @aerobook/sdk\` and commit:\n${changed}`);
  process.exit(1);
}
