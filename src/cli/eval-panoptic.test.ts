import assert from "node:assert/strict";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { runCli } from "../test-utils/cli.js";
import { pythonFixed1 } from "./eval-panoptic.js";

const FIXTURES = join(import.meta.dirname, "..", "eval", "fixtures", "panoptic");
const GT = join(FIXTURES, "panoptic_val.json");
/** `segkit eval --task panoptic` on the fixtures' predictions and ground truth, with more flags. */
const evalPanoptic = (...flags: string[]) =>
  runCli(["eval", "--task", "panoptic", "--pred", join(FIXTURES, "pred.json"), "--gt", GT, ...flags]);

describe("segkit eval --task panoptic", () => {
  it("prints panopticapi's table and writes the JSON report", async () => {
    const dir = await mkdtemp(join(tmpdir(), "segkit-eval-pq-"));
    try {
      const json = join(dir, "pq.json");
      const r = await evalPanoptic("--json", json);
      assert.equal(r.code, 0, r.err);
      // the table pq_compute printed for these files (scripts/fixtures/panoptic_reference.py)
      assert.deepEqual(r.outLines.slice(0, 5), [
        "          |    PQ     SQ     RQ     N",
        "--------------------------------------",
        "All       |  35.4   52.9   46.2     6",
        "Things    |  22.4   35.1   35.0     4",
        "Stuff     |  61.4   88.5   68.6     2",
      ]);
      const want = JSON.parse(await readFile(join(FIXTURES, "expected.json"), "utf8"));
      const got = JSON.parse(await readFile(json, "utf8"));
      assert.equal(got.All.n, want.All.n);
      assert.ok(Math.abs(got.Things.pq - want.Things.pq) < 1e-12);
      assert.deepEqual(Object.keys(got.per_class).sort(), Object.keys(want.per_class).sort());

      const other = await evalPanoptic("--pred-dir", join(FIXTURES, "panoptic_val"), "--json", json);
      assert.equal(other.code, 1);
      assert.match(
        other.err,
        /^segkit: .*panoptic_val\/000001\.png: image 1: segment id \d+ is in the PNG but not in segments_info/,
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("writes one decimal as Python's format does: exact ties to the even digit", () => {
    // "{:.1f}".format(x) for each: 12.25 and 0.25 are exact ties, 12.35 is not (12.3499999...)
    assert.deepEqual([12.25, 12.75, 0.25, 12.35, 99.95, 100].map(pythonFixed1), [
      "12.2",
      "12.8",
      "0.2",
      "12.3",
      "100.0",
      "100.0",
    ]);
  });

  it("reports a missing --gt or PNG folder in one line", async () => {
    const noGt = await runCli(["eval", "--task", "panoptic", "--pred", join(FIXTURES, "pred.json")]);
    assert.equal(noGt.code, 1);
    assert.match(noGt.err, /^segkit: --task panoptic needs --gt/);
    const noDir = await evalPanoptic("--gt-dir", join(FIXTURES, "missing"));
    assert.equal(noDir.code, 1);
    assert.match(noDir.err, /missing: folder with the ground-truth PNGs not found/);
  });
});
