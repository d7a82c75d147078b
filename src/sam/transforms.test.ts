import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { SegkitError } from "../core/errors.js";
import { createImage, type RgbImage } from "../core/image.js";
import { resizeBilinear } from "../masks/resize.js";
import { rleEncode } from "../masks/rle.js";
import { maskToBox, uncroppedMaskToRle } from "./amg/amg.js";
import { pillowResize, pillowResizeBilinear } from "./pillow-resize.js";
import { postprocessMasks, upscaleAndThreshold, upscaleMasks, upscaleToRle } from "./postprocess.js";
import {
  applyBoxes,
  applyCoords,
  decoderInputs,
  normalizeAndPad,
  preprocessImage,
  preprocessShape,
  resizeLongestSide,
  selectMaskChannels,
  selectSingleMask,
  stabilityScore,
  thresholdMasks,
} from "./transforms.js";

/** Made by scripts/make_sam_transform_fixtures.py (Pillow 9.4, torch 1.13); see that script for the cases. */
interface Reference {
  resize: {
    name: string;
    width: number;
    height: number;
    outWidth: number;
    outHeight: number;
    input?: string;
    output?: string;
    seed?: number;
    sha256?: string;
  }[];
  postprocess: { height: number; width: number; planes: number; output: string; rows?: number[]; positive?: number }[];
}
const ref = JSON.parse(
  readFileSync(new URL("./fixtures/transforms/reference.json", import.meta.url), "utf8"),
) as Reference;

const bytes = (b64: string) => new Uint8Array(Buffer.from(b64, "base64"));
const floats = (b64: string) => {
  const b = Buffer.from(b64, "base64");
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.length));
};

/** The script's `pattern()`: pseudo-noise mixed with a checkerboard of edges, HWC uint8. */
function pattern(width: number, height: number, seed: number): RgbImage {
  const d = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      for (let c = 0; c < 3; c++) {
        const v = (x * x * 7 + y * 13 + x * y * 3 + c * 101 + seed * 57) % 256;
        const edge = ((Math.floor(x / 5) + Math.floor(y / 3)) % 2) * 255;
        d[(y * width + x) * 3 + c] = (x + y + seed) % 4 === 0 ? edge : v;
      }
    }
  }
  return createImage(width, height, d);
}

/** The script's `lowres()`: `[planes, 256, 256]` logits, exactly representable in float32. */
function lowres(planes: number): Float32Array {
  const out = new Float32Array(planes * 256 * 256);
  for (let c = 0; c < planes; c++) {
    for (let y = 0; y < 256; y++) {
      for (let x = 0; x < 256; x++)
        out[(c * 256 + y) * 256 + x] = ((x * 37 + y * 91 + c * 17) % 53) / 8 - 26 / 8 + (x - y) / 32;
    }
  }
  return out;
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs((a[i] as number) - (b[i] as number)));
  return m;
}

describe("preprocessShape (ResizeLongestSide.get_preprocess_shape)", () => {
  it("gives the hand-computed sizes for odd aspect ratios", () => {
    assert.deepEqual(preprocessShape(480, 640), { height: 768, width: 1024 });
    assert.deepEqual(preprocessShape(1500, 2000), { height: 768, width: 1024 });
    // 33 * 1024 / 1500 = 22.528 -> int(23.028) = 23
    assert.deepEqual(preprocessShape(1500, 33), { height: 1024, width: 23 });
    // 7 * 64 / 13 = 34.46 -> 34; upscaling
    assert.deepEqual(preprocessShape(7, 13, 64), { height: 34, width: 64 });
    // halves round up: 3 * 0.5 + 0.5 = 2, 5 * 0.5 + 0.5 = 3
    assert.deepEqual(preprocessShape(3, 2048), { height: 2, width: 1024 });
    assert.deepEqual(preprocessShape(5, 2048), { height: 3, width: 1024 });
    assert.deepEqual(preprocessShape(1024, 1024), { height: 1024, width: 1024 });
  });

  it("rejects sizes that are not positive integers, and images whose short side rounds to 0", () => {
    assert.throws(() => preprocessShape(0, 10), SegkitError);
    assert.throws(() => preprocessShape(2.5, 10), SegkitError);
    assert.throws(() => resizeLongestSide(createImage(3000, 1)), /too elongated/);
  });
});

describe("pillowResizeBilinear: bit-exact to Pillow's Image.resize(BILINEAR)", () => {
  for (const c of ref.resize) {
    it(c.name, () => {
      const img = c.input ? createImage(c.width, c.height, bytes(c.input)) : pattern(c.width, c.height, c.seed ?? 0);
      const out = pillowResizeBilinear(img, c.outWidth, c.outHeight);
      assert.equal(out.width, c.outWidth);
      assert.equal(out.height, c.outHeight);
      if (c.output) assert.deepEqual(out.data, bytes(c.output));
      else assert.equal(createHash("sha256").update(out.data).digest("hex"), c.sha256);
    });
  }

  it("resizeLongestSide picks the preprocess shape", () => {
    const out = resizeLongestSide(pattern(33, 1500, 4));
    assert.deepEqual([out.width, out.height], [23, 1024]);
  });
});

describe("pillowResize bicubic: bit-exact to Pillow's Image.resize default for RGB (SAM 2's video frames)", () => {
  const bicubic = JSON.parse(
    readFileSync(new URL("./fixtures/transforms/pillow-bicubic.json", import.meta.url), "utf8"),
  );
  for (const c of bicubic.cases as {
    width: number;
    height: number;
    outWidth: number;
    outHeight: number;
    input: number[];
    output: number[];
  }[]) {
    it(`${c.width}x${c.height} -> ${c.outWidth}x${c.outHeight}`, () => {
      const out = pillowResize(
        createImage(c.width, c.height, Uint8Array.from(c.input)),
        c.outWidth,
        c.outHeight,
        "bicubic",
      );
      assert.deepEqual(out.data, Uint8Array.from(c.output));
    });
  }
});

describe("normalizeAndPad / preprocessImage", () => {
  it("normalises with SAM's mean/std in CHW and pads bottom-right with zeros after normalising", () => {
    // pixels (0,0) = [0, 0, 0], (1,0) = [255, 128, 7]; 4x4 target
    const img = createImage(2, 1, Uint8Array.of(0, 0, 0, 255, 128, 7));
    const out = normalizeAndPad(img, 4);
    assert.equal(out.length, 3 * 16);
    const at = (c: number, y: number, x: number) => out[(c * 4 + y) * 4 + x] as number;
    // by hand: (0 - 123.675) / 58.395, (255 - 123.675) / 58.395, (0 - 116.28) / 57.12, (128 - 116.28) / 57.12, ...
    const expected: [number, number, number][] = [
      [0, 0, -2.1179039],
      [0, 1, 2.2489083],
      [1, 0, -2.0357143],
      [1, 1, 0.2051821],
      [2, 0, -1.8044444],
      [2, 1, -1.6824401],
    ];
    for (const [c, x, v] of expected)
      assert.ok(Math.abs(at(c, 0, x) - v) < 1e-6, `channel ${c} x ${x}: ${at(c, 0, x)}`);
    let nonzero = 0;
    for (let c = 0; c < 3; c++)
      for (let y = 0; y < 4; y++) for (let x = 0; x < 4; x++) if (at(c, y, x) !== 0) nonzero++;
    assert.equal(nonzero, 6, "everything outside the 2x1 image is 0");
    assert.throws(() => normalizeAndPad(createImage(5, 1), 4), SegkitError);
  });

  it("preprocessImage returns [1,3,1024,1024] with both sizes", () => {
    const p = preprocessImage(pattern(64, 48, 1));
    assert.deepEqual(p.dims, [1, 3, 1024, 1024]);
    assert.equal(p.data.length, 3 * 1024 * 1024);
    assert.deepEqual(p.originalSize, { height: 48, width: 64 });
    assert.deepEqual(p.inputSize, { height: 768, width: 1024 });
    assert.equal(p.data[767 * 1024 + 1023] !== 0, true);
    assert.equal(p.data[768 * 1024], 0);
  });
});

describe("applyCoords / applyBoxes / decoderInputs", () => {
  it("scales coordinates by new / old per axis", () => {
    assert.deepEqual([...applyCoords([500, 375, 0, 0], { height: 480, width: 640 })], [800, 600, 0, 0]);
    // 1500 x 33 -> 1024 x 23: x * 23 / 33, y * 1024 / 1500
    const c = applyCoords([33, 1500, 10, 10], { height: 1500, width: 33 });
    assert.deepEqual([...c.subarray(0, 2)], [23, 1024]);
    assert.ok(Math.abs((c[2] as number) - 6.969697) < 1e-6);
    assert.ok(Math.abs((c[3] as number) - 6.826667) < 1e-6);
    assert.deepEqual(
      [...applyBoxes([0, 0, 640, 480, 100, 50, 300, 200], { height: 480, width: 640 })],
      [0, 0, 1024, 768, 160, 80, 480, 320],
    );
    assert.throws(() => applyBoxes([1, 2, 3], { height: 4, width: 4 }), SegkitError);
  });

  it("adds the padding point (0, 0) with label -1 when there is no box", () => {
    const t = decoderInputs({ points: [{ x: 500, y: 375, label: 1 }] }, { height: 480, width: 640 });
    assert.deepEqual([...t.point_coords.data], [800, 600, 0, 0]);
    assert.deepEqual(t.point_coords.dims, [1, 2, 2]);
    assert.deepEqual([...t.point_labels.data], [1, -1]);
    assert.deepEqual(t.point_labels.dims, [1, 2]);
    assert.deepEqual([...t.has_mask_input.data], [0]);
    assert.deepEqual([...t.orig_im_size.data], [480, 640]);
    assert.deepEqual(t.mask_input.dims, [1, 1, 256, 256]);
    assert.ok(t.mask_input.data.every((v) => v === 0));
  });

  it("packs a box as two corner points with labels 2 and 3 after the points, and a previous mask", () => {
    const mask = new Float32Array(256 * 256).fill(-3);
    const t = decoderInputs(
      {
        points: [
          { x: 500, y: 375, label: 1 },
          { x: 10, y: 20, label: 0 },
        ],
        box: [100, 50, 300, 200],
        maskInput: mask,
      },
      { height: 480, width: 640 },
    );
    assert.deepEqual([...t.point_coords.data], [800, 600, 16, 32, 160, 80, 480, 320]);
    assert.deepEqual([...t.point_labels.data], [1, 0, 2, 3]);
    assert.deepEqual(t.point_labels.dims, [1, 4]);
    assert.deepEqual([...t.has_mask_input.data], [1]);
    assert.equal(t.mask_input.data, mask);
  });

  it("rejects bad labels, coordinates and mask inputs with a SegkitError", () => {
    const size = { height: 4, width: 4 };
    assert.throws(() => decoderInputs({ points: [{ x: 1, y: 1, label: 2 as 1 }] }, size), /label must be 1/);
    assert.throws(() => decoderInputs({ points: [{ x: Number.NaN, y: 1, label: 1 }] }, size), /finite/);
    assert.throws(() => decoderInputs({ maskInput: new Float32Array(64 * 64) }, size), /256x256/);
  });
});

describe("postprocessMasks / upscaleMasks against torch F.interpolate (Sam.postprocess_masks)", () => {
  for (const c of ref.postprocess) {
    it(`${c.height}x${c.width}, ${c.planes} plane(s)`, () => {
      const low = lowres(c.planes);
      const original = { height: c.height, width: c.width };
      const input = preprocessShape(c.height, c.width);
      const want = floats(c.output);
      const pick = (data: Float32Array) => {
        if (!c.rows) return data;
        const out = new Float32Array(c.rows.length * c.width);
        c.rows.forEach((r, i) => {
          out.set(data.subarray(r * c.width, (r + 1) * c.width), i * c.width);
        });
        return out;
      };
      const slow = postprocessMasks(low, input, original);
      const fast = upscaleMasks(low, input, original);
      assert.deepEqual([fast.width, fast.height, fast.channels], [c.width, c.height, c.planes]);
      // measured: both paths max |diff| 9.5e-7 (1 float32 ulp at 8), mean <= 1.1e-7, on logits up to ~10
      assert.ok(maxAbsDiff(pick(slow), want) < 2e-6, `reference path differs by ${maxAbsDiff(pick(slow), want)}`);
      assert.ok(maxAbsDiff(pick(fast.data), want) < 2e-6, `cheap path differs by ${maxAbsDiff(pick(fast.data), want)}`);
      if (c.positive !== undefined) {
        const count = (a: Uint8Array) => a.reduce((s, v) => s + v, 0);
        assert.equal(count(thresholdMasks(slow)), c.positive);
        assert.equal(count(thresholdMasks(fast.data)), c.positive);
      }
    });
  }

  it("keeps a constant plane constant", () => {
    const low = new Float32Array(2 * 256 * 256).fill(3.5);
    low.fill(-1.25, 256 * 256);
    const out = upscaleMasks(low, { height: 768, width: 1024 }, { height: 30, width: 40 }, { channels: [1, 0] });
    assert.ok(out.data.subarray(0, 1200).every((v) => v === -1.25));
    assert.ok(out.data.subarray(1200).every((v) => v === 3.5));
    assert.ok(
      postprocessMasks(low, { height: 768, width: 1024 }, { height: 30, width: 40 }).every(
        (v, i) => v === (i < 1200 ? 3.5 : -1.25),
      ),
    );
  });

  it("a region is exactly that crop of the whole output; a display size is the reference resized to it", () => {
    const low = lowres(3);
    const original = { height: 1500, width: 2000 };
    const input = preprocessShape(1500, 2000);
    const display = { height: 300, width: 400 };
    const whole = upscaleMasks(low, input, original, { outputSize: display, channels: [2] });
    const region = { x: 123, y: 45, width: 50, height: 20 };
    const part = upscaleMasks(low, input, original, { outputSize: display, channels: [2], region });
    for (let y = 0; y < region.height; y++) {
      const row = (region.y + y) * display.width + region.x;
      assert.deepEqual(
        part.data.subarray(y * region.width, (y + 1) * region.width),
        whole.data.subarray(row, row + region.width),
      );
    }
    const reference = postprocessMasks(low, input, display).subarray(2 * 300 * 400);
    assert.ok(maxAbsDiff(whole.data, reference) < 2e-6);
    assert.throws(
      () => upscaleMasks(low, input, original, { region: { x: 1990, y: 0, width: 20, height: 1 } }),
      /inside/,
    );
    assert.throws(() => upscaleMasks(low, input, original, { channels: [3] }), /3 planes/);
    assert.throws(() => postprocessMasks(new Float32Array(100), input, original), /256, 256/);
  });
});

describe("upscaleMasks in SAM 2's stretched frame", () => {
  it("is one bilinear resize 256 -> output, as SAM2Transforms.postprocess_masks (torch's arithmetic, 2e-6)", () => {
    const low = Float32Array.from({ length: 2 * 256 * 256 }, (_, i) => Math.sin(i * 0.37) * 8 + ((i * 7919) % 13) - 6);
    const out = { height: 300, width: 500 };
    const got = upscaleMasks(low, "stretch", out, { channels: [1] }).data;
    const want = resizeBilinear(low.subarray(256 * 256), 256, 256, 1, out.width, out.height, { precision: "float32" });
    let worst = 0;
    for (const [i, v] of got.entries()) worst = Math.max(worst, Math.abs(v - (want[i] as number)));
    assert.ok(worst <= 2e-6, `max |diff| ${worst}`);
    // a region of it is the same values
    const part = upscaleMasks(low, "stretch", out, { channels: [1], region: { x: 100, y: 50, width: 7, height: 3 } });
    assert.deepEqual([...part.data.subarray(0, 7)], [...got.subarray(50 * 500 + 100, 50 * 500 + 107)]);
  });
});

/** xorshift in [0, 1) */
const rand = (seed: number) => {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 4294967296;
  };
};
/** Blobs (SAM-like logits: a few bumps on a negative floor), noise, constants, and values at the thresholds. */
const planes = (next: () => number): [string, Float32Array][] => {
  const blobs = new Float32Array(256 * 256).fill(-12);
  for (let k = 0; k < 3; k++) {
    const [cx, cy, s, a] = [next() * 256, next() * 256, 4 + next() * 30, 15 + next() * 10];
    for (let r = 0; r < 256; r++) {
      for (let c = 0; c < 256; c++) {
        const i = r * 256 + c;
        blobs[i] = (blobs[i] as number) + a * Math.exp(-((c - cx) ** 2 + (r - cy) ** 2) / (2 * s * s));
      }
    }
  }
  const noise = Float32Array.from({ length: 256 * 256 }, () => (next() - 0.6) * 6);
  const edges = Float32Array.from({ length: 256 * 256 }, (_, i) => [-1, 0, 1, -1.0001, -5][i % 5] as number);
  const huge = Float32Array.from(blobs, (v) => v * 1e4);
  return [
    ["blobs", blobs],
    ["noise", noise],
    ["threshold values", edges],
    ["huge", huge],
    ["empty", new Float32Array(256 * 256).fill(-20)],
    ["full", new Float32Array(256 * 256).fill(20)],
  ];
};
describe("upscaleToRle: upscaleMasks, threshold, box, stability counts and RLE without the full plane", () => {
  const cases = [
    { original: { height: 480, width: 640 }, frame: undefined },
    { original: { height: 333, width: 97 }, frame: { x: 20, y: 7, height: 400, width: 150 } },
    { original: { height: 1024, width: 1024 }, frame: { x: 0, y: 1000, height: 2100, width: 1030 } },
    { original: { height: 300, width: 500 }, frame: undefined, stretch: true },
  ];
  for (const [k, { original, frame, stretch }] of cases.entries()) {
    it(`${original.width}x${original.height}${frame ? ` at ${frame.x},${frame.y} of ${frame.width}x${frame.height}` : ""}${stretch ? " (SAM 2's stretched frame)" : ""}: equal to the full-plane path`, () => {
      const input = stretch ? "stretch" : preprocessShape(original.height, original.width);
      for (const [name, plane] of planes(rand(k + 1))) {
        const two = new Float32Array(2 * 256 * 256);
        two.set(plane, 256 * 256);
        const got = upscaleToRle(two, input, original, { channel: 1, ...(frame ? { frame } : {}) });
        const logits = upscaleMasks(two, input, original, { channels: [1] }).data;
        const mask = { width: original.width, height: original.height, data: thresholdMasks(logits) };
        const f = frame ?? { x: 0, y: 0, ...original };
        const want = uncroppedMaskToRle(
          mask,
          [f.x, f.y, f.x + original.width, f.y + original.height],
          f.height,
          f.width,
        );
        assert.deepEqual(got.rle, want, `${name}: RLE`);
        assert.deepEqual(got.box, maskToBox(mask), `${name}: box`);
        assert.equal(
          got.area,
          mask.data.reduce((s, v) => s + v, 0),
          `${name}: area`,
        );
        assert.equal(got.intersections / got.unions, stabilityScore(logits), `${name}: stability`);
        // other levels (AMG passes its stabilityScoreOffset): the counts, against the full plane
        const other = upscaleToRle(two, input, original, { channel: 1, threshold: 0.3, offset: 2.5 });
        const count = (t: number) => logits.reduce((n, v) => n + (v > t ? 1 : 0), 0);
        assert.deepEqual(
          [other.area, other.intersections, other.unions],
          [count(0.3), count(0.3 + 2.5), count(0.3 - 2.5)],
          `${name}: threshold 0.3, offset 2.5`,
        );
        if (!frame) assert.deepEqual(got.rle, rleEncode(mask), `${name}: rleEncode`);
      }
    });
  }

  it("counts: empty and full planes, a hand case", () => {
    const input = { height: 768, width: 1024 };
    const size = { height: 30, width: 40 };
    const empty = upscaleToRle(new Float32Array(65536).fill(-3), input, size);
    assert.deepEqual(empty, {
      rle: { size: [30, 40], counts: [1200] },
      box: [0, 0, 0, 0],
      area: 0,
      intersections: 0,
      unions: 0,
    });
    const half = upscaleToRle(new Float32Array(65536).fill(0.5), input, size);
    assert.deepEqual(
      [half.rle.counts, half.box, half.area, half.intersections, half.unions],
      [[0, 1200], [0, 0, 39, 29], 1200, 0, 1200],
    );
    assert.throws(() => upscaleToRle(new Float32Array(65536), input, size, { channel: 1 }), /1 planes/);
    assert.throws(
      () => upscaleToRle(new Float32Array(65536), input, size, { frame: { x: 1, y: 0, height: 30, width: 40 } }),
      /inside/,
    );
  });
});

describe("upscaleAndThreshold: upscaleMasks, thresholdMasks and stabilityScore in one pass", () => {
  it("hand case: v(x) = x / 2 - 1/4 inside, clamped edges, through SAM's 1024 frame and SAM 2's stretch", () => {
    // low-res value = column index; 256 -> 512 (stretch) and 256 -> 1024 -> 512 (a 512 x 512 image fills the
    // 1024 square) both sample it at x / 2 - 1/4, clamped: v(0) = 0, v(511) = 255
    const low = Float32Array.from({ length: 2 * 256 * 256 }, (_, i) => i % 256);
    const size = { height: 512, width: 512 };
    const want = Float32Array.from({ length: 512 }, (_, x) => (x === 0 ? 0 : x === 511 ? 255 : x / 2 - 0.25));
    for (const frame of ["stretch", { height: 1024, width: 1024 }] as const) {
      const got = upscaleAndThreshold(low, frame, size, { logits: true });
      assert.equal(got.masks.length, 2);
      for (const [k, logits] of (got.logits ?? []).entries()) {
        for (let y = 0; y < 512; y += 73) assert.deepEqual(logits.subarray(y * 512, (y + 1) * 512), want);
        const mask = got.masks[k] as Uint8Array;
        assert.deepEqual([mask[0], mask[1], mask[2], mask[511 * 512]], [0, 1, 1, 0]);
        assert.equal(
          mask.reduce((n, v) => n + v, 0),
          511 * 512,
        );
      }
      // > 1 from x = 3 on (509 columns), > -1 everywhere (512)
      assert.deepEqual([...got.stability], [509 / 512, 509 / 512].map(Math.fround));
      const shifted = upscaleAndThreshold(low.subarray(0, 65536), frame, size, { threshold: 100, offset: 0.5 });
      // > 100.5: x / 2 - 1/4 > 100.5, x >= 202 (310 columns); > 99.5: x >= 200 (312)
      assert.deepEqual([...shifted.stability], [Math.fround(310 / 312)]);
      assert.equal(shifted.logits, undefined);
      assert.equal(
        (shifted.masks[0] as Uint8Array).reduce((n, v) => n + v, 0),
        311 * 512,
      );
    }
  });

  const cases: [string, { height: number; width: number }, boolean][] = [
    ["640x480", { height: 480, width: 640 }, false],
    ["97x333", { height: 333, width: 97 }, false],
    ["2000x1500", { height: 1500, width: 2000 }, false],
    ["1x1", { height: 1, width: 1 }, false],
    ["500x300 stretched (SAM 2)", { height: 300, width: 500 }, true],
  ];
  for (const [k, [name, original, stretch]] of cases.entries()) {
    it(`${name}: exactly upscaleMasks + thresholdMasks + stabilityScore on random and edge logits`, () => {
      const input = stretch ? "stretch" : preprocessShape(original.height, original.width);
      const all = planes(rand(k + 11));
      const low = new Float32Array(all.length * 65536);
      for (const [i, [, plane]] of all.entries()) low.set(plane, i * 65536);
      const area = original.height * original.width;
      for (const [threshold, offset] of [
        [0, 1],
        [0.3, 2.5],
      ] as const) {
        const got = upscaleAndThreshold(low, input, original, { threshold, offset, logits: true });
        const lean = upscaleAndThreshold(low, input, original, { threshold, offset });
        const up = upscaleMasks(low, input, original).data;
        for (const [i, [plane]] of all.entries()) {
          const logits = up.subarray(i * area, (i + 1) * area);
          assert.deepEqual(got.logits?.[i], logits, `${plane}: logits`);
          assert.deepEqual(got.masks[i], thresholdMasks(logits, threshold), `${plane}: mask`);
          assert.deepEqual(lean.masks[i], got.masks[i], `${plane}: mask without logits`);
          const stability = Math.fround(stabilityScore(logits, threshold, offset));
          assert.ok(Object.is(got.stability[i], stability), `${plane}: stability ${got.stability[i]} vs ${stability}`);
          assert.ok(Object.is(lean.stability[i], stability), `${plane}: stability ${lean.stability[i]} without logits`);
        }
      }
    });
  }

  it("infinite and NaN logits: the same masks and scores as the full pass", () => {
    // a confident plane (so the sparse path runs) with a few non-finite values inside and outside the mask
    const low = new Float32Array(65536).fill(-20);
    low.fill(20, 100 * 256, 140 * 256);
    for (const [i, v] of [
      [110 * 256 + 60, Number.POSITIVE_INFINITY], // a row otherwise all above
      [120 * 256 + 50, Number.POSITIVE_INFINITY],
      [120 * 256 + 90, Number.NEGATIVE_INFINITY],
      [30 * 256 + 30, Number.POSITIVE_INFINITY],
      [60 * 256 + 200, Number.NaN],
    ] as const) {
      low[i] = v;
    }
    const size = { height: 480, width: 640 };
    const frame = preprocessShape(480, 640);
    const lean = upscaleAndThreshold(low, frame, size);
    const full = upscaleAndThreshold(low, frame, size, { logits: true });
    assert.deepEqual(lean.masks, full.masks);
    assert.ok(Object.is(lean.stability[0], full.stability[0]), `${lean.stability[0]} vs ${full.stability[0]}`);
  });

  it("rows: parts that add up to the whole (masks side by side, stability terms summed)", () => {
    const low = Float32Array.from({ length: 2 * 65536 }, (_, i) => Math.sin(i / 97) * 3 + Math.cos(i / 1733));
    const size = { height: 333, width: 97 };
    const frame = preprocessShape(333, 97);
    const whole = upscaleAndThreshold(low, frame, size, { logits: true });
    const cuts = [0, 1, 120, 121, 333];
    const parts = cuts
      .slice(1)
      .map((end, k) => upscaleAndThreshold(low, frame, size, { rows: [cuts[k] as number, end], logits: true }));
    for (const c of [0, 1]) {
      assert.deepEqual(
        Buffer.concat(parts.map((p) => p.masks[c] as Uint8Array)),
        Buffer.from(whole.masks[c] as Uint8Array),
      );
      const logits = parts.flatMap((p) => [...(p.logits?.[c] ?? [])]);
      assert.deepEqual(Float32Array.from(logits), whole.logits?.[c]);
      const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
      assert.equal(sum(parts.map((p) => p.intersections[c] as number)), whole.intersections[c]);
      assert.equal(sum(parts.map((p) => p.unions[c] as number)), whole.unions[c]);
    }
    assert.equal(parts[0]?.masks[0]?.length, 97);
    for (const rows of [
      [0, 0],
      [-1, 3],
      [5, 334],
      [0.5, 3],
    ] as const) {
      assert.throws(() => upscaleAndThreshold(low, frame, size, { rows }), /are not a part of the 333 output rows/);
    }
  });

  it("checks its inputs as upscaleMasks does", () => {
    assert.throws(() => upscaleAndThreshold(new Float32Array(100), "stretch", { height: 2, width: 2 }), /256, 256/);
    assert.throws(
      () => upscaleAndThreshold(new Float32Array(65536), { height: 2000, width: 10 }, { height: 2, width: 2 }),
      /exceeds 1024/,
    );
  });
});

describe("stabilityScore / thresholdMasks / mask selection", () => {
  it("stabilityScore is |logits > t + o| / |logits > t - o| (hand cases)", () => {
    const l = [-2, -0.5, 0.5, 1.5, 3];
    assert.equal(stabilityScore(l), 2 / 4);
    assert.equal(stabilityScore(l, 0.6, 0.5), 2 / 3); // > 1.1: 1.5, 3; > 0.1: 0.5, 1.5, 3
    assert.equal(stabilityScore([1, 1]), 0); // strict: 1 is not > 1
    assert.ok(Number.isNaN(stabilityScore([-5, -2])));
  });

  it("thresholdMasks is strictly greater than the threshold", () => {
    assert.deepEqual([...thresholdMasks([0, 1e-7, -1, 2])], [0, 1, 0, 1]);
    assert.deepEqual([...thresholdMasks([0.5, 1], 0.5)], [0, 1]);
  });

  it("selects channel 0 for a single mask and 1..3 for multimask", () => {
    assert.deepEqual(selectMaskChannels(false), [0]);
    assert.deepEqual(selectMaskChannels(true), [1, 2, 3]);
  });

  it("selectSingleMask is SamOnnxModel.select_masks: channel 0 from 3 points on, else the best of 1..3", () => {
    const iou = [0.99, 0.5, 0.9, 0.7];
    assert.equal(selectSingleMask(iou, 2), 2); // one click + padding point: 0.99 - 500 loses
    assert.equal(selectSingleMask(iou, 3), 0);
    assert.equal(selectSingleMask([0.1, 0.8, 0.8, 0.2], 1), 1); // ties: the first, as torch.argmax
  });
});
