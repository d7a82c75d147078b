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
