import { randomBytes } from "node:crypto";
import { mkdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
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

/** A JSON file's value; a missing, unreadable or malformed file is a SegkitError naming it (the value is unchecked). */
export async function readJson<T = unknown>(file: string): Promise<T> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new SegkitError(code === "ENOENT" ? "file not found" : `cannot read (${code})`, { file, cause: err });
  }
  try {
    return JSON.parse(text) as T;
  } catch (err) {
    throw new SegkitError(`not valid JSON (${(err as Error).message})`, { file, cause: err });
  }
}
