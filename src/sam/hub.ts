/**
 * Downloads a model repository from a Hugging Face-style hub into a local cache: `pullModel(repoId, options)`.
 *
 * The hub's conventions this relies on (huggingface_hub `file_download.py`, `hf_hub_url` / `get_hf_file_metadata`):
 * - listing: `GET {endpoint}/api/models/{repo}/revision/{rev}` -> `{ sha, siblings: [{ rfilename }] }`, `sha` the
 *   commit the revision points at; files are then fetched at that commit so they all come from one snapshot.
 * - a file: `GET {endpoint}/{repo}/resolve/{rev}/{path}`. Small files (stored in git) come back directly with
 *   `ETag: "<git blob sha1>"`; large files (git LFS) come back as a redirect to a CDN, the redirect carrying
 *   `X-Linked-Etag: "<sha256 of the content>"`, `X-Linked-Size` and `X-Repo-Commit`. The CDN's own ETag means
 *   nothing to us, so redirects are followed by hand (at most `MAX_REDIRECTS`) and the `X-Linked-*` headers of any
 *   hop are kept. The bearer token is dropped on a redirect to another origin, as huggingface_hub does.
 *
 * Checksums: the content hash is `X-Linked-Etag`, else the final response's `ETag` (quotes and `W/` removed). 64 hex
 * digits are checked as the sha256 of the file, 40 hex digits as the git blob sha1 (sha1 of `blob <size>\0` + the
 * bytes); anything else (an S3 or CDN tag, a server that sends none) is not a checksum: the file is kept with
 * `checksum: "none"`, its size still checked against `X-Linked-Size` / `Content-Length` / `Content-Range`.
 *
 * Cache layout, like the hub's without its blobs/ and symlinks (plain files, so any tool can read a snapshot):
 *   {cacheDir}/models--{owner}--{name}/snapshots/{commit}/{path}     complete, verified files only
 *   {cacheDir}/models--{owner}--{name}/incomplete/{commit}/{path}.part  partial downloads, resumed with HTTP Range
 *   {cacheDir}/models--{owner}--{name}/refs/{revision}                 the commit a branch or tag resolved to
 * `{commit}` is the listing's `sha`; without one (or with an explicit `files` list, which skips the listing) it is
 * the revision as given, URI-encoded. A file present in the snapshot is complete and is not fetched again; a
 * `.part` is renamed into place only after its size and checksum check out.
 */
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { mkdir, open, rm, stat } from "node:fs/promises";
import { homedir } from "node:os";
import { dirname, isAbsolute, join, resolve } from "node:path";
import { z } from "zod";
import { SegkitError } from "../core/errors.js";
import { renameDurably, resolveInside, syncFile, writeFileAtomic } from "../io/fs.js";

/** The files a SAM model needs: ONNX graphs, their external weights, configs (`onnx/...` included). */
export const SAM_FILE_PATTERNS: readonly string[] = ["*.onnx", "*.onnx_data", "*.onnx.data", "*.json"];
export const MAX_REDIRECTS = 5;
/** The listing is JSON of at most this many bytes, naming at most `MAX_REPO_FILES` files. */
export const MAX_LISTING_BYTES = 16 * 2 ** 20;
export const MAX_REPO_FILES = 10_000;

export interface PullProgress {
  /** The file's path in the repository. */
  path: string;
  /** 0-based position of the file among the `count` being pulled. */
  index: number;
  count: number;
  /** Bytes of the file on disk so far, `start` of them from an earlier, interrupted run. */
  done: number;
  start: number;
  /** The file's size when the server says it. */
  total: number | undefined;
}

export interface PullOptions {
  /** Base URL of the hub. */
  endpoint?: string;
  /** Branch, tag or commit. */
  revision?: string;
  /** Root of the cache (see the layout above); default `defaultCacheDir()`. */
  cacheDir?: string;
  /** Exact repository paths to fetch; skips the listing. */
  files?: string[];
  /** Globs selecting from the listing (default `SAM_FILE_PATTERNS`); see `matchesGlob`. */
  include?: readonly string[];
  /** Every file of the listing, whatever `include` says. */
  all?: boolean;
  /** Sent as `Authorization: Bearer <token>` to the endpoint's origin only. */
  token?: string;
  /** Largest file accepted, in bytes (default 32 GiB). */
  maxFileBytes?: number;
  onProgress?: (p: PullProgress) => void;
  signal?: AbortSignal;
  /** The fetch to use (default Node's built-in one). */
  fetch?: typeof fetch;
}

export const DEFAULT_PULL_OPTIONS = {
  endpoint: "https://huggingface.co",
  revision: "main",
  maxFileBytes: 32 * 2 ** 30,
} as const;

export type PullStatus = "downloaded" | "resumed" | "present";
export type ChecksumKind = "sha256" | "git-sha1" | "none";

export interface PulledFile {
  /** The path in the repository (`onnx/vision_encoder.onnx`). */
  path: string;
  /** Where it is on disk. */
  file: string;
  bytes: number;
  status: PullStatus;
  /** What the bytes were checked against ("none" for a file already present: it was checked when placed). */
  checksum: ChecksumKind;
}

export interface PullResult {
  repoId: string;
  revision: string;
  /** The commit the files come from, when the server named one. */
  commit: string | undefined;
  /** The snapshot directory: what a SAM loader takes as its model directory. */
  dir: string;
  files: PulledFile[];
}

/** `$SEGKIT_CACHE/hub`, else `$XDG_CACHE_HOME/segkit/hub`, else `~/.cache/segkit/hub`. */
export function defaultCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.SEGKIT_CACHE) return join(env.SEGKIT_CACHE, "hub");
  return join(env.XDG_CACHE_HOME || join(homedir(), ".cache"), "segkit", "hub");
}

const NAME_PART = /^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9])?$/;

/** `owner/name` (or a bare legacy `name`): letters, digits, `._-`, at most 96 each, no `--` or `..`. */
export function validateRepoId(repoId: string): string {
  const parts = repoId.split("/");
  const ok =
    parts.length <= 2 && parts.every((p) => NAME_PART.test(p)) && !repoId.includes("--") && !repoId.includes("..");
  if (!ok) {
    throw new SegkitError(`invalid repository id "${repoId.slice(0, 200)}"`, {
      hint: "expected owner/name: letters, digits, '.', '_', '-' (no '--' or '..')",
    });
  }
  return repoId;
}

function validateRevision(revision: string): string {
  const ok =
    revision.length > 0 &&
    revision.length <= 256 &&
    !/[\p{Cc}\\]/u.test(revision) &&
    revision.split("/").every((s) => s !== "" && s !== "." && s !== "..");
  if (!ok)
    throw new SegkitError(`invalid revision "${revision.slice(0, 200)}"`, { hint: "give a branch, tag or commit" });
  return revision;
}

/**
 * A repository path the server names, checked before it comes near the disk: relative, `/`-separated, no empty,
 * `.` or `..` segment, no backslash, colon (drive letters) or control character, at most 1000 characters and 255
 * per segment.
 */
export function validateRepoPath(path: string, source = "the server"): string {
  const segments = path.split("/");
  const ok =
    path.length > 0 &&
    path.length <= 1000 &&
    !isAbsolute(path) &&
    !/[\p{Cc}\\:]/u.test(path) &&
    segments.every((s) => s !== "" && s !== "." && s !== ".." && s.length <= 255);
  if (!ok) {
    throw new SegkitError(`refusing file name "${path.slice(0, 200)}" from ${source}`, {
      hint: "a repository path must be relative and stay inside the repository (no '..', no absolute path)",
    });
  }
  return path;
}

/**
 * Glob match of a repository path: `*` and `?` stay within a segment, `**` spans segments. A pattern without `/`
 * matches the file name in any directory (`*.onnx` matches `onnx/decoder.onnx`), as in .gitignore.
 */
export function matchesGlob(path: string, pattern: string): boolean {
  let re = "";
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i] as string;
    if (c === "*" && pattern[i + 1] === "*") {
      const slash = pattern[i + 2] === "/";
      re += slash ? "(?:.*/)?" : ".*";
      i += slash ? 2 : 1;
    } else if (c === "*") re += "[^/]*";
    else if (c === "?") re += "[^/]";
    else re += c.replace(/[.+^${}()|[\]\\]/g, "\\$&");
  }
  const subject = pattern.includes("/") ? path : (path.split("/").pop() ?? path);
  return new RegExp(`^${re}$`).test(subject);
}

/** The folder of a repository in the cache: `models--owner--name`. */
export function repoCacheDir(cacheDir: string, repoId: string): string {
  return join(cacheDir, `models--${validateRepoId(repoId).replace("/", "--")}`);
}

/** `join(root, path)`, refused when the result is not inside `root`. */
function inside(root: string, path: string): string {
  const full = resolveInside(root, path);
  if (!full) throw new SegkitError(`refusing file name "${path}": it leaves ${root}`);
  return full;
}

const encodePath = (path: string) => path.split("/").map(encodeURIComponent).join("/");
const unquote = (etag: string | null) => etag?.trim().replace(/^W\//, "").replace(/^"|"$/g, "") || undefined;

/** A request that follows redirects by hand, keeping every hop's `X-Linked-*` headers. */
interface Fetched {
  res: Response;
  url: string;
  linkedEtag: string | undefined;
  linkedSize: number | undefined;
}

interface Http {
  fetch: typeof fetch;
  endpoint: URL;
  token: string | undefined;
  signal: AbortSignal | undefined;
}

function describeFetchError(e: unknown): string {
  const cause = (e as { cause?: { code?: string; message?: string } }).cause;
  return cause?.code ?? cause?.message ?? (e instanceof Error ? e.message : String(e));
}

async function request(http: Http, url: string, headers: Record<string, string>, what: string): Promise<Fetched> {
  let current = new URL(url);
  let linkedEtag: string | undefined;
  let linkedSize: number | undefined;
  for (let hop = 0; hop <= MAX_REDIRECTS; hop++) {
    const auth =
      http.token && current.origin === http.endpoint.origin ? { authorization: `Bearer ${http.token}` } : undefined;
    let res: Response;
    try {
      res = await http.fetch(current, {
        headers: { "accept-encoding": "identity", "user-agent": "segkit", ...headers, ...auth },
        redirect: "manual",
        ...(http.signal ? { signal: http.signal } : {}),
      });
    } catch (e) {
      if (http.signal?.aborted) throw e;
      throw new SegkitError(`network error (${describeFetchError(e)})`, {
        file: what,
        hint: `could not reach ${current.origin}; check the connection and --endpoint`,
        cause: e,
      });
    }
    linkedEtag ??= unquote(res.headers.get("x-linked-etag"));
    linkedSize ??= sizeHeader(res.headers.get("x-linked-size"));
    if (res.status < 300 || res.status >= 400 || res.status === 304) {
      return { res, url: current.href, linkedEtag, linkedSize };
    }
    const location = res.headers.get("location");
    await res.body?.cancel();
    if (!location) throw new SegkitError(`HTTP ${res.status} redirect without a Location`, { file: what });
    current = new URL(location, current);
    if (current.protocol !== "https:" && current.protocol !== "http:") {
      throw new SegkitError(`refusing a redirect to ${current.protocol} URL`, { file: what });
    }
  }
  throw new SegkitError(`more than ${MAX_REDIRECTS} redirects`, { file: what });
}

function sizeHeader(v: string | null): number | undefined {
  if (v === null || !/^\d{1,16}$/.test(v.trim())) return undefined;
  return Number(v);
}

async function failStatus(res: Response, what: string, kind: "repository" | "file"): Promise<never> {
  await res.body?.cancel();
  const hint =
    res.status === 401 || res.status === 403
      ? "a private or gated repository needs a token (--token or HF_TOKEN) with access to it"
      : res.status === 404
        ? kind === "repository"
          ? "check the repository id, --revision and --endpoint"
          : "the repository has no such file at this revision"
        : undefined;
  const name = res.status === 404 ? `${kind} not found` : `the server answered HTTP ${res.status}`;
  throw new SegkitError(`${name} (HTTP ${res.status})`, { file: what, ...(hint ? { hint } : {}) });
}

/** Reads a response body of at most `max` bytes. */
async function readCapped(res: Response, max: number, what: string): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let n = 0;
  for await (const chunk of res.body ?? []) {
    n += chunk.length;
    // leaving the loop cancels the body
    if (n > max) throw new SegkitError(`response larger than ${max} bytes`, { file: what });
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

const ListingSchema = z.object({
  sha: z.string().optional(),
  siblings: z.array(z.object({ rfilename: z.string() })).max(MAX_REPO_FILES),
});

/** The repository's file paths at `revision` and the commit it resolves to. */
async function listRepo(
  http: Http,
  repoId: string,
  revision: string,
): Promise<{ commit: string | undefined; paths: string[] }> {
  const url = `${http.endpoint.href}api/models/${repoId}/revision/${encodeURIComponent(revision)}`;
  const what = `${repoId}@${revision}`;
  const { res } = await request(http, url, { accept: "application/json" }, what);
  if (!res.ok) await failStatus(res, what, "repository");
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(await readCapped(res, MAX_LISTING_BYTES, what)).toString("utf8"));
  } catch (e) {
    if (e instanceof SegkitError) throw e;
    throw new SegkitError("the file listing is not JSON", { file: url, cause: e });
  }
  const parsed = ListingSchema.safeParse(json);
  if (!parsed.success) {
    throw new SegkitError("the file listing has no siblings[].rfilename (or too many files)", { file: url });
  }
  const sha = parsed.data.sha;
  return {
    commit: sha && /^[0-9a-f]{40}$/.test(sha) ? sha : undefined,
    paths: parsed.data.siblings.map((s) => validateRepoPath(s.rfilename, url)),
  };
}

/** The hash of a file on disk, optionally after a prefix (git's `blob <size>\0`). */
async function hashFile(path: string, algorithm: "sha256" | "sha1", prefix = ""): Promise<string> {
  const hash = createHash(algorithm).update(prefix);
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest("hex");
}

/** Which checksum an ETag holds (see the module comment). */
export function checksumKind(etag: string | undefined): ChecksumKind {
  if (etag && /^[0-9a-f]{64}$/i.test(etag)) return "sha256";
  if (etag && /^[0-9a-f]{40}$/i.test(etag)) return "git-sha1";
  return "none";
}

/** A download's outcome; `resumed`: it started from bytes of an earlier run. */
type Attempt =
  | { ok: true; bytes: number; checksum: ChecksumKind; resumed: boolean }
  | { ok: false; resumed: boolean; why: string };

/**
 * One download of `url` into `part`, resuming from the bytes already there: 206 appends (its Content-Range must
 * start where the part ends), 200 means the server ignored Range and the part is rewritten from byte 0, 416 means
 * the part is not a prefix of the file. `{ ok: false }` asks the caller to delete the part and start over.
 */
async function downloadOnce(
  http: Http,
  url: string,
  part: string,
  path: string,
  maxBytes: number,
  progress: (done: number, start: number, total: number | undefined) => void,
): Promise<Attempt> {
  const have = (await stat(part).catch(() => undefined))?.size ?? 0;
  const { res, linkedEtag, linkedSize } = await request(http, url, have > 0 ? { range: `bytes=${have}-` } : {}, path);
  const resumed = have > 0;
  let start = 0;
  let total: number | undefined;
  if (res.status === 416) {
    await res.body?.cancel();
    const size = sizeHeader(/^bytes \*\/(\d+)$/.exec(res.headers.get("content-range") ?? "")?.[1] ?? null);
    if (size === undefined || size !== have)
      return { ok: false, resumed, why: "the partial file does not fit the server's" };
    start = have; // the part already holds the whole file
    total = size;
  } else if (res.status === 206) {
    const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(res.headers.get("content-range") ?? "");
    if (!m || Number(m[1]) !== have) {
      await res.body?.cancel();
      return { ok: false, resumed, why: "the server resumed at another offset" };
    }
    start = have;
    total = m[3] === "*" ? undefined : Number(m[3]);
  } else if (res.ok) {
    total = sizeHeader(res.headers.get("content-length"));
  } else {
    await failStatus(res, path, "file");
  }
  total = linkedSize ?? total;
  if (total !== undefined && total > maxBytes) {
    await res.body?.cancel();
    throw new SegkitError(`file of ${total} bytes is larger than the limit of ${maxBytes}`, { file: path });
  }
  const limit = total ?? maxBytes;
  const etag = linkedEtag ?? unquote(res.headers.get("etag"));

  // stream the body onto the part: appended after a 206, from byte 0 otherwise
  await mkdir(dirname(part), { recursive: true });
  const fh = await open(part, start > 0 ? "a" : "w");
  let done = start;
  progress(done, start, total);
  try {
    if (res.status !== 416) {
      for await (const chunk of res.body ?? []) {
        done += chunk.length;
        if (done > limit) return { ok: false, resumed, why: `the server sent more than ${limit} bytes` };
        await fh.write(chunk);
        progress(done, start, total);
      }
    }
  } catch (e) {
    if (http.signal?.aborted) throw e;
    throw new SegkitError(`download interrupted after ${done} of ${total ?? "?"} bytes (${describeFetchError(e)})`, {
      file: path,
      hint: `the partial file ${part} is kept: run the same command again to resume`,
      cause: e,
    });
  } finally {
    await fh.close();
  }
  if (total !== undefined && done !== total) {
    throw new SegkitError(`download ended after ${done} of ${total} bytes`, {
      file: path,
      hint: `the partial file ${part} is kept: run the same command again to resume`,
    });
  }

  // verify what the server's tag promises
  const checksum = checksumKind(etag);
  if (checksum !== "none") {
    const want = (etag as string).toLowerCase();
    const got = checksum === "sha256" ? await hashFile(part, "sha256") : await hashFile(part, "sha1", `blob ${done}\0`);
    if (got !== want) return { ok: false, resumed, why: `${checksum} mismatch: expected ${want}, got ${got}` };
  }
  return { ok: true, bytes: done, checksum, resumed: start > 0 };
}

/**
 * Downloads `repoId`'s files (the SAM ones by default) into the cache and returns where they are. Files already in
 * the snapshot are skipped; an interrupted download resumes from its `.part` on the next call. A part that turns
 * out wrong (bad checksum after a resume, a server that resumes elsewhere) is deleted and fetched once more from
 * the start; a file that is wrong when fetched whole is deleted and reported.
 */
export async function pullModel(repoId: string, options: PullOptions = {}): Promise<PullResult> {
  const o = { ...DEFAULT_PULL_OPTIONS, ...options };
  validateRepoId(repoId);
  const revision = validateRevision(o.revision);
  let endpoint: URL;
  try {
    endpoint = new URL(o.endpoint.endsWith("/") ? o.endpoint : `${o.endpoint}/`);
    if (endpoint.protocol !== "https:" && endpoint.protocol !== "http:") throw new Error(endpoint.protocol);
  } catch {
    throw new SegkitError(`invalid endpoint "${o.endpoint}"`, {
      hint: "give an http(s) URL like https://huggingface.co",
    });
  }
  if (!(Number.isSafeInteger(o.maxFileBytes) && o.maxFileBytes > 0)) {
    throw new SegkitError(`maxFileBytes must be a positive integer, got ${o.maxFileBytes}`);
  }
  const http: Http = { fetch: o.fetch ?? fetch, endpoint, token: o.token || undefined, signal: o.signal };

  // 1. the files and the commit: the listing filtered by the globs, or the paths given
  let commit: string | undefined;
  let paths: string[];
  if (o.files) {
    paths = o.files.map((p) => validateRepoPath(p, "the file list"));
    if (/^[0-9a-f]{40}$/.test(revision)) commit = revision;
  } else {
    const listing = await listRepo(http, repoId, revision);
    commit = listing.commit;
    const include = o.include ?? SAM_FILE_PATTERNS;
    paths = o.all ? listing.paths : listing.paths.filter((p) => include.some((g) => matchesGlob(p, g)));
    if (paths.length === 0) {
      throw new SegkitError(`no file matches ${include.join(" ")} (of ${listing.paths.length} in the repository)`, {
        file: `${repoId}@${revision}`,
        hint: "choose files with --include GLOB, or --all",
      });
    }
  }
  const folder = commit ?? encodeURIComponent(revision);
  const repoDir = repoCacheDir(resolve(o.cacheDir ?? defaultCacheDir()), repoId);
  const snapshot = inside(join(repoDir, "snapshots"), folder);
  const incomplete = inside(join(repoDir, "incomplete"), folder);
  if (commit && commit !== revision) {
    await writeFileAtomic(inside(join(repoDir, "refs"), encodeURIComponent(revision)), commit);
  }

  // 2. each file: skip it when present, else download (resuming), verify, and rename into the snapshot
  const files: PulledFile[] = [];
  for (const [index, path] of paths.entries()) {
    const file = inside(snapshot, path);
    const present = await stat(file).catch(() => undefined);
    if (present?.isFile()) {
      files.push({ path, file, bytes: present.size, status: "present", checksum: "none" });
      continue;
    }
    const part = `${inside(incomplete, path)}.part`;
    const url = `${endpoint.href}${repoId}/resolve/${encodeURIComponent(commit ?? revision)}/${encodePath(path)}`;
    const progress = (done: number, start: number, total: number | undefined) =>
      o.onProgress?.({ path, index, count: paths.length, done, start, total });
    let attempt = await downloadOnce(http, url, part, path, o.maxFileBytes, progress);
    if (!attempt.ok && attempt.resumed) {
      // a stale or foreign partial: once more from byte 0
      await rm(part, { force: true });
      attempt = await downloadOnce(http, url, part, path, o.maxFileBytes, progress);
    }
    if (!attempt.ok) {
      await rm(part, { force: true });
      throw new SegkitError(`${attempt.why}; the download was deleted`, {
        file: path,
        hint: "the server sent bytes that do not match it: try again, or report it to the repository's owner",
      });
    }
    await mkdir(dirname(file), { recursive: true });
    await syncFile(part);
    await renameDurably(part, file);
    const status: PullStatus = attempt.resumed ? "resumed" : "downloaded";
    files.push({ path, file, bytes: attempt.bytes, status, checksum: attempt.checksum });
  }
  return { repoId, revision, commit, dir: snapshot, files };
}
