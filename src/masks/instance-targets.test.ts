import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { createMask } from "../core/image.js";
import { syntheticInstanceSample } from "../data/synthetic-instances.js";
import { instancesToTargets, targetsToInstances } from "./instance-targets.js";
import { instancesFromMasks } from "./instances.js";
import { rleDecode, rleIou } from "./rle.js";

/** A 7 x 4 mask with [x1, x2) x [y1, y2) set. */
function rect(x1: number, y1: number, x2: number, y2: number) {
  const m = createMask(7, 4);
  for (let y = y1; y < y2; y++) for (let x = x1; x < x2; x++) m.data[y * 7 + x] = 1;
  return m;
}

describe("instance targets", () => {
  it("two touching boxes: their meeting edges are boundary, interiors by category; back to the same two boxes", () => {
    const inst = instancesFromMasks([rect(0, 0, 4, 4), rect(4, 0, 7, 4)], { classIds: [5, 9] });
    const t = instancesToTargets(inst, [9, 5]);
    // rows are identical (the image's top and bottom are not edges): 5 -> interior class 3, 9 -> 2
    assert.deepEqual([...t.data.subarray(0, 7)], [3, 3, 3, 1, 1, 2, 2]);
    assert.deepEqual([...t.data.subarray(21, 28)], [3, 3, 3, 1, 1, 2, 2]);
    const back = targetsToInstances(t, [9, 5]);
    assert.deepEqual(back.classIds.slice().sort(), [5, 9]);
    const want = [rect(0, 0, 4, 4), rect(4, 0, 7, 4)];
    for (const [k, m] of back.masks.entries()) {
      const id = back.classIds[k];
      // the boundary pixels split by who reaches them first: each box keeps its own edge column
      assert.deepEqual([...rleDecode(m).data], [...(want[id === 5 ? 0 : 1]?.data ?? [])]);
    }
  });

  it("crowd regions are ignored; probabilities give the scores; tiny seeds are dropped", () => {
    const inst = {
      ...instancesFromMasks([rect(0, 0, 3, 4), rect(4, 0, 7, 4)], { classIds: [1, 1] }),
      iscrowd: [false, true],
    };
    const t = instancesToTargets(inst, [1]);
    assert.deepEqual([...t.data.subarray(0, 7)], [2, 2, 1, 0, 255, 255, 255]);
    const probs = new Float32Array(3 * 28).fill(0.1);
    for (let p = 0; p < 28; p++) if (t.data[p] === 2) probs[2 * 28 + p] = 0.8;
    const back = targetsToInstances(t, [1], { probs });
    assert.equal(back.masks.length, 1);
    assert.ok(Math.abs((back.scores[0] ?? 0) - 0.8) < 1e-6);
    assert.equal(targetsToInstances(t, [1], { minSeedArea: 9 }).masks.length, 0); // the seed is 8 px
  });

  it("synthetic instances survive the round trip: mean IoU of each instance with its own decoding >= 0.9", () => {
    let sum = 0;
    let count = 0;
    for (let i = 0; i < 20; i++) {
      const inst = syntheticInstanceSample(1, i, 96).instances;
      assert.ok(inst);
      const back = targetsToInstances(instancesToTargets(inst, [1, 2, 3]), [1, 2, 3], { minSeedArea: 1 });
      const iou = rleIou(inst.masks, back.masks);
      for (const row of iou) {
        sum += Math.max(0, ...row);
        count++;
      }
    }
    assert.ok(sum / count >= 0.9, `mean best IoU ${sum / count}`);
  });
});
