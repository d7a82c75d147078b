import { mkdir, mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { createImage, createMask } from "../core/image.js";
import { encodePng } from "../io/write.js";
import { type CompressedRle, rleEncode, rleToString } from "../masks/rle.js";

/**
 * A temporary studio workspace: `<root>/photos/` with the given PNG images (`{ "a.png": [w, h] }`, subdirectories
 * allowed), each filled with a seeded pattern; the project directory is `<root>/photos-labels` by default.
 */
export async function makeImagesDir(
  images: Record<string, [number, number]>,
): Promise<{ root: string; images: string }> {
  const root = await mkdtemp(join(tmpdir(), "segkit-studio-"));
  const dir = join(root, "photos");
  await mkdir(dir, { recursive: true });
  let seed = 0;
  for (const [name, [w, h]] of Object.entries(images)) {
    const data = new Uint8Array(w * h * 3);
    seed++;
    for (let i = 0; i < data.length; i++) data[i] = (i * 37 + seed * 101) % 256;
    await mkdir(dirname(join(dir, name)), { recursive: true });
    await writeFile(join(dir, name), await encodePng(createImage(w, h, data)));
  }
  return { root, images: dir };
}

/** The compressed RLE of a `w` x `h` mask with the rectangle [x0, x1) x [y0, y1) set. */
export function rectRle(w: number, h: number, x0: number, y0: number, x1: number, y1: number): CompressedRle {
  const m = createMask(w, h);
  for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) m.data[y * w + x] = 1;
  return rleToString(rleEncode(m));
}
