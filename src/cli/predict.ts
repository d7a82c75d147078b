import type { Command } from "commander";
import type { CliIo } from "./options.js";

/** `segkit predict`: not written yet. */
export function registerPredict(_program: Command, _io: CliIo): void {}
