import { randomBytes } from "node:crypto";
import { mkdir, open, readdir, readFile, rename, rm, stat } from "node:fs/promises";
import { basename, dirname, isAbsolute, join, relative, resolve, sep } from "node:path";
import { SegkitError } from "../core/errors.js";

/**
 * Writes a file so that readers see the old content or the new, never a part, also after a power cut: the bytes
 * go to a temporary file beside the target and are flushed to disk (fsync), the file is renamed over the target
 * (atomic on one file system), and the directory is flushed so that the rename itself is on disk.
 */
export async function writeFileAtomic(path: string, data: Uint8Array | string): Promise<void> {
  const dir = dirname(path);
  const tmp = join(dir, `.${basename(path)}.${randomBytes(6).toString("hex")}.tmp`);
  try {
    await mkdir(dir, { recursive: true });
    const handle = await open(tmp, "w");
    try {
      await handle.writeFile(data);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await renameDurably(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    const code = (err as NodeJS.ErrnoException).code;
    const what = code === "EISDIR" ? "is a directory" : code === "ENOTDIR" ? "a part of the path is a file" : code;
    throw new SegkitError(`cannot write (${what})`, { file: path, cause: err });
  }
}

/** `rename(from, to)`, then an fsync of the target's directory so that the new entry survives a power cut. */
export async function renameDurably(from: string, to: string): Promise<void> {
  await rename(from, to);
  await syncDir(dirname(to));
}

/** Flushes a file's bytes to disk (fsync), e.g. a download written by a stream, before it is renamed into place. */
export async function syncFile(path: string): Promise<void> {
  const handle = await open(path, "r+");
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * Flushes a directory's entries to disk. Skipped where directories cannot be opened (Windows) or flushed (some
 * network file systems answer EINVAL): there the rename is as durable as the platform makes it.
 */
export async function syncDir(dir: string): Promise<void> {
  if (process.platform === "win32") return;
  const handle = await open(dir, "r");
  try {
    await handle.sync();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EINVAL") throw err;
  } finally {
    await handle.close();
  }
}

/**
 * Sorted names of the visible (not dot-) files in `dir`, following symbolic links: the Hugging Face cache keeps
 * `snapshots/<rev>/FILE` as links into `blobs/`, and people link large files from elsewhere. A dangling link is
 * listed, so that reading it reports the file; links to directories are not. Errors are Node's (`code` kept).
 */
export async function listFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true });
  const isFile = async (e: (typeof entries)[number]): Promise<boolean> => {
    if (e.name.startsWith(".")) return false;
    if (!e.isSymbolicLink()) return e.isFile();
    const target = await stat(join(dir, e.name)).catch(() => undefined);
    return target === undefined || target.isFile();
  };
  const keep = await Promise.all(entries.map(isFile));
  return entries
    .filter((_, i) => keep[i])
    .map((e) => e.name)
    .sort();
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

/** Whether `path` is `dir` or below it, by their names (links are not followed). */
export function isWithin(dir: string, path: string): boolean {
  const rel = relative(resolve(dir), resolve(path));
  return rel !== ".." && !rel.startsWith(`..${sep}`) && !isAbsolute(rel);
}

/**
 * `name` (a relative path from untrusted input: a JSON's file name, an archive member) resolved below `dir`, or
 * undefined when it is absolute, leaves `dir` or names `dir` itself.
 */
export function resolveInside(dir: string, name: string): string | undefined {
  if (isAbsolute(name)) return undefined;
  const path = resolve(dir, name);
  return path !== resolve(dir) && isWithin(dir, path) ? path : undefined;
}
