/**
 * The built-in instance set `synthetic-instances`: 3-8 objects per image (discs, rotated boxes, triangles, the
 * category ids 1-3), about half placed to touch an object already drawn and the rest anywhere, so objects touch,
 * overlap and hide parts of each other: what separates instances from a class map. Later objects are drawn on top;
 * an instance's mask is its visible part (a fully hidden object is no instance). Same background as `synthetic`.
 * Pure like `synthetic`: sample i is a function of (seed, i, size).
 *
 * A sample: the image, the class map (0 background, then the category id) and `instances` (category ids, scores 1,
 * boxes from the visible pixels), in drawing order.
 */
import { createImage, createMask, DEFAULT_IGNORE_INDEX } from "../core/image.js";
import { createRng, deriveSeed, type Rng } from "../core/random.js";
import { type Instances, maskBox } from "../masks/instances.js";
import { rleEncode } from "../masks/rle.js";
import type { Dataset, Sample } from "./dataset.js";
import { drawBackground, generatedSet, randomColour, type SyntheticOptions } from "./synthetic.js";

export const SYNTHETIC_INSTANCE_CLASSES: readonly string[] = Object.freeze(["background", "disc", "box", "triangle"]);
const SALT = 0x53494e53; // "SINS"

/** The generated instance set; options as `synthetic`'s (validated, RangeError). */
export function createSyntheticInstances(options: SyntheticOptions = {}): Dataset {
  const { seed, length, size, check } = generatedSet(options, "synthetic-instances");
  const sample = (i: number) => syntheticInstanceSample(seed, check(i), size);
  return {
    format: "synthetic-instances",
    classNames: SYNTHETIC_INSTANCE_CLASSES,
    ignoreIndex: DEFAULT_IGNORE_INDEX,
    backgroundClass: 0,
    length,
    skipped: [],
    id: (i) => `synthetic-instances-${String(check(i)).padStart(4, "0")}`,
    files: (i) => {
      check(i);
      return [];
    },
    get: async (i) => sample(i),
    getMask: async (i) => sample(i).mask,
    getInstances: async (i) => sample(i).instances as Instances,
    categories: SYNTHETIC_INSTANCE_CLASSES.slice(1).map((name, k) => ({ id: k + 1, name })),
  };
}

interface Shape {
  classId: number;
  cx: number;
  cy: number;
  /** Circumradius. */
  r: number;
  angle: number;
  /** Box aspect (height / width). */
  aspect: number;
}

/** Whether pixel centre (x, y) is inside `s`. */
function inside(s: Shape, x: number, y: number): boolean {
  const dx = x - s.cx;
  const dy = y - s.cy;
  if (s.classId === 1) return dx * dx + dy * dy <= s.r * s.r;
  const c = Math.cos(s.angle);
  const sn = Math.sin(s.angle);
  const u = c * dx + sn * dy; // in the shape's frame
  const v = -sn * dx + c * dy;
  if (s.classId === 2) {
    const hw = s.r / Math.sqrt(1 + s.aspect * s.aspect);
    return Math.abs(u) <= hw && Math.abs(v) <= hw * s.aspect;
  }
  // an equilateral triangle with circumradius r: inside all three half-planes at distance r/2 from the centre
  for (let k = 0; k < 3; k++) {
    const a = (k * 2 * Math.PI) / 3;
    if (u * Math.cos(a) + v * Math.sin(a) > s.r / 2) return false;
  }
  return true;
}

/** Sample `index` of the instance set with this seed, `size` x `size` pixels. */
export function syntheticInstanceSample(seed: number, index: number, size: number): Sample {
  const rng = createRng(deriveSeed(seed, SALT, index));
  const n = size * size;
  const rgb = new Float32Array(n * 3);
  drawBackground(rng, size, rgb);
  const shapes = placeShapes(rng, size);
  const owner = new Int16Array(n).fill(-1);
  for (const [k, s] of shapes.entries()) {
    const colour = randomColour(rng);
    const x0 = Math.max(0, Math.floor(s.cx - s.r));
    const x1 = Math.min(size - 1, Math.ceil(s.cx + s.r));
    const y0 = Math.max(0, Math.floor(s.cy - s.r));
    const y1 = Math.min(size - 1, Math.ceil(s.cy + s.r));
    for (let y = y0; y <= y1; y++) {
      for (let x = x0; x <= x1; x++) {
        if (!inside(s, x + 0.5, y + 0.5)) continue;
        const p = y * size + x;
        owner[p] = k;
        const shade = 1 - (0.25 * Math.hypot(x + 0.5 - s.cx, y + 0.5 - s.cy)) / s.r;
        for (let c = 0; c < 3; c++) rgb[p * 3 + c] = (colour[c] as number) * shade;
      }
    }
  }
  const pixels = new Uint8ClampedArray(n * 3);
  for (let i = 0; i < n * 3; i++) pixels[i] = (rgb[i] as number) + rng.uniform(-4, 4);
  const classMap = new Uint8Array(n);
  const visible = shapes.map(() => createMask(size, size));
  for (let p = 0; p < n; p++) {
    const k = owner[p] as number;
    if (k < 0) continue;
    classMap[p] = (shapes[k] as Shape).classId;
    (visible[k] as { data: Uint8Array }).data[p] = 1;
  }
  const kept = shapes.flatMap((s, k) => {
    const rle = rleEncode(visible[k] as ReturnType<typeof createMask>);
    return rle.counts.length > 1 ? [{ classId: s.classId, rle }] : [];
  });
  return {
    id: `synthetic-instances-${String(index).padStart(4, "0")}`,
    image: createImage(size, size, new Uint8Array(pixels.buffer)),
    mask: createMask(size, size, classMap),
    instances: {
      width: size,
      height: size,
      masks: kept.map((k) => k.rle),
      boxes: kept.map((k) => maskBox(k.rle)),
      classIds: kept.map((k) => k.classId),
      scores: kept.map(() => 1),
    },
  };
}

/** 3-8 shapes; about half touch an earlier one (centres at the sum of their radii), the others fall anywhere. */
function placeShapes(rng: Rng, size: number): Shape[] {
  const count = rng.int(3, 9);
  const shapes: Shape[] = [];
  for (let k = 0; k < count; k++) {
    const r = size * rng.uniform(0.07, 0.16);
    const prev = shapes[rng.int(0, shapes.length)];
    let cx = rng.uniform(r, size - r);
    let cy = rng.uniform(r, size - r);
    if (prev && rng.next() < 0.5) {
      const a = rng.uniform(0, 2 * Math.PI);
      cx = Math.min(Math.max(prev.cx + (prev.r + r) * 0.9 * Math.cos(a), r), size - r);
      cy = Math.min(Math.max(prev.cy + (prev.r + r) * 0.9 * Math.sin(a), r), size - r);
    }
    shapes.push({ classId: rng.int(1, 4), cx, cy, r, angle: rng.uniform(0, Math.PI), aspect: rng.uniform(0.5, 1.5) });
  }
  return shapes;
}
