import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { SegkitError } from "../core/errors.js";
import { panopticCategories } from "./panoptic.js";

const THINGS = [
  { id: 1, name: "person" },
  { id: 3, name: "car" },
];

describe("panopticCategories", () => {
  it("without the card's categories: class 0 and classes named like things are not stuff; stuff ids follow", () => {
    const c = panopticCategories(THINGS, ["background", "sky", "car", "road"]);
    assert.deepEqual(c.thingClasses, [0, 2]);
    assert.deepEqual(
      [...c.stuffIds],
      [
        [1, 4],
        [3, 5],
      ],
    );
  });

  it("a card's COCO categories give stuff their dataset ids; its things and background are not stuff", () => {
    const classes = ["person", "car", "sky", "road"];
    const fromPanoptic = [{ id: 1, isthing: true }, { id: 3, isthing: true }, { id: 119 }, { id: 149 }];
    const c = panopticCategories(THINGS, classes, undefined, fromPanoptic);
    assert.deepEqual(c.thingClasses, [0, 1]);
    assert.deepEqual(c.categories.slice(2), [
      { id: 119, name: "sky", isthing: 0 },
      { id: 149, name: "road", isthing: 0 },
    ]);
    // a coco model: background is no category (not stuff), the rest keep their ids
    const coco = panopticCategories(THINGS, ["background", "sky"], undefined, [null, { id: 119 }]);
    assert.deepEqual([coco.thingClasses, [...coco.stuffIds]], [[0], [[1, 119]]]);
    // a stuff class whose id is a thing's is an error
    assert.throws(
      () => panopticCategories(THINGS, ["background", "grass"], undefined, [null, { id: 3 }]),
      (e: unknown) =>
        e instanceof SegkitError && /stuff class 1 \(grass\) has COCO id 3, the id of a thing/.test(e.message),
    );
  });
});
