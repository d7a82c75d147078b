/** Opening and running one SAM graph, with onnxruntime's failures as SegkitErrors naming the file. */
import { SegkitError } from "../core/errors.js";
import { createOnnxSession, type ExecutionProvider, type OnnxSession } from "../onnx/session.js";
import type { SamTensor } from "./decoder-feeds.js";

/** Runs one graph; an onnxruntime failure becomes a SegkitError naming the file. */
export function runGraph(
  session: OnnxSession,
  file: string,
  feeds: Parameters<OnnxSession["run"]>[0],
  fetch?: readonly string[],
): Promise<Record<string, SamTensor>> {
  return runGuarded(file, () => session.run(feeds, fetch));
}

/** `run()`, an onnxruntime failure becoming a SegkitError naming the graph's file. */
export async function runGuarded<T>(file: string, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (err) {
    if (err instanceof SegkitError) throw err;
    const first = ((err as Error).message ?? String(err)).split("\n")[0];
    throw new SegkitError(`onnxruntime could not run this graph (${first})`, { file, cause: err });
  }
}

/** Opens one graph; a file onnxruntime cannot load becomes a SegkitError naming it. */
export async function openGraph(
  file: string,
  options: { threads: number; executionProviders?: readonly ExecutionProvider[]; spinning?: boolean },
): Promise<OnnxSession> {
  try {
    return await createOnnxSession(file, options);
  } catch (err) {
    if (err instanceof SegkitError) throw err;
    const first = ((err as Error).message ?? String(err)).split("\n")[0];
    throw new SegkitError(`not a loadable ONNX model (${first})`, { file, cause: err });
  }
}
