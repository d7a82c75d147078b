import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { SegkitError } from "../core/errors.js";
import { createMask, type Mask } from "../core/image.js";
import { createRng } from "../core/random.js";
import {
  contoursToRle,
  maskToPolygons,
  polygonsToMask,
  polygonsToRle,
  polygonToRle,
  simplifyPolygon,
} from "./polygon.js";
import { rleEncode, rleIou, rleToString } from "./rle.js";

interface PolygonCase {
  name: string;
  size: [number, number];
  polygons: number[][];
  strings: string[];
  merged: string;
}
/** pycocotools' rasterisation (`rleFrPoly`, then `merge`), written by scripts/make_rle_fixtures.py. */
const CASES = (
  JSON.parse(readFileSync(new URL("./fixtures/rle-reference.json", import.meta.url), "utf8")) as {
    polygons: PolygonCase[];
  }
).polygons;

function rows(text: string[]): Mask {
  return createMask(
    text[0]?.length ?? 0,
    text.length,
    Uint8Array.from(text.join(""), (c) => Number(c)),
  );
}

function show(mask: Mask): string[] {
  const out: string[] = [];
  for (let y = 0; y < mask.height; y++)
    out.push([...mask.data.subarray(y * mask.width, (y + 1) * mask.width)].join(""));
  return out;
}

/** Union of random discs: blobby shapes with holes where rings overlap. */
function blobs(seed: number, w: number, h: number, n: number): Mask {
  const rng = createRng(seed);
  const mask = createMask(w, h);
  for (let k = 0; k < n; k++) {
    const cx = rng.uniform(0, w);
    const cy = rng.uniform(0, h);
    const r = rng.uniform(4, Math.min(w, h) / 3);
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) if ((x + 0.5 - cx) ** 2 + (y + 0.5 - cy) ** 2 < r * r) mask.data[y * w + x] = 1;
    }
  }
  return mask;
}

describe("polygons", () => {
  it("rasterises a rectangle polygon to its pixels (corners on the integers)", () => {
    // x 1..5, y 1..4: columns 1-4, rows 1-3
    const mask = polygonsToMask([[1, 1, 1, 4, 5, 4, 5, 1]], 6, 8);
    assert.deepEqual(show(mask), ["00000000", "01111000", "01111000", "01111000", "00000000", "00000000"]);
  });

  it("matches pycocotools' rasterisation of polygons byte for byte", () => {
    assert.ok(CASES.length >= 10);
    for (const c of CASES) {
      const [h, w] = c.size;
      c.polygons.forEach((p, i) => {
        assert.equal(rleToString(polygonToRle(p, h, w)).counts, c.strings[i], c.name);
      });
      assert.equal(rleToString(polygonsToRle(c.polygons, h, w)).counts, c.merged, c.name);
    }
  });

  it("traces a mask with a hole into an outer ring and a hole ring", () => {
    const mask = rows(["00000", "01110", "01010", "01110", "00000"]);
    const contours = maskToPolygons(mask, { tolerance: 0 });
    assert.deepEqual(contours, [{ outer: [1, 1, 4, 1, 4, 4, 1, 4], holes: [[2, 2, 2, 3, 3, 3, 3, 2]] }]);
    assert.deepEqual(contoursToRle(contours, 5, 5), rleEncode(mask));
    // COCO polygons are unioned: without the hole the square comes back full
    assert.equal(
      polygonsToMask([contours[0]?.outer ?? []], 5, 5).data.reduce((a, b) => a + b, 0),
      9,
    );
  });

  it("traces diagonal neighbours as two components, an L shape as one ring", () => {
    assert.deepEqual(maskToPolygons(rows(["10", "01"]), { tolerance: 0 }), [
      { outer: [0, 0, 1, 0, 1, 1, 0, 1], holes: [] },
      { outer: [1, 1, 2, 1, 2, 2, 1, 2], holes: [] },
    ]);
    assert.deepEqual(maskToPolygons(rows(["10", "11"]), { tolerance: 0 }), [
      { outer: [0, 0, 1, 0, 1, 1, 2, 1, 2, 2, 0, 2], holes: [] },
    ]);
    assert.deepEqual(maskToPolygons(rows(["00", "00"])), []);
    // one class of a class-index mask
    assert.deepEqual(maskToPolygons(rows(["12", "12"]), { value: 2, tolerance: 0 }), [
      { outer: [1, 0, 2, 0, 2, 2, 1, 2], holes: [] },
    ]);
  });

  it("round-trips random masks exactly at tolerance 0 (pinches, holes, image edges)", () => {
    const rng = createRng(3);
    for (let t = 0; t < 40; t++) {
      const w = rng.int(1, 24);
      const h = rng.int(1, 24);
      const p = rng.next();
      const mask = createMask(
        w,
        h,
        Uint8Array.from({ length: w * h }, () => (rng.next() < p ? 1 : 0)),
      );
      const contours = maskToPolygons(mask, { tolerance: 0 });
      assert.deepEqual(contoursToRle(contours, h, w), rleEncode(mask), `case ${t}`);
    }
  });

  it("keeps IoU >= 0.95 on blobby shapes at tolerance 1 with far fewer vertices", () => {
    const ious: number[] = [];
    for (let seed = 1; seed <= 8; seed++) {
      const mask = blobs(seed, 96, 80, 4);
      const exact = maskToPolygons(mask, { tolerance: 0 });
      const simple = maskToPolygons(mask, { tolerance: 1 });
      const back = contoursToRle(simple, 80, 96);
      const iou = rleIou([back], [rleEncode(mask)])[0]?.[0] ?? 0;
      ious.push(iou);
      const vertices = (cs: typeof exact) => cs.reduce((n, c) => n + c.outer.length / 2, 0);
      assert.ok(vertices(simple) < vertices(exact) / 2, `seed ${seed}: ${vertices(simple)} vs ${vertices(exact)}`);
    }
    // measured: min 0.962, mean 0.972 over seeds 1..8 (tolerance 2: min 0.93; tolerance 0.5: 1.0)
    assert.ok(Math.min(...ious) >= 0.95, ious.join(" "));
  });

  it("simplifies a closed ring with Douglas-Peucker", () => {
    // a square with a 0.5 bump on its top edge: tolerance 1 drops the bump, 0.25 keeps it
    const ring = [0, 0, 4, 0, 5, 0.5, 6, 0, 10, 0, 10, 10, 0, 10];
    assert.deepEqual(simplifyPolygon(ring, 1), [0, 0, 10, 0, 10, 10, 0, 10]);
    assert.deepEqual(simplifyPolygon(ring, 0.25), [0, 0, 4, 0, 5, 0.5, 6, 0, 10, 0, 10, 10, 0, 10]);
    // a 1-pixel square would collapse to 2 vertices: it stays as it is
    assert.deepEqual(simplifyPolygon([0, 0, 1, 0, 1, 1, 0, 1], 1), [0, 0, 1, 0, 1, 1, 0, 1]);
  });

  it("rejects bad polygons with a SegkitError", () => {
    assert.throws(
      () => polygonToRle([1, 2, 3, 4], 5, 5, "a.json"),
      (e: SegkitError) => e.file === "a.json",
    );
    assert.throws(() => polygonToRle([0, 0, 1, Number.NaN, 2, 2], 5, 5), SegkitError);
    assert.throws(() => polygonToRle([0, 0, 1e9, 0, 2, 2], 5, 5), /within/);
    assert.throws(() => maskToPolygons(rows(["1"]), { tolerance: -1 }), /tolerance/);
  });
});
