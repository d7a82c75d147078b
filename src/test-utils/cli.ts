import { main } from "../cli/main.js";

/** What `runCli` captured: the exit code, and stdout / stderr as lines and joined with newlines. */
export interface CliRun {
  code: number;
  out: string;
  err: string;
  outLines: string[];
  errLines: string[];
}

/** Runs the CLI in-process (`main`) with `argv`, capturing its output; `onErr` sees each stderr line as it comes. */
export async function runCli(argv: string[], onErr?: (line: string) => void): Promise<CliRun> {
  const outLines: string[] = [];
  const errLines: string[] = [];
  const code = await main(
    argv,
    (s) => outLines.push(s),
    (s) => {
      errLines.push(s);
      onErr?.(s);
    },
  );
  return { code, out: outLines.join("\n"), err: errLines.join("\n"), outLines, errLines };
}
