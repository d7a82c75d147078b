import type { Command } from "commander";
import type { CliIo } from "./options.js";

/** `segkit demo`: not written yet. */
export function registerDemo(_program: Command, _io: CliIo): void {}
