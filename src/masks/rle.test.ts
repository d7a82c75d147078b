import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { SegkitError } from "../core/errors.js";
import { createMask, type Mask } from "../core/image.js";
import { createRng } from "../core/random.js";
import {
  bboxIou,
  type Rle,
  rleArea,
  rleDecode,
  rleEncode,
  rleEncodeLabels,
  rleFromString,
  rleInvert,
  rleIou,
  rleMerge,
  rlePaint,
  rleToBbox,
  rleToString,
} from "./rle.js";

interface RefMask {
  name: string;
  size: [number, number];
  bits: string;
  counts: number[];
  string: string;
  area: number;
  bbox: number[];
}
interface Reference {
  masks: RefMask[];
  merges: { masks: string[]; intersect: boolean; string: string }[];
  iou: { dt: string[]; gt: string[]; iscrowd: number[]; iou: number[][] };
}
/** pycocotools' own results (maskApi.c), written by scripts/make_rle_fixtures.py. */
const REFERENCE = JSON.parse(
  readFileSync(new URL("./fixtures/rle-reference.json", import.meta.url), "utf8"),
) as Reference;

/** A fixture mask: row-major, 8 pixels a byte, most significant bit first. */
function unpackMask(size: readonly [number, number], bits: string): Mask {
  const [h, w] = size;
  const bytes = Buffer.from(bits, "base64");
  const mask = createMask(w, h);
  for (let i = 0; i < h * w; i++) mask.data[i] = ((bytes[i >> 3] as number) >> (7 - (i & 7))) & 1;
  return mask;
}

function rows(text: string[]): Mask {
  return createMask(
    text[0]?.length ?? 0,
    text.length,
    Uint8Array.from(text.join(""), (c) => Number(c)),
  );
}

const byName = new Map(REFERENCE.masks.map((m) => [m.name, m]));
const refRle = (name: string): Rle => {
  const m = byName.get(name);
  assert.ok(m, name);
  return { size: m.size, counts: m.counts };
};

describe("COCO RLE", () => {
  it("paints an RLE's pixels with a value, in place, across column ends", () => {
    // 3 rows x 2 columns; runs: 2 off, 3 on (rows 2 of column 0, rows 0-1 of column 1), 1 off
    const m = createMask(2, 3, Uint8Array.from([9, 9, 9, 9, 9, 9]));
    assert.equal(rlePaint(m, { size: [3, 2], counts: [2, 3, 1] }, 7), m);
    assert.deepEqual([...m.data], [9, 7, 9, 7, 7, 9]);
    assert.throws(
      () => rlePaint(createMask(3, 2), { size: [3, 2], counts: [6] }, 1),
      /size \[3, 2\] cannot paint a 3x2 mask/,
    );
  });

  it("encodes a 3x4 mask worked by hand", () => {
    // columns top to bottom: 001 | 111 | 100 | 000 -> runs 0:2, 1:5, 0:5; counts below 3 are stored as they are
    const rle = rleEncode(rows(["0110", "0100", "1100"]));
    assert.deepEqual(rle, { size: [3, 4], counts: [2, 5, 5] });
    assert.equal(rleToString(rle).counts, "255");
    assert.equal(rleArea(rle), 5);
    assert.deepEqual(rleToBbox(rle), [0, 0, 3, 3]);
    // pixel (0, 0) on: a zero-length first run
    assert.deepEqual(rleEncode(rows(["10", "00"])).counts, [0, 1, 3]);
  });

  it("encodes every label of a label map in one pass, as rleEncode does label by label", () => {
    // 3x4 by hand: label 0 is the 3x4 mask above, label 1 where the map says 1; 9 and -1 are no label's
    const labels = [9, 0, 0, 1, 1, 0, 1, 1, 0, 0, 1, -1];
    const [a, b] = rleEncodeLabels(labels, 4, 3, 2);
    assert.deepEqual(a?.counts, [2, 5, 5]);
    assert.deepEqual(b?.counts, [1, 1, 5, 4, 1]); // columns: 9 1 0 | 0 0 0 | 0 1 1 | 1 1 -1
    const rng = createRng(7);
    for (const [w, h, count] of [
      [1, 1, 1],
      [5, 1, 3],
      [1, 6, 2],
      [13, 9, 4],
    ] as const) {
      const map = Int32Array.from({ length: w * h }, () => rng.int(-1, count));
      const got = rleEncodeLabels(map, w, h, count);
      for (let k = 0; k < count; k++) {
        const mask = createMask(
          w,
          h,
          Uint8Array.from(map, (v) => (v === k ? 1 : 0)),
        );
        assert.deepEqual(got[k], rleEncode(mask), `${w}x${h} label ${k}`);
      }
    }
  });

  it("writes the compressed string by hand: differences from index 3, 5-bit groups, sign, +48", () => {
    const s = (counts: number[]) => rleToString({ size: [1, counts.reduce((a, b) => a + b, 0)], counts }).counts;
    // 49 = 0b1_10001: low group 17 has the sign bit 0x10 set, so a second group follows: 17|0x20 -> 'a', 1 -> '1'
    assert.equal(s([49, 1, 49]), "a11a1");
    // index 3 stores 6 - 2 = 4; index 4 stores 1 - 3 = -2: one group 30 (two's complement, sign set) -> 'N'
    assert.equal(s([1, 2, 3, 6, 1]), "1234N");
    // 32: group 0 then 1 -> '`' (0|0x20 + 48 = 80) '1'; 16 alone would read as negative, so it takes two groups
    assert.equal(s([32]), "P1");
    assert.equal(s([16]), "`0");
    assert.equal(s([15]), "?");
    assert.deepEqual(rleFromString({ size: [1, 13], counts: "1234N" }).counts, [1, 2, 3, 6, 1]);
  });

  it("matches pycocotools' counts, strings, areas and boxes on edge-case and random masks", () => {
    assert.ok(REFERENCE.masks.length >= 20);
    for (const m of REFERENCE.masks) {
      const mask = unpackMask(m.size, m.bits);
      const rle = rleEncode(mask);
      assert.deepEqual(rle.counts, m.counts, m.name);
      assert.equal(rleToString(rle).counts, m.string, m.name);
      assert.deepEqual(rleFromString({ size: m.size, counts: m.string }).counts, m.counts, m.name);
      assert.equal(rleArea(rle), m.area, m.name);
      assert.deepEqual(rleToBbox(rle), m.bbox, m.name);
      assert.deepEqual(rleDecode(rle), mask, m.name);
    }
    // the fixture reaches multi-group counts and negative differences
    assert.ok(REFERENCE.masks.some((m) => m.counts.some((c) => c >= 1024)));
    assert.ok(REFERENCE.masks.some((m) => m.counts.some((c, i) => i > 2 && c < (m.counts[i - 2] as number))));
  });

  it("matches pycocotools' merges (union and intersection)", () => {
    assert.equal(REFERENCE.merges.length, 10);
    for (const m of REFERENCE.merges) {
      const merged = rleMerge(m.masks.map(refRle), m.intersect);
      assert.equal(rleToString(merged).counts, m.string, `${m.masks.join(" + ")} ${m.intersect}`);
    }
  });

  it("merges and IoUs RLEs with zero-length runs step by step, as maskApi.c does (even its early end)", () => {
    // expected values from a line-by-line transcription of maskApi.c's rleMerge / rleIou (this module before 2026-11-30)
    const col = (...counts: number[]) => ({ size: [counts.reduce((a, b) => a + b, 0), 1] as [number, number], counts });
    assert.deepEqual(rleMerge([col(1, 0, 1), col(2)]).counts, [1, 0, 1]);
    assert.deepEqual(rleMerge([col(0, 0, 3, 1), col(4)]).counts, [0, 0, 3, 1]);
    assert.deepEqual(rleMerge([col(3, 0, 0, 1), col(1, 3)], true).counts, [3, 0, 0, 1]);
    // two zero-length runs in step end the walk: the union stops after 2 of the 4 pixels, the IoU counts those
    assert.deepEqual(rleMerge([col(1, 1, 0, 1, 1), col(1, 1, 0, 0, 2)]).counts, [1, 1]);
    assert.deepEqual(rleIou([col(1, 1, 0, 1, 1)], [col(1, 1, 0, 0, 2)]), [[1]]);
    assert.deepEqual(rleIou([col(3, 0, 0, 1)], [col(1, 3)]), [[1 / 3]]);
  });

  it("matches pycocotools' IoU matrix with crowd ground truths", () => {
    const { dt, gt, iscrowd, iou } = REFERENCE.iou;
    const got = rleIou(dt.map(refRle), gt.map(refRle), iscrowd.map(Boolean));
    assert.deepEqual(got, iou);
    assert.ok(iou.flat().some((v) => v === 0) && iou.flat().some((v) => v > 0.3));
  });

  it("computes IoU by hand: plain and crowd, disjoint and sizes that differ", () => {
    const a = rleEncode(rows(["1100", "1100"])); // 4 pixels
    const b = rleEncode(rows(["0110", "0110"])); // 4 pixels, 2 shared
    assert.deepEqual(rleIou([a], [b]), [[2 / 6]]);
    assert.deepEqual(rleIou([a], [b], [true]), [[2 / 4]]); // crowd: intersection over the detection's area
    assert.deepEqual(rleIou([a], [rleEncode(rows(["0001", "0001"]))]), [[0]]);
    assert.deepEqual(bboxIou([[0, 0, 2, 2]], [[1, 0, 2, 2]]), [[2 / 6]]);
    assert.throws(() => rleIou([a], [rleEncode(rows(["110", "110"]))]), SegkitError);
  });

  it("round-trips random masks through the string, and inverts", () => {
    const rng = createRng(5);
    for (let t = 0; t < 50; t++) {
      const w = rng.int(1, 41);
      const h = rng.int(1, 41);
      const p = rng.next();
      const mask = createMask(
        w,
        h,
        Uint8Array.from({ length: w * h }, () => (rng.next() < p ? 1 : 0)),
      );
      const rle = rleEncode(mask);
      const back = rleFromString(rleToString(rle));
      assert.deepEqual(back, rle);
      assert.deepEqual(rleDecode(back), mask);
      const inv = rleDecode(rleInvert(rle));
      assert.deepEqual(
        [...inv.data],
        [...mask.data].map((v) => 1 - v),
      );
    }
  });

  it("encodes one class of a class-index mask", () => {
    // columns top to bottom: 02 | 12 | 21 | 00
    const m = rows(["0120", "2210"]);
    assert.deepEqual(rleEncode(m, 2).counts, [1, 1, 1, 2, 3]);
    assert.deepEqual(rleEncode(m).counts, [1, 5, 2]);
  });

  it("rejects bad input with a SegkitError naming the file", () => {
    const bad =
      (c: string, size: [number, number] = [2, 2]) =>
      () =>
        rleFromString({ size, counts: c }, "ann.json");
    assert.throws(
      bad("0~"),
      (e: SegkitError) => e instanceof SegkitError && e.file === "ann.json" && /character/.test(e.message),
    );
    assert.throws(bad("0`"), /ends inside a number/);
    assert.throws(bad("12"), /counts sum to 3, but size \[2, 2\] has 4 pixels/);
    assert.throws(bad("04", [-1, 2]), /size must be/);
    assert.throws(bad("0", [1e6, 1e6]), /exceeds/);
    assert.throws(bad("0".repeat(100)), /too long/);
    assert.throws(() => rleDecode({ size: [2, 2], counts: [1, 1] }), /sum to 2/);
    assert.throws(() => rleDecode({ size: [2, 2], counts: [1, -1, 4] }), /not a count/);
    assert.throws(() => rleMerge([]), /at least one/);
  });
});
