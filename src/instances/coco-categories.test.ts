import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { COCO_91_NAMES, cocoIdsOf } from "./coco-categories.js";

describe("COCO categories", () => {
  it("COCO's 80 names in order get COCO's ids (Ultralytics' coco80_to_coco91_class); anything else none", () => {
    const names = COCO_91_NAMES.filter((n, id) => id > 0 && n !== "N/A");
    const ids = cocoIdsOf(names);
    assert.equal(ids?.length, 80);
    // by hand: the first gap is 12 (after "fire hydrant" 11 comes "stop sign" 13); the last is "toothbrush" 90
    assert.deepEqual(ids?.slice(9, 12), [10, 11, 13]);
    assert.deepEqual([ids?.[0], ids?.at(-1)], [1, 90]);
    assert.equal(cocoIdsOf(names.slice(1)), undefined);
    assert.equal(cocoIdsOf(names.map((n, i) => (i === 5 ? "autobus" : n))), undefined);
    assert.equal(cocoIdsOf(["cat", "dog"]), undefined);
  });
});
