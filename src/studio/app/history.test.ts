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

  it("keeps at most `limit` undo steps, dropping the oldest", () => {
    const h = new History(0, 3);
    for (let i = 1; i <= 5; i++) h.push(i);
    assert.deepEqual([h.undo(), h.undo(), h.undo(), h.undo()], [4, 3, 2, undefined]);
    assert.equal(h.current, 2);
    assert.deepEqual([h.redo(), h.redo(), h.redo(), h.redo()], [3, 4, 5, undefined]);
    assert.throws(() => new History(0, 0), /undo limit must be a positive integer, got 0/);
  });
});
