import { createImage, createMask, type Mask } from "../core/image.js";
import { createRng, deriveSeed, type Rng } from "../core/random.js";
import { type Dataset, type Sample, viewInfo } from "./dataset.js";

/**
 * Patch training at native resolution (thin structures such as retinal vessels, 1-10 px wide, vanish when a whole
 * image is downscaled to the model input): each epoch, `perImage` windows of `size` = [height, width] are cut from
 * every image around centres drawn uniformly among its scored pixels (mask value not the ignore index: inside the
 * field of view of a DRIVE image; anywhere in an image without ignored pixels). A window is centred on its draw
 * (top-left corner at centre - floor(size / 2)); where it reaches past the image the image is black and the mask
 * the ignore index, so the padding is never scored. Draws depend only on (seed, epoch, patch index).
 * Patch training keeps every image of the dataset decoded in memory (see `cached`).
 */
export interface PatchOptions {
  /** [height, width] of a patch. */
  size: readonly [number, number];
  perImage: number;
  seed: number;
  /** Selects the draws: a new set of patches per epoch; a fixed epoch gives a fixed set (validation). */
  epoch: number;
}

/** Keeps the centre draws apart from the loader's augmentation draws, which are seeded by (seed, epoch, index). */
const PATCH_STREAM = 0x70617463;

/** The flat indices of the pixels of `mask` that are scored (not `ignoreIndex`). */
export function scoredPixels(mask: Mask, ignoreIndex: number): Uint32Array {
  let n = 0;
  for (let i = 0; i < mask.data.length; i++) if (mask.data[i] !== ignoreIndex) n++;
  const out = new Uint32Array(n);
  let k = 0;
  for (let i = 0; i < mask.data.length; i++) if (mask.data[i] !== ignoreIndex) out[k++] = i;
  return out;
}

/** A patch centre [x, y] drawn uniformly among `pixels` (flat indices into a `width`-wide image), any pixel if none. */
export function drawCentre(pixels: Uint32Array, width: number, height: number, rng: Rng): [number, number] {
  const p = pixels.length > 0 ? (pixels[rng.int(0, pixels.length)] as number) : rng.int(0, width * height);
  return [p % width, Math.floor(p / width)];
}

/** The `size` window of `sample` whose centre is (cx, cy) (see the module comment for the centre and the padding). */
export function cropPatch(
  sample: Sample,
  [cx, cy]: readonly [number, number],
  [ph, pw]: readonly [number, number],
  ignoreIndex: number,
): Sample {
  const { width: W, height: H } = sample.image;
  const x0 = cx - Math.floor(pw / 2);
  const y0 = cy - Math.floor(ph / 2);
  const image = createImage(pw, ph);
  const mask = createMask(pw, ph, new Uint8Array(pw * ph).fill(ignoreIndex));
  const left = Math.max(0, -x0);
  const right = Math.min(pw, W - x0);
  for (let y = Math.max(0, -y0); y < Math.min(ph, H - y0); y++) {
    if (right <= left) break;
    const from = (y0 + y) * W + x0;
    image.data.set(sample.image.data.subarray((from + left) * 3, (from + right) * 3), (y * pw + left) * 3);
    mask.data.set(sample.mask.data.subarray(from + left, from + right), y * pw + left);
  }
  return { id: sample.id, image, mask };
}

/**
 * `ds` as `ds.length * perImage` patches (sample j: patch j % perImage of image floor(j / perImage)). `ds` should
 * keep its samples decoded (`cached`): every image is read `perImage` times per epoch.
 */
export function patchDataset(ds: Dataset, options: PatchOptions): Dataset {
  const { size, perImage, seed, epoch } = options;
  if (![perImage, ...size].every((v) => Number.isInteger(v) && v >= 1)) {
    throw new RangeError(`patchDataset: perImage ${perImage} and size ${size.join("x")} must be positive integers`);
  }
  const pixels = new WeakMap<Mask, Uint32Array>();
  const image = (j: number) => {
    if (!(Number.isInteger(j) && j >= 0 && j < ds.length * perImage)) {
      throw new RangeError(`patch ${j} out of range 0..${ds.length * perImage - 1}`);
    }
    return Math.floor(j / perImage);
  };
  return {
    ...viewInfo(ds),
    length: ds.length * perImage,
    id: (j) => `${ds.id(image(j))}#${j % perImage}`,
    files: (j) => ds.files(image(j)),
    get: async (j) => {
      const sample = await ds.get(image(j));
      let scored = pixels.get(sample.mask);
      if (!scored) {
        scored = scoredPixels(sample.mask, ds.ignoreIndex);
        pixels.set(sample.mask, scored);
      }
      const { width, height } = sample.mask;
      const centre = drawCentre(scored, width, height, createRng(deriveSeed(seed, PATCH_STREAM, epoch, j)));
      return { ...cropPatch(sample, centre, size, ds.ignoreIndex), id: `${sample.id}#${j % perImage}` };
    },
  };
}
