import assert from "node:assert/strict";
import { cp, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { SegkitError } from "../core/errors.js";
import type { PanopticSegmentation } from "../data/coco-panoptic.js";
import { type PanopticQuality, PqStat, pqCompute } from "./panoptic.js";

const FIXTURES = join(import.meta.dirname, "fixtures", "panoptic");

/** Every number of `got` equals `want`'s to 1e-6, and both have the same keys. */
function assertClose(got: PanopticQuality, want: PanopticQuality): void {
  const walk = (g: unknown, w: unknown, path: string) => {
    if (typeof w === "number") {
      assert.ok(Math.abs((g as number) - w) <= 1e-6, `${path}: ${g} != ${w}`);
      return;
    }
    const gk = Object.keys(g as object).sort();
    assert.deepEqual(gk, Object.keys(w as object).sort(), path);
    for (const k of gk) walk((g as Record<string, unknown>)[k], (w as Record<string, unknown>)[k], `${path}.${k}`);
  };
  walk(got, want, "result");
}

const seg = (width: number, ids: number[], segments: PanopticSegmentation["segments"]): PanopticSegmentation => ({
  width,
  height: ids.length / width,
  ids: Uint32Array.from(ids),
  segments,
});

describe("pqCompute: parity with panopticapi's pq_compute", () => {
  for (const [name, gt, pred, expected] of [
    ["hand-made cases", "panoptic_val.json", "pred.json", "expected.json"],
    ["seeded random layouts", "random_gt.json", "random_pred.json", "random_expected.json"],
  ] as const) {
    it(`equals pq_compute on the ${name} to 1e-6`, async () => {
      const want = JSON.parse(await readFile(join(FIXTURES, expected), "utf8")) as PanopticQuality;
      const got = await pqCompute(join(FIXTURES, gt), join(FIXTURES, pred));
      assertClose(got, want);
      assert.ok(got.All.n > 0 && got.Things.n > 0 && got.Stuff.n > 0);
    });
  }

  it("takes the PNG folders from pred-dir / gt-dir", async () => {
    const dir = await mkdtemp(join(tmpdir(), "segkit-pq-"));
    try {
      await cp(join(FIXTURES, "pred"), join(dir, "elsewhere"), { recursive: true });
      await cp(join(FIXTURES, "pred.json"), join(dir, "p.json"));
      const want = JSON.parse(await readFile(join(FIXTURES, "expected.json"), "utf8")) as PanopticQuality;
      await assert.rejects(pqCompute(join(FIXTURES, "panoptic_val.json"), join(dir, "p.json")), /prediction PNGs/);
      const got = await pqCompute(join(FIXTURES, "panoptic_val.json"), join(dir, "p.json"), {
        predDir: join(dir, "elsewhere"),
        gtDir: join(FIXTURES, "panoptic_val"),
      });
      assertClose(got, want);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe("PqStat", () => {
  const categories = [
    { id: 1, name: "thing", isthing: true },
    { id: 10, name: "stuff", isthing: false },
    { id: 20, name: "unseen", isthing: false },
  ];

  it("scores a hand-computed case: matches with void in the union, crowd, false positives and negatives", () => {
    const stat = new PqStat();
    // gt: segment 1 (thing, 4 px), segment 2 (stuff, 3 px), one void pixel; pred: 5 (thing, 5 px), 6 (stuff, 3 px)
    // (1,5): IoU 4 / (5 + 4 - 4 - 0) = 0.8; (2,6): 2 / (3 + 3 - 2 - 1 void) = 2/3
    stat.add(
      seg(
        4,
        [1, 1, 2, 2, 1, 1, 2, 0],
        [
          { id: 1, categoryId: 1, iscrowd: false, area: 4 },
          { id: 2, categoryId: 10, iscrowd: false, area: 3 },
        ],
      ),
      seg(
        4,
        [5, 5, 5, 6, 5, 5, 6, 6],
        [
          { id: 5, categoryId: 1, iscrowd: false },
          { id: 6, categoryId: 10, iscrowd: false },
        ],
      ),
    );
    const first = stat.scores(categories);
    assert.deepEqual(first.per_class["1"], { pq: 0.8, sq: 0.8, rq: 1 });
    assert.ok(Math.abs((first.per_class["10"]?.pq ?? 0) - 2 / 3) < 1e-12);
    // gt: crowd 3 (thing) and 4 (thing); pred: 7 (thing, all on the crowd: ignored), 8 (stuff on 4: FP); 4 is a FN
    stat.add(
      seg(
        4,
        [3, 3, 4, 4],
        [
          { id: 3, categoryId: 1, iscrowd: true, area: 2 },
          { id: 4, categoryId: 1, iscrowd: false, area: 2 },
        ],
      ),
      seg(
        4,
        [7, 7, 8, 0],
        [
          { id: 7, categoryId: 1, iscrowd: false },
          { id: 8, categoryId: 10, iscrowd: false },
        ],
      ),
    );
    const r = stat.scores(categories);
    const thing = { pq: 0.8 / 1.5, sq: 0.8, rq: 1 / 1.5 };
    const stuff = { pq: 2 / 3 / 1.5, sq: 2 / 3, rq: 1 / 1.5 };
    assertClose(r, {
      All: { pq: (thing.pq + stuff.pq) / 2, sq: (thing.sq + stuff.sq) / 2, rq: 1 / 1.5, n: 2 },
      Things: { ...thing, n: 1 },
      Stuff: { ...stuff, n: 1 },
      per_class: { "1": thing, "10": stuff, "20": { pq: 0, sq: 0, rq: 0 } },
    });
  });

  it("gives NaN means over no categories (panopticapi divides by zero)", () => {
    const r = new PqStat().scores(categories);
    assert.ok(Number.isNaN(r.All.pq) && r.All.n === 0);
  });

  it("rejects predictions whose PNG and segments_info disagree, naming the file", () => {
    const gt = seg(2, [1, 1], [{ id: 1, categoryId: 1, iscrowd: false, area: 2 }]);
    const from = { pred: "p.png", imageId: 7 };
    const add = (ids: number[], segments: PanopticSegmentation["segments"]) => () =>
      new PqStat().add(gt, seg(2, ids, segments), new Set([1]), from);
    const one = [{ id: 5, categoryId: 1, iscrowd: false }];
    assert.throws(add([5, 6], one), (e: unknown) => e instanceof SegkitError && e.file === "p.png");
    assert.throws(add([5, 6], one), /image 7: segment id 6 is in the PNG but not in segments_info/);
    assert.throws(add([5, 5], [...one, { id: 9, categoryId: 1, iscrowd: false }]), /ids 9 are in segments_info/);
    assert.throws(add([5, 5], [{ id: 5, categoryId: 3, iscrowd: false }]), /unknown category_id 3/);
    assert.throws(add([5, 5, 5, 5], one), /prediction is 2x2, ground truth 2x1/);
  });
});

describe("pqCompute: bad files", () => {
  it("names the file: not panoptic JSON, an image without prediction", async () => {
    const dir = await mkdtemp(join(tmpdir(), "segkit-pq-"));
    try {
      await writeFile(join(dir, "p.json"), JSON.stringify({ annotations: [{ image_id: 1 }] }));
      await assert.rejects(pqCompute(join(FIXTURES, "panoptic_val.json"), join(dir, "p.json")), (e: unknown) => {
        assert.ok(e instanceof SegkitError);
        assert.equal(e.file, join(dir, "p.json"));
        assert.match(e.message, /annotation #0 \(image_id 1\): file_name/);
        return true;
      });
      await writeFile(join(dir, "p.json"), JSON.stringify({ annotations: [] }));
      await cp(join(FIXTURES, "pred"), join(dir, "p"), { recursive: true });
      await assert.rejects(
        pqCompute(join(FIXTURES, "panoptic_val.json"), join(dir, "p.json")),
        /no prediction for the image with id 1/,
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
