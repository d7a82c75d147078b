import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { createMask } from "../core/image.js";
import { instancesFromMasks } from "./instances.js";
import { fusePanoptic } from "./panoptic-fusion.js";

/** A 4 x 2 mask from a row-major string of 0/1. */
const mask = (bits: string) => createMask(4, 2, Uint8Array.from(bits, Number));

describe("fusePanoptic", () => {
  it("things best first, keeping their free pixels; overlapping, low-score and empty ones dropped; stuff fills the rest", () => {
    const inst = instancesFromMasks(
      [mask("11000000"), mask("01100000"), mask("11000000"), mask("00000001"), mask("00000000")],
      { classIds: [7, 8, 9, 7, 7], scores: [0.9, 0.8, 0.7, 0.4, 0.95] },
    );
    // semantic: 0 = thing, 1 and 2 stuff
    const semantic = createMask(4, 2, Uint8Array.of(0, 0, 1, 1, 2, 2, 2, 0));
    const { ids, segments } = fusePanoptic(inst, semantic, { stuffAreaThreshold: 2 });
    // by score: 4 is empty; 0 takes 2 px; 1 keeps 1 of 2 (half taken is not more than 0.5); 2 is all taken;
    // 3 scores under 0.5. Stuff: class 1 has 1 px left (under 2), class 2 has 3, class 0 is "some thing"
    assert.deepEqual([...ids], [1, 1, 2, 0, 3, 3, 3, 0]);
    assert.deepEqual(segments, [
      { id: 1, isthing: true, categoryId: 7, area: 2, score: 0.9, instance: 0 },
      { id: 2, isthing: true, categoryId: 8, area: 1, score: 0.8, instance: 1 },
      { id: 3, isthing: false, classIndex: 2, area: 3 },
    ]);
    assert.throws(() => fusePanoptic(inst, createMask(4, 3)), /instances of a 4x2 image and a 4x3 semantic map/);
  });
});
