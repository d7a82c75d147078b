import sharp from "sharp";
import { createMask, type RgbImage } from "../core/image.js";
import { INSTANCE_PALETTE } from "../core/palette.js";
import { escapeXml, FONT } from "../io/plot.js";
import { overlayMask } from "../io/write.js";
import { rlePaint } from "../masks/rle.js";
import { type Box, countInstances, type Instances } from "./instances.js";

/**
 * `image` with its instances drawn, as PNG bytes: each mask tinted in its own colour (alpha 0.5; the best score
 * painted last, on top), its box outlined in that colour and `name score` written on a strip of that colour at the
 * box's top-left corner.
 * `categories` name the class ids (an unknown id is written as the number).
 */
export async function instancesOverlayPng(
  image: RgbImage,
  inst: Instances,
  categories: readonly { id: number; name: string }[],
): Promise<Uint8Array> {
  const n = countInstances(inst);
  const labels = createMask(image.width, image.height);
  for (let k = n - 1; k >= 0; k--) rlePaint(labels, inst.masks[k] as Instances["masks"][number], (k % 254) + 1);
  const tinted = overlayMask(image, labels, { palette: INSTANCE_PALETTE, skipClasses: [0] });
  const names = new Map(categories.map((c) => [c.id, c.name]));
  const size = Math.max(9, Math.min(14, Math.round(Math.min(image.width, image.height) / 30)));
  const parts: string[] = [];
  for (let k = n - 1; k >= 0; k--) {
    const [x1, y1, x2, y2] = inst.boxes[k] as Box;
    const [r, g, b] = INSTANCE_PALETTE[(k % 254) + 1] ?? [255, 255, 255];
    const colour = `rgb(${r},${g},${b})`;
    const text = `${names.get(inst.classIds[k] as number) ?? inst.classIds[k]} ${(inst.scores[k] as number).toFixed(2)}`;
    // the label on a strip of the instance's colour, white text, above the box (inside it at the top edge), kept
    // inside the image (its width estimated at 0.6 em a character)
    const w = Math.ceil(0.6 * size * text.length) + 4;
    const h = size + 3;
    const lx = Math.max(0, Math.min(x1, image.width - w));
    const ly = y1 >= h ? y1 - h : y1;
    parts.push(
      `<rect x="${x1}" y="${y1}" width="${x2 - x1}" height="${y2 - y1}" fill="none" stroke="${colour}" stroke-width="1.5"/>`,
      `<rect x="${lx}" y="${ly}" width="${w}" height="${h}" fill="${colour}" fill-opacity="0.85"/>`,
      `<text x="${lx + 2}" y="${ly + size}" ${FONT} font-size="${size}" fill="white" stroke="black" stroke-width="0.6" ` +
        `paint-order="stroke">${escapeXml(text)}</text>`,
    );
  }
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${image.width}" height="${image.height}">${parts.join("")}</svg>`;
  const raw = { width: image.width, height: image.height, channels: 3 } as const;
  return sharp(tinted.data, { raw })
    .composite([{ input: Buffer.from(svg), top: 0, left: 0 }])
    .png()
    .toBuffer();
}
