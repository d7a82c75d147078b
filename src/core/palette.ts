/** A palette: RGB triplets, index = class index. */
export type Palette = ReadonlyArray<readonly [number, number, number]>;

/**
 * The PASCAL VOC colour map (256 entries), the standard palette of class-index PNGs: class 0 black,
 * 1 (128,0,0), 2 (0,128,0), 3 (128,128,0), ..., 255 (224,224,192), which is also how ignore pixels show.
 * Each class index's bits are spread over the high bits of R, G and B.
 */
export function vocPalette(): Palette {
  const out: [number, number, number][] = [];
  for (let i = 0; i < 256; i++) {
    let r = 0;
    let g = 0;
    let b = 0;
    let c = i;
    for (let j = 7; j >= 0; j--) {
      r |= (c & 1) << j;
      g |= ((c >> 1) & 1) << j;
      b |= ((c >> 2) & 1) << j;
      c >>= 3;
    }
    out.push([r, g, b]);
  }
  return out;
}

export const VOC_PALETTE: Palette = vocPalette();

/** Oxford-IIIT Pet trimap classes (pet, background, border) in colours that read well over photos. */
export const PET_PALETTE: Palette = [
  [255, 64, 64],
  [0, 0, 0],
  [255, 220, 0],
];

/** Overlay colours for instances, index 1..254 (0 untinted, 255 the ignore index): hues a golden angle apart, so neighbours differ. */
export const INSTANCE_PALETTE: Palette = Array.from({ length: 256 }, (_, k) => {
  const h = ((k * 0.618033988749895) % 1) * 6;
  const [s, v] = [0.85, 0.95];
  const f = (n: number) => {
    const x = (n + h) % 6;
    return Math.round(255 * v * (1 - s * Math.max(0, Math.min(1, x, 4 - x))));
  };
  return [f(5), f(3), f(1)] as const;
});
