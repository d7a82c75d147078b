/**
 * The built-in demo dataset `synthetic`: textured scenes with one to three "animal-like" blobs, labelled like
 * the Oxford-IIIT Pet trimaps after the usual minus-one mapping (0 = pet, 1 = background, 2 = border).
 * Nothing is read from disk: sample i is a pure function of (seed, i, size), so `get(i)` is random access,
 * independent of call order and identical on every machine (plain float maths; V8's sin/cos/atan2 are the
 * same fdlibm port everywhere).
 *
 * What a sample holds:
 * - background: two colours blended by smooth value noise (two octaves, on a randomly rotated lattice so its
 *   blotches are not axis-aligned) plus a low-frequency plane wave,
 *   sometimes blotches of a third colour, a gentle lighting gradient; a fresh palette per sample.
 * - 1-3 blobs: star-convex shapes whose radius is a sum of a few angular harmonics, half of them with two
 *   "ears". Each has its own colours (about a third of them close to a background colour, so colour alone does
 *   not separate pet from background), spots and/or stripes, radial shading, and a soft antialiased edge
 *   (ramp 0.8-2 px). Later blobs are drawn on top.
 * - per-pixel noise of a random amplitude (uniform, +-3..12 levels per channel).
 * - mask: the union of the blobs. Pixels whose centre lies within w/2 of the union's outline, on either side,
 *   are border (2); so the band (w = 2, 3 or 4 px, drawn per blob) straddles the outline, and pet and
 *   background pixels never touch. Inside is pet (0), outside background (1). The distance to the outline is
 *   the first-order estimate (radial distance times the cosine of the outline's slope), exact enough for a
 *   band a few pixels wide. Overlapping blobs are all pet, with the band along the outline of their union.
 */
import { createImage, createMask, DEFAULT_IGNORE_INDEX } from "../core/image.js";
import { PET_PALETTE } from "../core/palette.js";
import { createRng, deriveSeed, type Rng } from "../core/random.js";
import type { Dataset, Sample } from "./dataset.js";

export interface SyntheticOptions {
  /** Seed of the whole set, an integer 0..2^32-1. */
  seed?: number;
  /** Number of samples. */
  length?: number;
  /** Width and height of the square images, 32..1024. */
  size?: number;
}

export const DEFAULT_SYNTHETIC_OPTIONS: Readonly<Required<SyntheticOptions>> = Object.freeze({
  seed: 0,
  length: 200,
  size: 128,
});

export const SYNTHETIC_MIN_SIZE = 32;
export const SYNTHETIC_MAX_SIZE = 1024;

const CLASS_NAMES: readonly string[] = Object.freeze(["pet", "background", "border"]);
/** Mixed into every sample seed, so these streams differ from other users of deriveSeed(seed, i). */
const SALT = 0x53594e54; // "SYNT"
const MAX_U32 = 0xffffffff;

/** Generated demo data; see the module comment. Options are validated (RangeError) and not modified. */
export function createSyntheticDataset(options: SyntheticOptions = {}): Dataset {
  const { seed, length, size, check } = generatedSet(options, "synthetic");
  return {
    format: "synthetic",
    classNames: CLASS_NAMES,
    ignoreIndex: DEFAULT_IGNORE_INDEX,
    palette: PET_PALETTE,
    backgroundClass: 1,
    length,
    skipped: [],
    id: (i) => syntheticId(check(i)),
    files: (i) => {
      check(i);
      return [];
    },
    get: async (i) => syntheticSample(seed, check(i), size),
  };
}

/** A generated set's options, validated (RangeError), and its index check (`name` in the errors). */
export function generatedSet(options: SyntheticOptions, name: string) {
  const seed = option(options.seed, "seed", DEFAULT_SYNTHETIC_OPTIONS.seed, 0, MAX_U32);
  const length = option(options.length, "length", DEFAULT_SYNTHETIC_OPTIONS.length, 1, MAX_U32 + 1);
  const size = option(options.size, "size", DEFAULT_SYNTHETIC_OPTIONS.size, SYNTHETIC_MIN_SIZE, SYNTHETIC_MAX_SIZE);
  const check = (i: number): number => {
    if (!Number.isInteger(i) || i < 0 || i >= length) {
      throw new RangeError(`${name}: sample ${i} out of range 0..${length - 1}`);
    }
    return i;
  };
  return { seed, length, size, check };
}

/** Sample `index` of the synthetic set with this seed, `size` x `size` pixels. Pure: same arguments, same bytes. */
export function syntheticSample(seed: number, index: number, size: number): Sample {
  option(seed, "seed", 0, 0, MAX_U32);
  option(index, "index", 0, 0, MAX_U32);
  option(size, "size", 0, SYNTHETIC_MIN_SIZE, SYNTHETIC_MAX_SIZE);
  const rng = createRng(deriveSeed(seed, SALT, index));
  const n = size * size;
  const rgb = new Float32Array(n * 3);
  drawBackground(rng, size, rgb);

  // Signed distance to the union's outline (negative inside) and the band half-width of the nearest blob.
  const dist = new Float32Array(n).fill(Number.POSITIVE_INFINITY);
  const halfBand = new Float32Array(n);
  const fur = valueNoise(rng, size, rng.int(8, 17));
  const u = rng.next();
  const count = u < 0.5 ? 1 : u < 0.8 ? 2 : 3;
  // Fewer, larger blobs or more, smaller ones: the blobs cover roughly 10-45% of the image.
  const maxRadius = [0.34, 0.26, 0.21][count - 1] as number;
  for (let b = 0; b < count; b++) drawBlob(rng, size, maxRadius, rgb, fur, dist, halfBand);

  const amp = rng.uniform(3, 12) / 511.5;
  const pixels = new Uint8ClampedArray(n * 3); // clamps and rounds on store
  for (let p = 0; p < n; p++) {
    const bits = (rng.next() * 4294967296) >>> 0; // one draw, three 10-bit uniform noises
    const i = p * 3;
    pixels[i] = (rgb[i] as number) + amp * ((bits & 1023) - 511.5);
    pixels[i + 1] = (rgb[i + 1] as number) + amp * (((bits >>> 10) & 1023) - 511.5);
    pixels[i + 2] = (rgb[i + 2] as number) + amp * (((bits >>> 20) & 1023) - 511.5);
  }
  const mask = new Uint8Array(n);
  for (let p = 0; p < n; p++) {
    const d = dist[p] as number;
    const h = halfBand[p] as number;
    mask[p] = d <= -h ? 0 : d < h ? 2 : 1;
  }
  return {
    id: syntheticId(index),
    image: createImage(size, size, new Uint8Array(pixels.buffer)),
    mask: createMask(size, size, mask),
  };
}

function syntheticId(i: number): string {
  return `synthetic-${String(i).padStart(4, "0")}`;
}

/** An integer option in [min, max] (RangeError naming it), or `fallback` when absent. */
function option(value: number | undefined, name: string, fallback: number, min: number, max: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > max) {
    throw new RangeError(`synthetic: ${name} must be an integer from ${min} to ${max}, got ${String(value)}`);
  }
  return value;
}

export type Rgb = [number, number, number];

/** A muted random colour: a grey level plus a moderate tint. */
export function randomColour(rng: Rng): Rgb {
  const grey = rng.uniform(30, 225);
  const tint = rng.uniform(10, 80);
  return [grey + tint * rng.uniform(-1, 1), grey + tint * rng.uniform(-1, 1), grey + tint * rng.uniform(-1, 1)];
}

function jitter(rng: Rng, c: Rgb, by: number): Rgb {
  return [c[0] + rng.uniform(-by, by), c[1] + rng.uniform(-by, by), c[2] + rng.uniform(-by, by)];
}

const clamp01 = (v: number): number => Math.min(Math.max(v, 0), 1);

/**
 * Smooth value noise in [0, 1] with about `cells` features across the image: a random lattice, sampled bilinearly
 * with smoothstep weights on a randomly rotated grid (so its blotches are not aligned with the image axes).
 */
function valueNoise(rng: Rng, size: number, cells: number): Float32Array {
  const g = Math.ceil(cells * Math.SQRT2) + 2; // covers the rotated image, one cell to spare
  const lattice = new Float32Array(g * g);
  for (let i = 0; i < lattice.length; i++) lattice[i] = rng.next();
  const angle = rng.uniform(0, 2 * Math.PI);
  const ca = (Math.cos(angle) * cells) / size;
  const sa = (Math.sin(angle) * cells) / size;
  const mid = (g - 1) / 2;
  const out = new Float32Array(size * size);
  const p0 = 0.5 - size / 2;
  for (let y = 0; y < size; y++) {
    const py = y + p0;
    const u0 = mid + p0 * ca - py * sa;
    const v0 = mid + p0 * sa + py * ca;
    for (let x = 0; x < size; x++) {
      const u = u0 + x * ca; // u, v > 0: truncation is floor
      const v = v0 + x * sa;
      const iu = u | 0;
      const iv = v | 0;
      const fu = u - iu;
      const fv = v - iv;
      const wu = fu * fu * (3 - 2 * fu);
      const wv = fv * fv * (3 - 2 * fv);
      const k = iv * g + iu;
      const a = lattice[k] as number;
      const b = lattice[k + 1] as number;
      const c = lattice[k + g] as number;
      const d = lattice[k + g + 1] as number;
      const top = a + (b - a) * wu;
      out[y * size + x] = top + (c + (d - c) * wu - top) * wv;
    }
  }
  return out;
}

/** sin(kx x + ky y + phase) = xs[x] yc[y] + xc[x] ys[y]: a plane wave from four tables, no per-pixel sin. */
interface Wave {
  xs: Float32Array;
  xc: Float32Array;
  ys: Float32Array;
  yc: Float32Array;
}

function planeWave(rng: Rng, size: number, minPeriod: number, maxPeriod: number): Wave {
  const k = (2 * Math.PI) / rng.uniform(minPeriod, maxPeriod);
  const angle = rng.uniform(0, 2 * Math.PI);
  const phase = rng.uniform(0, 2 * Math.PI);
  const w: Wave = {
    xs: new Float32Array(size),
    xc: new Float32Array(size),
    ys: new Float32Array(size),
    yc: new Float32Array(size),
  };
  for (let i = 0; i < size; i++) {
    w.xs[i] = Math.sin(k * Math.cos(angle) * i + phase);
    w.xc[i] = Math.cos(k * Math.cos(angle) * i + phase);
    w.ys[i] = Math.sin(k * Math.sin(angle) * i);
    w.yc[i] = Math.cos(k * Math.sin(angle) * i);
  }
  return w;
}

/** A textured background (two or three colours, value noise, a plane wave, lighting) into `rgb` (0..255 floats). */
export function drawBackground(rng: Rng, size: number, rgb: Float32Array): void {
  const c0 = randomColour(rng);
  const c1 = randomColour(rng);
  const c2 = randomColour(rng);
  const coarse = valueNoise(rng, size, rng.int(2, 5));
  const fine = valueNoise(rng, size, rng.int(6, 13));
  const blotches = valueNoise(rng, size, rng.int(3, 8));
  const wave = planeWave(rng, size, 0.3 * size, 1.2 * size);
  const detail = rng.uniform(0.15, 0.45);
  const contrast = rng.uniform(1, 2.5);
  const waveAmp = rng.uniform(0, 0.5);
  const third = rng.next() < 0.35 ? 0 : rng.uniform(0.5, 1); // 2 or 3 colours
  const lx = rng.uniform(-0.3, 0.3) / size; // lighting gradient
  const ly = rng.uniform(-0.3, 0.3) / size;
  for (let y = 0; y < size; y++) {
    const ys = wave.ys[y] as number;
    const yc = wave.yc[y] as number;
    for (let x = 0; x < size; x++) {
      const p = y * size + x;
      const n = (coarse[p] as number) * (1 - detail) + (fine[p] as number) * detail;
      const w = (wave.xs[x] as number) * yc + (wave.xc[x] as number) * ys;
      const t = clamp01((n - 0.5) * contrast + 0.5 + waveAmp * w);
      const s = clamp01(((blotches[p] as number) - 0.55) * 4) * third;
      const gain = 1 + lx * (x - size / 2) + ly * (y - size / 2);
      for (let c = 0; c < 3; c++) {
        const a = c0[c] as number;
        const v = a + ((c1[c] as number) - a) * t;
        rgb[p * 3 + c] = (v + ((c2[c] as number) - v) * s) * gain;
      }
    }
  }
}

/** Angular resolution of the radius tables (a power of two). */
const ANGLES = 512;

/** Radius r(theta) of a star-convex blob and the first-order distance factor r / sqrt(r^2 + r'^2). */
function blobOutline(rng: Rng, r0: number): { radius: Float32Array; cosSlope: Float32Array; maxRadius: number } {
  const harmonics: { k: number; a: number; phase: number }[] = [];
  for (let k = 2; k <= 5; k++) harmonics.push({ k, a: rng.uniform(0, 0.3 / k), phase: rng.uniform(0, 2 * Math.PI) });
  const ears: number[] = [];
  const earWidth = rng.uniform(0.22, 0.35); // half-width in radians
  const earHeight = rng.uniform(0.3, 0.55) * r0;
  if (rng.next() < 0.5) {
    const dir = rng.uniform(0, 2 * Math.PI);
    const apart = rng.uniform(0.4, 0.65);
    ears.push(dir - apart, dir + apart);
  }
  const step = (2 * Math.PI) / ANGLES;
  const radius = new Float32Array(ANGLES);
  let maxRadius = 0;
  for (let j = 0; j < ANGLES; j++) {
    const theta = j * step;
    let v = 1;
    for (const h of harmonics) v += h.a * Math.cos(h.k * theta + h.phase);
    let r = r0 * Math.max(v, 0.45);
    for (const e of ears) {
      const off = Math.abs(((theta - e + 3 * Math.PI) % (2 * Math.PI)) - Math.PI); // angle between, 0..pi
      if (off < earWidth) r += earHeight * (0.5 + 0.5 * Math.cos((Math.PI * off) / earWidth));
    }
    radius[j] = r;
    maxRadius = Math.max(maxRadius, r);
  }
  const cosSlope = new Float32Array(ANGLES);
  for (let j = 0; j < ANGLES; j++) {
    const r = radius[j] as number;
    const dr = ((radius[(j + 1) & (ANGLES - 1)] as number) - (radius[(j - 1) & (ANGLES - 1)] as number)) / (2 * step);
    cosSlope[j] = r / Math.sqrt(r * r + dr * dr);
  }
  return { radius, cosSlope, maxRadius };
}

function drawBlob(
  rng: Rng,
  size: number,
  maxRadius: number,
  rgb: Float32Array,
  fur: Float32Array,
  dist: Float32Array,
  halfBand: Float32Array,
): void {
  const r0 = Math.max(8, rng.uniform(0.6, 1) * maxRadius * size);
  const { radius, cosSlope, maxRadius: rMax } = blobOutline(rng, r0);
  const cx = rng.uniform(0.15, 0.85) * size;
  const cy = rng.uniform(0.15, 0.85) * size;
  const half = rng.int(2, 5) / 2; // border band of 2, 3 or 4 px, half on each side of the outline
  const soft = rng.uniform(0.8, 2); // width of the edge ramp in the image
  // Colours: a third of the blobs are camouflaged, near the colour of a random pixel of the scene so far.
  const camo = rng.next() < 0.35 ? rng.int(0, size * size) * 3 : -1;
  const base =
    camo >= 0
      ? jitter(rng, [rgb[camo] as number, rgb[camo + 1] as number, rgb[camo + 2] as number], 25)
      : randomColour(rng);
  const second = rng.next() < 0.5 ? randomColour(rng) : (base.map((c) => c * rng.uniform(0.3, 0.8)) as Rgb);
  const stripes = planeWave(rng, size, Math.max(4, 0.04 * size), Math.max(6, 0.12 * size)); // periods >= 4 px: no aliasing
  const stripeAmp = rng.next() < 0.5 ? rng.uniform(0.3, 0.8) : 0;
  const spotAmp = rng.uniform(0.2, 1.5);
  const spotBias = rng.uniform(-0.3, 0.3);
  const shade = rng.uniform(0, 0.45);

  const reach = rMax + 3; // beyond every band (half <= 2) and edge ramp (soft / 2 <= 1)
  const x0 = Math.max(0, Math.floor(cx - reach));
  const x1 = Math.min(size - 1, Math.ceil(cx + reach));
  const y0 = Math.max(0, Math.floor(cy - reach));
  const y1 = Math.min(size - 1, Math.ceil(cy + reach));
  const toIndex = ANGLES / (2 * Math.PI);
  for (let y = y0; y <= y1; y++) {
    const dy = y + 0.5 - cy;
    const ys = stripes.ys[y] as number;
    const yc = stripes.yc[y] as number;
    for (let x = x0; x <= x1; x++) {
      const dx = x + 0.5 - cx;
      const d2 = dx * dx + dy * dy;
      if (d2 > reach * reach) continue;
      const d = Math.sqrt(d2);
      let t = Math.atan2(dy, dx) * toIndex;
      if (t < 0) t += ANGLES;
      const j = Math.floor(t);
      const f = t - j;
      const ja = j & (ANGLES - 1);
      const jb = (j + 1) & (ANGLES - 1);
      const r = (radius[ja] as number) * (1 - f) + (radius[jb] as number) * f;
      const sd = (d - r) * ((cosSlope[ja] as number) * (1 - f) + (cosSlope[jb] as number) * f);
      const p = y * size + x;
      if (sd < (dist[p] as number)) {
        dist[p] = sd;
        halfBand[p] = half;
      }
      const alpha = clamp01(0.5 - sd / soft);
      if (alpha === 0) continue;
      const w = (stripes.xs[x] as number) * yc + (stripes.xc[x] as number) * ys;
      const pattern = clamp01(0.5 + stripeAmp * w + spotAmp * ((fur[p] as number) - 0.5 + spotBias));
      const q = d / r;
      const light = 1 - shade * q * q;
      for (let c = 0; c < 3; c++) {
        const a = base[c] as number;
        const colour = (a + ((second[c] as number) - a) * pattern) * light;
        const i = p * 3 + c;
        rgb[i] = (rgb[i] as number) + (colour - (rgb[i] as number)) * alpha;
      }
    }
  }
}
