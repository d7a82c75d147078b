#!/usr/bin/env node
// The published entry point: runs the compiled CLI (`npm run build`, done by `npm ci` through `prepare`).
import { main } from "../dist/cli/main.js";

// A reader that stops early (`segkit data inspect ... | head`) is not an error.
process.stdout.on("error", (err) => {
  if (err.code === "EPIPE") process.exit(0);
  throw err;
});
process.exitCode = await main(process.argv.slice(2));
