import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { fitView, panBy, toImage, toScreen, zoomAt } from "./view.js";

describe("studio view", () => {
  it("fits, zooms about a point, pans, and maps both ways", () => {
    assert.deepEqual(fitView(200, 100, 100, 100), { scale: 0.5, ox: 0, oy: 25 });
    assert.deepEqual(fitView(20, 10, 100, 100), { scale: 4, ox: 10, oy: 30 });
    assert.deepEqual(fitView(40, 10, 100, 100), { scale: 2.5, ox: 0, oy: 37.5 });
    const v = zoomAt({ scale: 1, ox: 40, oy: 45 }, 4, 50, 50);
    // the image point under (50, 50) before, (10, 5), is still there
    assert.deepEqual(toImage(v, 50, 50), { x: 10, y: 5 });
    assert.deepEqual(v, { scale: 4, ox: 10, oy: 30 });
    assert.deepEqual(toScreen(v, 0, 0), { x: 10, y: 30 });
    assert.deepEqual(toImage(panBy(v, 8, -4), 18, 26), { x: 0, y: 0 });
    assert.equal(zoomAt(v, 1000, 0, 0).scale, 32);
  });
});
