import type { Mask } from "../core/image.js";

/**
 * Connected components of a mask's foreground, pure TypeScript. One labelling for both users:
 * - 8-connected (default), as OpenCV's `connectedComponentsWithStats` (SAM's `remove_small_regions`);
 * - 4-connected, the pixels of one polygon with its holes (`maskToPolygons`).
 */

export interface ComponentsOptions {
  /** 8: pixels touching by an edge or a corner connect (default); 4: only by an edge. */
  connectivity?: 4 | 8;
  /** The foreground: pixels equal to `value`; default every non-zero pixel. */
  value?: number;
}

export interface Components {
  /** Row-major `[H * W]`: 0 for background, 1..n for the components. */
  labels: Int32Array;
  /** `sizes[k]`: the pixel count of label k + 1. */
  sizes: number[];
}

// neighbour offsets (x, y) of each connectivity
const DX4 = [-1, 1, 0, 0];
const DY4 = [0, 0, -1, 1];
const DX8 = [-1, 0, 1, -1, 1, -1, 0, 1];
const DY8 = [-1, -1, -1, 0, 0, 1, 1, 1];

/**
 * Labels the foreground's components. Numbering: 4-connected, in raster order of each component's first pixel;
 * 8-connected, in the order OpenCV's block-based scan (2x2 blocks, block rows top to bottom, left to right) first
 * meets each component: the 4 pixels of a 2x2 block are always 8-connected, so that order is the order of each
 * component's first block.
 */
export function connectedComponents(mask: Mask, options: ComponentsOptions = {}): Components {
  const { connectivity = 8, value } = options;
  const { width: w, height: h, data } = mask;
  const on = (i: number) => (value === undefined ? data[i] !== 0 : data[i] === value);
  const [dxs, dys] = connectivity === 4 ? [DX4, DY4] : [DX8, DY8];
  const labels = new Int32Array(w * h);
  const sizes: number[] = [];
  const firstBlock: number[] = [];
  const bw = Math.ceil(w / 2);
  const stack: number[] = [];
  for (let start = 0; start < w * h; start++) {
    if (labels[start] !== 0 || !on(start)) continue;
    const label = sizes.length + 1;
    let size = 0;
    let block = Infinity;
    labels[start] = label;
    stack.push(start);
    while (stack.length) {
      const p = stack.pop() as number;
      const x = p % w;
      const y = (p - x) / w;
      size++;
      block = Math.min(block, (y >> 1) * bw + (x >> 1));
      for (let k = 0; k < dxs.length; k++) {
        const nx = x + (dxs[k] as number);
        const ny = y + (dys[k] as number);
        if (nx < 0 || ny < 0 || nx >= w || ny >= h) continue;
        const q = ny * w + nx;
        if (labels[q] === 0 && on(q)) {
          labels[q] = label;
          stack.push(q);
        }
      }
    }
    sizes.push(size);
    firstBlock.push(block);
  }
  if (connectivity === 4) return { labels, sizes };
  // renumber in block order (the raster order above already agrees except for components starting in a block's
  // second row left of one that starts in its first row)
  const order = Array.from(sizes.keys()).sort((a, b) => (firstBlock[a] as number) - (firstBlock[b] as number) || a - b);
  const relabel = new Int32Array(sizes.length + 1);
  order.forEach((old, k) => {
    relabel[old + 1] = k + 1;
  });
  for (let i = 0; i < labels.length; i++) labels[i] = relabel[labels[i] as number] as number;
  return { labels, sizes: order.map((k) => sizes[k] as number) };
}
