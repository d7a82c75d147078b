import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { mkdir, mkdtemp, readdir, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, beforeEach, describe, it } from "node:test";
import { SegkitError } from "../core/errors.js";
import { type FakeHub, gitBlobSha1, startFakeHub } from "../test-utils/fake-hub.js";
import {
  checksumKind,
  defaultCacheDir,
  matchesGlob,
  type PullProgress,
  pullModel,
  validateRepoId,
  validateRepoPath,
} from "./hub.js";
import { createVideoPredictor } from "./video.js";

let hub: FakeHub;
let root: string;
let cacheDir: string;
before(async () => {
  hub = await startFakeHub();
  root = await mkdtemp(join(tmpdir(), "segkit-hub-"));
});
after(async () => {
  await hub.close();
  await rm(root, { recursive: true, force: true });
});
let n = 0;
beforeEach(async () => {
  hub.reset();
  cacheDir = join(root, `cache${n++}`);
});

const snapshotOf = (dir: string) => join(dir, "models--acme--tiny-sam", "snapshots", hub.commit);
/** Asserts that `p` rejects with a SegkitError whose one-line form (as the CLI prints it) matches `re`. */
const fails = (p: Promise<unknown>, re: RegExp) =>
  assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof SegkitError, String(e));
    assert.match(e.describe(), re);
    return true;
  });
const pull = (extra: Parameters<typeof pullModel>[1] = {}) =>
  pullModel("acme/tiny-sam", { endpoint: hub.url, cacheDir, ...extra });

describe("hub helpers", () => {
  it("matches globs per segment, names without / against the file name", () => {
    assert.equal(matchesGlob("onnx/decoder.onnx", "*.onnx"), true);
    assert.equal(matchesGlob("onnx/decoder.onnx_data", "*.onnx"), false);
    assert.equal(matchesGlob("onnx/decoder.onnx", "onnx/*.onnx"), true);
    assert.equal(matchesGlob("onnx/sub/decoder.onnx", "onnx/*.onnx"), false);
    assert.equal(matchesGlob("onnx/sub/decoder.onnx", "onnx/**/*.onnx"), true);
    assert.equal(matchesGlob("onnx/decoder.onnx", "onnx/**/*.onnx"), true);
    assert.equal(matchesGlob("a.json", "?.json"), true);
    assert.equal(matchesGlob("ab.json", "?.json"), false);
    assert.equal(matchesGlob("a+b.json", "a+b.json"), true);
  });

  it("checks repo ids and paths", () => {
    assert.equal(validateRepoId("facebook/sam-vit-base"), "facebook/sam-vit-base");
    assert.equal(validateRepoId("gpt2"), "gpt2");
    for (const bad of ["a/b/c", "../x", "a/..", "a--b/c", "-a/b", "a/b.", "", "a b/c", `a/${"x".repeat(97)}`]) {
      assert.throws(() => validateRepoId(bad), SegkitError, bad);
    }
    assert.equal(validateRepoPath("onnx/vision encoder.onnx"), "onnx/vision encoder.onnx");
    for (const bad of ["../x", "a/../../x", "/etc/passwd", "a//b", "./a", "a\\..\\b", "a\nb", "C:/x", ""]) {
      assert.throws(() => validateRepoPath(bad), /refusing file name/, JSON.stringify(bad));
    }
  });

  it("reads the hub's tags as checksums by their length", () => {
    assert.equal(checksumKind("a".repeat(64)), "sha256");
    assert.equal(checksumKind("A".repeat(40)), "git-sha1");
    assert.equal(checksumKind("d41d8cd98f00b204e9800998ecf8427e"), "none"); // an S3 md5
    assert.equal(checksumKind(undefined), "none");
    assert.equal(defaultCacheDir({ XDG_CACHE_HOME: "/c" }), "/c/segkit/hub");
    assert.equal(defaultCacheDir({ SEGKIT_CACHE: "/s", XDG_CACHE_HOME: "/c" }), "/s/hub");
  });
});

describe("pullModel against a local hub", () => {
  it("pulls the SAM files through the listing, the CDN redirect and both checksum kinds", async () => {
    const events: PullProgress[] = [];
    const r = await pull({ onProgress: (p) => events.push({ ...p }) });
    assert.equal(r.commit, hub.commit);
    assert.equal(r.dir, snapshotOf(cacheDir));
    // README.md and weights.bin are not SAM files; the listing's order is kept
    assert.deepEqual(
      r.files.map((f) => [f.path, f.status, f.checksum, f.bytes]),
      [
        ["config.json", "downloaded", "git-sha1", hub.files["config.json"]?.length],
        ["onnx/decoder.onnx", "downloaded", "sha256", hub.files["onnx/decoder.onnx"]?.length],
        ["onnx/encoder.onnx", "downloaded", "sha256", hub.files["onnx/encoder.onnx"]?.length],
        ["onnx/encoder.onnx_data", "downloaded", "sha256", hub.files["onnx/encoder.onnx_data"]?.length],
      ],
    );
    for (const f of r.files) assert.deepEqual(readFileSync(f.file), hub.files[f.path]);
    // files are fetched at the listed commit; the LFS ones from the CDN, without the token
    assert.ok(hub.log.some((l) => l.url === `/acme/tiny-sam/resolve/${hub.commit}/onnx/encoder.onnx`));
    assert.ok(hub.log.some((l) => l.url.startsWith("/cdn/")));
    // refs/main names the commit; nothing but finished files in the snapshot
    assert.equal(readFileSync(join(cacheDir, "models--acme--tiny-sam", "refs", "main"), "utf8"), hub.commit);
    assert.deepEqual((await readdir(join(r.dir, "onnx"))).sort(), [
      "decoder.onnx",
      "encoder.onnx",
      "encoder.onnx_data",
    ]);
    // progress: per file, ending at the file's size
    const last = events.filter((e) => e.path === "onnx/encoder.onnx_data").at(-1);
    assert.deepEqual(last, {
      path: "onnx/encoder.onnx_data",
      index: 3,
      count: 4,
      done: hub.files["onnx/encoder.onnx_data"]?.length,
      start: 0,
      total: hub.files["onnx/encoder.onnx_data"]?.length,
    });
    // a second pull finds everything in place and downloads nothing
    const requests = hub.log.length;
    const again = await pull();
    assert.deepEqual(
      again.files.map((f) => f.status),
      ["present", "present", "present", "present"],
    );
    assert.equal(hub.log.length, requests + 1); // the listing only
  });

  it("sends the token to the hub only, and honours --include, --all and explicit files", async () => {
    const r = await pull({ include: ["onnx/dec*"], token: "hf_secret" });
    assert.deepEqual(
      r.files.map((f) => f.path),
      ["onnx/decoder.onnx"],
    );
    const hubRequests = hub.log.filter((l) => !l.url.startsWith("/cdn/"));
    assert.ok(hubRequests.length > 0 && hubRequests.every((l) => l.authorization === "Bearer hf_secret"));
    assert.ok(hub.log.filter((l) => l.url.startsWith("/cdn/")).every((l) => l.authorization === undefined));
    const all = await pull({ all: true });
    assert.equal(all.files.length, Object.keys(hub.files).length);
    hub.reset();
    const one = await pull({ files: ["README.md"], revision: hub.commit });
    assert.equal(one.dir, snapshotOf(cacheDir));
    assert.equal(one.files[0]?.status, "present");
    assert.equal(hub.log.length, 0); // no listing, nothing fetched
  });

  it("resumes a download cut mid-file, asking only for the remainder", async () => {
    const path = "onnx/encoder.onnx_data";
    const size = hub.files[path]?.length ?? 0;
    hub.faults.cutAfter = 3000;
    const cut = (p: PullProgress) => p.done === 3000 && hub.cut();
    await assert.rejects(pull({ include: [path], onProgress: cut }), (e: SegkitError) => {
      assert.equal(e.file, path);
      assert.match(e.message, /^download interrupted after 3000 of 10000 bytes/);
      assert.match(e.hint ?? "", /partial file .*encoder\.onnx_data\.part is kept: run the same command again/);
      return true;
    });
    const part = join(cacheDir, "models--acme--tiny-sam", "incomplete", hub.commit, `${path}.part`);
    assert.equal((await stat(part)).size, 3000);
    assert.equal(existsSync(join(snapshotOf(cacheDir), path)), false);
    hub.reset();
    const events: PullProgress[] = [];
    const r = await pull({ include: [path], onProgress: (p) => events.push({ ...p }) });
    assert.deepEqual(
      r.files.map((f) => [f.status, f.checksum, f.bytes]),
      [["resumed", "sha256", size]],
    );
    assert.deepEqual(readFileSync(join(snapshotOf(cacheDir), path)), hub.files[path]);
    assert.deepEqual(
      hub.log.filter((l) => l.url.startsWith("/cdn/")).map((l) => [l.range, l.status]),
      [["bytes=3000-", 206]],
    );
    assert.deepEqual(events[0], { path, index: 0, count: 1, done: 3000, start: 3000, total: size });
    assert.equal(existsSync(part), false);
  });

  it("restarts cleanly when the server ignores Range", async () => {
    const path = "onnx/encoder.onnx_data";
    const part = join(cacheDir, "models--acme--tiny-sam", "incomplete", hub.commit, `${path}.part`);
    await mkdir(join(part, ".."), { recursive: true });
    await writeFile(part, Buffer.alloc(5000, 7)); // wrong bytes: a restart must overwrite them
    hub.faults.ignoreRange = true;
    const r = await pull({ include: [path] });
    assert.deepEqual(
      r.files.map((f) => [f.status, f.checksum]),
      [["downloaded", "sha256"]],
    );
    assert.deepEqual(readFileSync(join(snapshotOf(cacheDir), path)), hub.files[path]);
    assert.deepEqual(
      hub.log.filter((l) => l.url.startsWith("/cdn/")).map((l) => [l.range, l.status]),
      [["bytes=5000-", 200]],
    );
  });

  it("starts over when the partial does not fit the file (416, or a checksum mismatch after resuming)", async () => {
    const path = "onnx/decoder.onnx";
    const size = hub.files[path]?.length ?? 0;
    const part = join(cacheDir, "models--acme--tiny-sam", "incomplete", hub.commit, `${path}.part`);
    await mkdir(join(part, ".."), { recursive: true });
    await writeFile(part, Buffer.alloc(size + 10)); // longer than the file: 416
    const r = await pull({ include: [path] });
    assert.equal(r.files[0]?.status, "downloaded");
    assert.deepEqual(
      hub.log.filter((l) => l.url.startsWith("/cdn/")).map((l) => [l.range, l.status]),
      [
        [`bytes=${size + 10}-`, 416],
        [undefined, 200],
      ],
    );
    // a stale prefix (same length, other bytes): resumed, fails the sha256, refetched whole
    await rm(join(snapshotOf(cacheDir), path));
    await writeFile(part, Buffer.alloc(100, 1));
    hub.reset();
    const again = await pull({ include: [path] });
    assert.deepEqual(readFileSync(join(snapshotOf(cacheDir), path)), hub.files[path]);
    assert.equal(again.files[0]?.status, "downloaded");
    assert.deepEqual(
      hub.log.filter((l) => l.url.startsWith("/cdn/")).map((l) => l.range),
      ["bytes=100-", undefined],
    );
  });

  it("detects a wrong checksum, names the file and deletes the download", async () => {
    hub.faults.corrupt = "onnx/decoder.onnx";
    await assert.rejects(pull(), (e: SegkitError) => {
      assert.equal(e.file, "onnx/decoder.onnx");
      assert.match(e.message, /^sha256 mismatch: expected [0-9a-f]{64}, got [0-9a-f]{64}; the download was deleted$/);
      return true;
    });
    assert.equal(existsSync(join(snapshotOf(cacheDir), "onnx", "decoder.onnx")), false);
    const incomplete = join(cacheDir, "models--acme--tiny-sam", "incomplete", hub.commit, "onnx");
    assert.deepEqual(existsSync(incomplete) ? await readdir(incomplete) : [], []);
    // the small git file is checked too: its tag is the git blob sha1
    hub.reset();
    hub.faults.corrupt = "config.json";
    await fails(pull({ cacheDir: join(cacheDir, "b") }), /^config\.json: git-sha1 mismatch: expected [0-9a-f]{40}/);
  });

  it("reports a missing repository, a missing file and an unreachable server in one line each", async () => {
    await assert.rejects(pullModel("acme/nope", { endpoint: hub.url, cacheDir }), (e: SegkitError) => {
      assert.equal(
        e.describe(),
        "acme/nope@main: repository not found (HTTP 404). check the repository id, --revision and --endpoint",
      );
      return true;
    });
    await fails(
      pull({ files: ["missing.onnx"] }),
      /^missing\.onnx: file not found \(HTTP 404\)\. the repository has no such file at this revision$/,
    );
    // what Node's fetch throws when nothing listens (a closed port could be taken again by another process)
    const refused: typeof fetch = () =>
      Promise.reject(
        new TypeError("fetch failed", { cause: Object.assign(new Error("connect"), { code: "ECONNREFUSED" }) }),
      );
    await fails(
      pull({ files: ["config.json"], endpoint: "http://127.0.0.1:9", fetch: refused }),
      /^config\.json: network error \(ECONNREFUSED\)\. could not reach http:\/\/127\.0\.0\.1:9; check/,
    );
    await fails(pull({ endpoint: "ftp://x" }), /^invalid endpoint "ftp:\/\/x"/);
  });

  it("refuses a listing that names a file outside the repository, before downloading anything", async () => {
    hub.faults.evilName = "../x.onnx";
    await assert.rejects(pull(), (e: SegkitError) => {
      assert.match(e.message, /^refusing file name "\.\.\/x\.onnx" from http:\/\/127\.0\.0\.1:\d+\/api\/models/);
      return true;
    });
    assert.equal(hub.log.length, 1);
    assert.equal(existsSync(join(cacheDir, "models--acme--tiny-sam", "snapshots")), false);
    assert.equal(existsSync(join(cacheDir, "x.onnx")), false);
  });

  it("bounds redirects and file sizes", async () => {
    hub.faults.redirectLoop = true;
    await fails(pull({ files: ["config.json"] }), /^config\.json: more than 5 redirects$/);
    assert.equal(hub.log.length, 6);
    hub.reset();
    await fails(
      pull({ include: ["encoder.onnx_data"], maxFileBytes: 9999 }),
      /onnx\/encoder\.onnx_data: file of 10000 bytes is larger than the limit of 9999/,
    );
  });

  it("computes the fake hub's git tags as git does", () => {
    assert.equal(gitBlobSha1(Buffer.alloc(0)), "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391"); // git hash-object /dev/null
    assert.equal(gitBlobSha1(Buffer.from("hello\n")), "ce013625030ba8dba906f756967f9e9ca394464a");
  });
});

describe("pulling a SAM 2 directory", () => {
  it("fetches the 7 graphs and the constants (not the README) by default, and the result opens for video", async () => {
    const models = join(import.meta.dirname, "fixtures", "models", "sam2-ailia");
    const names = (await readdir(models)).sort();
    const files = Object.fromEntries(names.map((f) => [f, readFileSync(join(models, f))]));
    const sam2Hub = await startFakeHub({ ...files, "README.md": Buffer.from("# SAM 2.1 tiny\n") });
    try {
      const r = await pullModel("acme/tiny-sam", { endpoint: sam2Hub.url, cacheDir: join(root, "sam2") });
      assert.deepEqual(r.files.map((f) => f.path).sort(), names);
      for (const f of r.files) assert.deepEqual(readFileSync(f.file), files[f.path]);
      const video = await createVideoPredictor(r.dir, { threads: 1 });
      await video.dispose();
    } finally {
      await sam2Hub.close();
    }
  });
});
