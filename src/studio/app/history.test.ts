import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { History } from "./history.js";

describe("studio history", () => {
  it("undoes and redoes whole states; a new action drops the redo branch", () => {
    const h = new History<string[]>([]);
    h.push(["a"]);
    h.push(["a", "b"]);
    assert.deepEqual(h.undo(), ["a"]);
    assert.deepEqual(h.undo(), []);
    assert.equal(h.undo(), undefined);
    assert.deepEqual(h.current, []);
    assert.deepEqual(h.redo(), ["a"]);
    h.push(["c"]);
    assert.equal(h.canRedo, false);
    assert.equal(h.redo(), undefined);
    assert.deepEqual(h.undo(), ["a"]);
    assert.equal(h.canUndo, true);
  });
});
