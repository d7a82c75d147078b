import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, beforeEach, describe, it } from "node:test";
import { runCli } from "../test-utils/cli.js";
import { type FakeHub, startFakeHub } from "../test-utils/fake-hub.js";
import { formatBytes } from "./sam.js";

let hub: FakeHub;
let root: string;
before(async () => {
  hub = await startFakeHub();
  root = await mkdtemp(join(tmpdir(), "segkit-sam-cli-"));
});
after(async () => {
  await hub.close();
  await rm(root, { recursive: true, force: true });
});
beforeEach(() => hub.reset());

const pull = (dir: string, ...args: string[]) =>
  runCli(["sam", "pull", "acme/tiny-sam", "--endpoint", hub.url, "--dir", join(root, dir), ...args]);

describe("segkit sam pull", () => {
  it("formats sizes", () => {
    assert.deepEqual([0, 999, 1000, 20_021, 999_960, 2_500_000_000].map(formatBytes), [
      "0 B",
      "999 B",
      "1.0 kB",
      "20.0 kB",
      "1.0 MB",
      "2.5 GB",
    ]);
  });

  it("downloads the SAM files and says so in one line; a second run finds them in place", async () => {
    const r = await pull("a");
    assert.equal(r.code, 0, r.err);
    const dir = join(root, "a", "models--acme--tiny-sam", "snapshots", hub.commit);
    // 21 + 4000 + 6000 + 10000 bytes
    assert.equal(
      r.out,
      `pulled acme/tiny-sam@${hub.commit}: 4 files, 20.0 kB (4 downloaded, 0 resumed, 0 already present; ` +
        `checked: 3 sha256, 1 git-sha1) in ${dir}`,
    );
    assert.equal(r.err, "");
    assert.deepEqual(readFileSync(join(dir, "onnx", "encoder.onnx")), hub.files["onnx/encoder.onnx"]);
    assert.equal(existsSync(join(dir, "README.md")), false);
    const again = await pull("a");
    assert.match(again.out, /: 4 files, 20\.0 kB \(0 downloaded, 0 resumed, 4 already present\) in /);
  });

  it("takes --include (repeatable), --all, --revision and the token from HF_TOKEN", async () => {
    const saved = process.env.HF_TOKEN;
    process.env.HF_TOKEN = "hf_env";
    try {
      const r = await pull("b", "--include", "README.md", "--include", "*.bin", "--revision", "v1");
      assert.equal(r.code, 0, r.err);
      assert.match(r.out, /^pulled acme\/tiny-sam@0123456789abcdef0123456789abcdef01234567: 2 files, 511 B /);
      assert.equal(hub.log[0]?.url, "/api/models/acme/tiny-sam/revision/v1");
      assert.equal(hub.log[0]?.authorization, "Bearer hf_env");
    } finally {
      if (saved === undefined) delete process.env.HF_TOKEN;
      else process.env.HF_TOKEN = saved;
    }
    hub.reset();
    const all = await pull("b", "--all", "--token", "hf_flag");
    assert.match(
      all.out,
      /: 6 files, .* \(4 downloaded, 0 resumed, 2 already present; checked: 3 sha256, 1 git-sha1\) in /,
    );
    assert.equal(hub.log.at(-1)?.authorization, undefined); // the last request went to the CDN
    assert.ok(hub.log.every((l) => l.url.startsWith("/cdn/") || l.authorization === "Bearer hf_flag"));
  });

  it("reports a missing repository, a bad checksum and a bad name as one line, exit code 1", async () => {
    const missing = await runCli(["sam", "pull", "acme/nope", "--endpoint", hub.url, "--dir", join(root, "c")]);
    assert.equal(missing.code, 1);
    assert.equal(
      missing.err,
      "segkit: acme/nope@main: repository not found (HTTP 404). check the repository id, --revision and --endpoint",
    );
    hub.faults.corrupt = "onnx/encoder.onnx";
    const corrupt = await pull("c");
    assert.equal(corrupt.code, 1);
    assert.match(
      corrupt.err,
      /^segkit: onnx\/encoder\.onnx: sha256 mismatch: expected [0-9a-f]{64}, got [0-9a-f]{64}; the download was deleted\. /,
    );
    const bad = await runCli(["sam", "pull", "../etc", "--dir", join(root, "c")]);
    assert.equal(bad.code, 1);
    assert.match(bad.err, /^segkit: invalid repository id "\.\.\/etc"\. expected owner\/name/);
    hub.reset();
    hub.faults.evilName = "../../x.json";
    const evil = await pull("d");
    assert.equal(evil.code, 1);
    assert.match(evil.err, /^segkit: refusing file name "\.\.\/\.\.\/x\.json" from http:/);
    assert.equal(existsSync(join(root, "d", "models--acme--tiny-sam", "snapshots")), false);
  });

  it("lists pull under sam", async () => {
    const r = await runCli(["sam", "--help"]);
    assert.match(r.out, /pull \[options\] <repo-id>\s+download a model repository/);
  });
});
