import { rename, rm } from "node:fs/promises";
import { join } from "node:path";
import { pathExists, renameDurably } from "../io/fs.js";

/**
 * The checkpoint directory layout: named checkpoints (`last/`, `best/`) in a run directory, each swapped in so
 * that a kill at any moment leaves the previous checkpoint loadable:
 *   1. every file goes into `.NAME.new/` (each file itself written atomically);
 *   2. the current `NAME/`, if any, is renamed to `.NAME.old/`;
 *   3. `.NAME.new/` is renamed to `NAME/`;
 *   4. `.NAME.old/` is removed.
 * Between 2 and 3 there is no `NAME/`, but `.NAME.old/` is complete: `checkpointDir` finds it.
 *
 * A checkpoint holds (`CHECKPOINT_FILES`):
 * - `model.json` + `model.weights.bin`: the model (`saveModel`; `loadModel` reads it back);
 * - `optimizer.json` + `optimizer.weights.bin`: the optimizer's configuration, scalars and slots (train/checkpoint.ts);
 * - `train-state.json`: where training stands (epoch, schedule, monitor, history), for resuming; written last;
 * - `card.json`: the model card: what the model is, how to feed it, what it scored (train/card.ts).
 * Prediction needs only the model and the card.
 */

export const MODEL_CARD_FILE = "card.json";
export const TRAIN_STATE_FILE = "train-state.json";

export const CHECKPOINT_FILES = [
  "model.json",
  "model.weights.bin",
  "optimizer.json",
  "optimizer.weights.bin",
  TRAIN_STATE_FILE,
  MODEL_CARD_FILE,
] as const;

/** `NAME/` and the two directories of its swap, `.NAME.new/` and `.NAME.old/`, in `dir`. */
function checkpointPaths(dir: string, name: string) {
  return { target: join(dir, name), fresh: join(dir, `.${name}.new`), old: join(dir, `.${name}.old`) };
}

/**
 * The complete checkpoint `dir/name/` (or the previous one left by a kill mid-swap), or null when there is none.
 * Complete: it holds `marker`, written last (`train-state.json`; `model.json` is enough to predict).
 */
export async function checkpointDir(
  dir: string,
  name: string,
  marker: string = TRAIN_STATE_FILE,
): Promise<string | null> {
  const { target, old } = checkpointPaths(dir, name);
  for (const candidate of [target, old]) {
    if (await pathExists(join(candidate, marker))) return candidate;
  }
  return null;
}

/** Writes checkpoint `dir/name/`: `write` fills a fresh directory, which is then swapped in. Returns `dir/name`. */
export async function replaceCheckpoint(
  dir: string,
  name: string,
  write: (fresh: string) => Promise<void>,
): Promise<string> {
  const { target, fresh, old } = checkpointPaths(dir, name);
  await rm(fresh, { recursive: true, force: true });
  // 1. everything into the fresh directory
  await write(fresh);
  // 2.-4. swap it in
  if (await pathExists(target)) {
    await rm(old, { recursive: true, force: true });
    await rename(target, old);
  }
  await renameDurably(fresh, target);
  await rm(old, { recursive: true, force: true });
  return target;
}

/** Removes checkpoint `dir/name/` and whatever a swap of it left behind. */
export async function removeCheckpoint(dir: string, name: string): Promise<void> {
  for (const path of Object.values(checkpointPaths(dir, name))) await rm(path, { recursive: true, force: true });
}
