import { randomBytes } from "node:crypto";
import { mkdir, rename, rm, stat, writeFile } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { SegkitError } from "../core/errors.js";

/**
 * Writes a file so that readers see the old content or the new, never a part: the bytes go to a temporary
 * file beside the target, which is then renamed over it (rename is atomic on one file system).
 */
export async function writeFileAtomic(path: string, data: Uint8Array | string): Promise<void> {
  const dir = dirname(path);
  const tmp = join(dir, `.${basename(path)}.${randomBytes(6).toString("hex")}.tmp`);
  try {
    await mkdir(dir, { recursive: true });
    await writeFile(tmp, data);
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    const code = (err as NodeJS.ErrnoException).code;
    const what = code === "EISDIR" ? "is a directory" : code === "ENOTDIR" ? "a part of the path is a file" : code;
    throw new SegkitError(`cannot write (${what})`, { file: path, cause: err });
  }
}

/** Whether `path` exists (any kind of entry). */
export async function pathExists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}
