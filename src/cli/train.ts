import type { Command } from "commander";
import type { CliIo } from "./options.js";

/** `segkit train`: not written yet. */
export function registerTrain(_program: Command, _io: CliIo): void {}
