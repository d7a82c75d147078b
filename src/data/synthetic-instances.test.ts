import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { instancesToTargets } from "../masks/instance-targets.js";
import { rleArea, rleDecode, rleIou } from "../masks/rle.js";
import { openDataset } from "./formats.js";
import { instanceTargetDataset } from "./instance-targets.js";
import { createSyntheticInstances, syntheticInstanceSample } from "./synthetic-instances.js";

describe("synthetic-instances", () => {
  it("deterministic, random access; instances are the visible parts: disjoint, covering exactly the class map", async () => {
    const ds = await openDataset("", { format: "synthetic-instances", length: 40, size: 96, seed: 3 });
    assert.deepEqual(ds.classNames, ["background", "disc", "box", "triangle"]);
    let touching = 0;
    for (let i = 0; i < ds.length; i++) {
      const s = await ds.get(i);
      assert.deepEqual(s, syntheticInstanceSample(3, i, 96));
      const inst = s.instances;
      assert.ok(inst && inst.masks.length >= 1 && inst.masks.length <= 8, `${i}: ${inst?.masks.length}`);
      const cover = new Uint8Array(96 * 96);
      for (const [k, rle] of inst.masks.entries()) {
        const m = rleDecode(rle).data;
        for (let p = 0; p < m.length; p++) {
          if (!m[p]) continue;
          cover[p] = (cover[p] as number) + 1;
          assert.equal(s.mask.data[p], inst.classIds[k]); // the class map says the instance's class there
        }
        const [x1, y1, x2, y2] = inst.boxes[k] ?? [0, 0, 0, 0];
        assert.ok(x2 > x1 && y2 > y1 && rleArea(rle) <= (x2 - x1) * (y2 - y1));
      }
      assert.ok(cover.every((c, p) => c <= 1 && (c === 1) === (s.mask.data[p] !== 0)));
      // touching: two instances whose masks, one pixel apart, meet (dilate one by 1 px to the right and down)
      const iou = rleIou(inst.masks, inst.masks);
      assert.ok(iou.every((row, a) => row.every((v, b) => (a === b ? v === 1 : v === 0))));
      touching += inst.masks.some((a, ka) =>
        inst.masks.some((b, kb) => {
          if (ka >= kb) return false;
          const ma = rleDecode(a).data;
          const mb = rleDecode(b).data;
          return ma.some((v, p) => v === 1 && (mb[p + 1] === 1 || mb[p + 96] === 1));
        }),
      )
        ? 1
        : 0;
    }
    assert.ok(touching >= 30, `${touching} of 40 images have touching instances`);
    assert.deepEqual(await ds.getInstances?.(5), (await ds.get(5)).instances);
  });

  it("options are checked like synthetic's", () => {
    assert.throws(() => createSyntheticInstances({ size: 8 }), /size must be an integer from 32 to 1024, got 8/);
  });
});

describe("instanceTargetDataset", () => {
  it("the class maps of the instances: background, boundary, interiors; from get and getMask alike", async () => {
    const ds = instanceTargetDataset(createSyntheticInstances({ length: 3, size: 64 }));
    assert.deepEqual(ds.classNames, ["background", "boundary", "disc", "box", "triangle"]);
    const s = await ds.get(1);
    assert.deepEqual(s.mask, await ds.getMask?.(1));
    const inst = s.instances;
    assert.ok(inst);
    assert.deepEqual(s.mask, instancesToTargets(inst, [1, 2, 3], { ignoreIndex: 255 }));
    const seen = new Set(s.mask.data);
    assert.ok(seen.has(0) && seen.has(1) && [2, 3, 4].some((c) => seen.has(c)));
    assert.throws(
      () => instanceTargetDataset({ ...ds, categories: undefined, format: "folder" }),
      /format folder has no instances/,
    );
  });
});
