import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { balance, createParallelUpscaler } from "./parallel-upscale.js";
import { upscaleAndThreshold } from "./postprocess.js";
import { preprocessShape } from "./transforms.js";

/** Three low-res planes: noise around 0 (every output pixel in doubt), a confident disc, a constant. */
function planes(): Float32Array {
  const low = new Float32Array(3 * 65536);
  let s = 12345;
  for (let i = 0; i < 65536; i++) {
    s = (s * 16807) % 2147483647;
    low[i] = (s / 2147483647 - 0.5) * 0.8;
    const [x, y] = [i % 256, Math.floor(i / 256)];
    low[65536 + i] = Math.hypot(x - 90, y - 70) < 40 ? 12 : -9;
    low[2 * 65536 + i] = 0.5;
  }
  return low;
}

describe("createParallelUpscaler", () => {
  it("shares a click's rows with its worker and returns what upscaleAndThreshold does", async () => {
    const up = createParallelUpscaler({ maxWaitMs: Number.POSITIVE_INFINITY });
    try {
      assert.equal(await up.ready, true);
      const low = planes();
      for (const size of [
        { height: 480, width: 640 },
        { height: 301, width: 97 }, // an odd number of rows: parts of 138 and 163
        { height: 700, width: 1000 }, // a larger shared buffer
      ]) {
        const frame = preprocessShape(size.height, size.width);
        const want = upscaleAndThreshold(low, frame, size);
        const got = up.run(low, frame, size);
        assert.deepEqual(got.masks, want.masks);
        assert.deepEqual(got.stability, want.stability);
        assert.deepEqual([got.intersections, got.unions], [want.intersections, want.unions]);
        // the constant 0.5: every pixel in the mask, above -1 and not above 1
        assert.equal(got.masks[2]?.indexOf(0), -1);
        assert.deepEqual([got.intersections[2], got.unions[2]], [0, size.height * size.width]);
      }
      assert.equal(up.parallelRuns, 3);
    } finally {
      await up.dispose();
    }
  });

  // (whether a given run found the worker done is timing; what must hold either way is the result)
  it("a worker that is late: the calling thread computes its rows, and the buffer waits for the late job", async () => {
    const up = createParallelUpscaler({ maxWaitMs: 0 });
    try {
      await up.ready;
      const low = planes();
      const size = { height: 480, width: 640 };
      const frame = preprocessShape(size.height, size.width);
      const want = upscaleAndThreshold(low, frame, size);
      for (let k = 0; k < 6; k++) {
        const got = up.run(low, frame, size);
        assert.deepEqual(got.masks, want.masks);
        assert.deepEqual([got.intersections, got.unions], [want.intersections, want.unions]);
      }
    } finally {
      await up.dispose();
    }
  });

  it("balance: the calling thread's share from both threads' time per pixel, averaged", () => {
    // the worker twice as slow: the calling thread takes 2/3 of the rows
    const first = balance(undefined, { caller: 1e-5, worker: 2e-5 });
    assert.deepEqual(first.rates, { caller: 1e-5, worker: 2e-5 });
    assert.ok(Math.abs(first.share - 2 / 3) < 1e-12);
    // then as fast: the averages move a quarter of the way, 1.75e-5 for the worker, share 1.75 / 2.75
    const second = balance(first.rates, { caller: 1e-5, worker: 1e-5 });
    assert.ok(Math.abs(second.rates.worker - 1.75e-5) < 1e-15);
    assert.ok(Math.abs(second.share - 1.75 / 2.75) < 1e-12);
    // bounds, and measurements that say nothing
    assert.equal(balance(undefined, { caller: 1, worker: 100 }).share, 0.9);
    assert.equal(balance(undefined, { caller: 1, worker: 0.01 }).share, 0.25);
    assert.equal(balance(undefined, { caller: 0, worker: 0 }).share, 0.46);
  });

  it("small images, bad input and a stopped worker: the calling thread alone, the same errors", async () => {
    const up = createParallelUpscaler();
    await up.ready;
    const low = planes();
    const small = { height: 40, width: 50 };
    assert.deepEqual(up.run(low, "stretch", small), upscaleAndThreshold(low, "stretch", small));
    assert.throws(() => up.run(new Float32Array(100), "stretch", { height: 480, width: 640 }), /256, 256/);
    assert.throws(() => up.run(low, { height: 2000, width: 10 }, { height: 480, width: 640 }), /exceeds 1024/);
    assert.throws(() => createParallelUpscaler({ maxWaitMs: Number.NaN }), /maxWaitMs must be a number >= 0/);
    assert.equal(up.parallelRuns, 0);
    await up.dispose();
    const size = { height: 480, width: 640 };
    assert.deepEqual(up.run(low, "stretch", size).masks, upscaleAndThreshold(low, "stretch", size).masks);
    assert.equal(up.parallelRuns, 0);
  });
});
