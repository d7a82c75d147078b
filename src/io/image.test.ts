import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { decode as decodePng, encode as encodePng } from "fast-png";
import sharp from "sharp";
import { SegkitError } from "../core/errors.js";
import type { RgbImage } from "../core/image.js";
import { createRng } from "../core/random.js";
import { jpegHeader, readImage, readImageSize } from "./image.js";
import { resizeImage } from "./resize.js";

type Rgb = [number, number, number];

/** Raw RGB bytes of a width x height image whose pixel (x, y) is `px(x, y)`. */
function rawRgb(width: number, height: number, px: (x: number, y: number) => Rgb): Buffer {
  const out = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) out.set(px(x, y), (y * width + x) * 3);
  }
  return out;
}

function fromRaw(width: number, height: number, px: (x: number, y: number) => Rgb) {
  return sharp(rawRgb(width, height, px), { raw: { width, height, channels: 3 } });
}

function pixel(img: RgbImage, x: number, y: number): Rgb {
  const i = (y * img.width + x) * 3;
  return [img.data[i] as number, img.data[i + 1] as number, img.data[i + 2] as number];
}

/** Asserts every pixel of `img` equals `px(x, y)` exactly. */
function assertPixels(img: RgbImage, width: number, height: number, px: (x: number, y: number) => Rgb): void {
  assert.equal(img.width, width);
  assert.equal(img.height, height);
  assert.equal(img.data.length, width * height * 3);
  assert.ok(img.data instanceof Uint8Array);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) assert.deepEqual(pixel(img, x, y), px(x, y), `pixel (${x}, ${y})`);
  }
}

/** A 5x3 test pattern with a distinct colour at every pixel. */
const W = 5;
const H = 3;
const pattern = (x: number, y: number): Rgb => [x * 50 + y * 5, 200 - x * 30 - y, y * 70 + 5 + x];

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), "segkit-image-test-"));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("readImage: formats", () => {
  it("decodes a PNG exactly, from bytes and from a path", async () => {
    const png = await fromRaw(W, H, pattern).png().toBuffer();
    assertPixels(await readImage(png), W, H, pattern);
    const path = join(dir, "pattern.png");
    await writeFile(path, png);
    assertPixels(await readImage(path), W, H, pattern);
  });

  it("decodes a lossless WebP exactly", async () => {
    const webp = await fromRaw(W, H, pattern).webp({ lossless: true }).toBuffer();
    assertPixels(await readImage(webp), W, H, pattern);
  });

  for (const compression of ["none", "lzw", "deflate"] as const) {
    it(`decodes a TIFF (${compression}) exactly`, async () => {
      const tiff = await fromRaw(W, H, pattern).tiff({ compression }).toBuffer();
      assert.deepEqual([...tiff.subarray(0, 2)], [0x49, 0x49], "little-endian TIFF header");
      assertPixels(await readImage(tiff), W, H, pattern);
    });
  }

  it("decodes a GIF with few colours exactly", async () => {
    const colours: Rgb[] = [
      [255, 0, 0],
      [0, 128, 255],
      [10, 200, 30],
      [250, 250, 250],
    ];
    const px = (x: number, y: number): Rgb => colours[(x + 2 * y) % 4] as Rgb;
    const gif = await fromRaw(W, H, px).gif().toBuffer();
    assert.equal(gif.subarray(0, 4).toString("latin1"), "GIF8");
    assertPixels(await readImage(gif), W, H, px);
  });

  it("decodes a flat-colour JPEG within a small tolerance", async () => {
    const colour: Rgb = [200, 100, 50];
    const jpeg = await fromRaw(16, 8, () => colour)
      .jpeg({ quality: 95 })
      .toBuffer();
    const img = await readImage(jpeg);
    assert.equal(img.width, 16);
    assert.equal(img.height, 8);
    assert.equal(img.data.length, 16 * 8 * 3);
    for (let i = 0; i < img.data.length; i++) {
      const want = colour[i % 3] as number;
      assert.ok(Math.abs((img.data[i] as number) - want) <= 3, `byte ${i}: ${img.data[i]} vs ${want}`);
    }
  });

  it("decodes an indexed (palette) PNG into its palette colours", async () => {
    const palette = [
      [255, 0, 0],
      [0, 0, 255],
      [17, 34, 51],
    ];
    const indices = [0, 1, 2, 2, 1, 0];
    const png = encodePng({ width: 3, height: 2, data: Uint8Array.from(indices), channels: 1, depth: 8, palette });
    const img = await readImage(png);
    assertPixels(img, 3, 2, (x, y) => palette[indices[y * 3 + x] as number] as Rgb);
  });
});

describe("readImage: content detection", () => {
  it("reads a PNG saved under a .jpg name", async () => {
    const path = join(dir, "really-a-png.jpg");
    await writeFile(path, await fromRaw(W, H, pattern).png().toBuffer());
    assertPixels(await readImage(path), W, H, pattern);
  });

  it("reads a GIF saved under a .jpg name", async () => {
    const px = (x: number, y: number): Rgb => ((x + y) % 2 ? [0, 0, 0] : [255, 255, 255]);
    const path = join(dir, "really-a-gif.jpg");
    await writeFile(path, await fromRaw(4, 3, px).gif().toBuffer());
    assertPixels(await readImage(path), 4, 3, px);
  });
});

describe("readImage: EXIF orientation", () => {
  // Stored image 2 wide, 3 high; every pixel distinct.
  const sw = 2;
  const sh = 3;
  const stored = (x: number, y: number): Rgb => [(y * sw + x) * 40, 255 - (y * sw + x) * 40, 7];
  // Where displayed pixel (x, y) comes from, for each EXIF orientation (1..8).
  const source: Record<number, (x: number, y: number) => [number, number]> = {
    1: (x, y) => [x, y],
    2: (x, y) => [sw - 1 - x, y],
    3: (x, y) => [sw - 1 - x, sh - 1 - y],
    4: (x, y) => [x, sh - 1 - y],
    5: (x, y) => [y, x],
    6: (x, y) => [y, sh - 1 - x],
    7: (x, y) => [sw - 1 - y, sh - 1 - x],
    8: (x, y) => [sw - 1 - y, x],
  };

  for (let orientation = 1; orientation <= 8; orientation++) {
    it(`applies orientation ${orientation} (PNG)`, async () => {
      const png = await fromRaw(sw, sh, stored).png().withMetadata({ orientation }).toBuffer();
      assert.equal((await sharp(png).metadata()).orientation, orientation, "fixture carries the tag");
      const swap = orientation >= 5;
      const [dw, dh] = swap ? [sh, sw] : [sw, sh];
      const from = source[orientation] as (x: number, y: number) => [number, number];
      assertPixels(await readImage(png), dw, dh, (x, y) => stored(...from(x, y)));
      assert.deepEqual(await readImageSize(png), { width: dw, height: dh });
    });
  }

  it("applies orientation 6 to a JPEG (3x2 grid of flat 8x8 blocks)", async () => {
    const blocks: Rgb[] = [
      [250, 0, 0],
      [0, 250, 0],
      [0, 0, 250],
      [250, 250, 0],
      [0, 250, 250],
      [250, 250, 250],
    ];
    // stored: 2 blocks wide, 3 high
    const storedBlock = (bx: number, by: number) => blocks[by * 2 + bx] as Rgb;
    const jpeg = await fromRaw(16, 24, (x, y) => storedBlock(Math.floor(x / 8), Math.floor(y / 8)))
      .jpeg({ quality: 100, chromaSubsampling: "4:4:4" })
      .withMetadata({ orientation: 6 })
      .toBuffer();
    assert.equal((await sharp(jpeg).metadata()).orientation, 6);
    assert.deepEqual(await readImageSize(jpeg), { width: 24, height: 16 });
    const img = await readImage(jpeg);
    assert.equal(img.width, 24);
    assert.equal(img.height, 16);
    // displayed block (bx, by) of the 3x2 grid comes from stored block (by, 2 - bx)
    for (let by = 0; by < 2; by++) {
      for (let bx = 0; bx < 3; bx++) {
        const got = pixel(img, bx * 8 + 4, by * 8 + 4);
        const want = storedBlock(by, 2 - bx);
        got.forEach((v, c) => {
          assert.ok(Math.abs(v - (want[c] as number)) <= 6, `block (${bx}, ${by}): ${got} vs ${want}`);
        });
      }
    }
  });
});

describe("readImage: colour profiles", () => {
  it("gives the stored values of an image with an embedded (Display P3) profile, not a conversion to sRGB", async () => {
    const px = (x: number, y: number): Rgb => [40 + x * 40, 220 - y * 40, 120 + ((x + y) % 2) * 90];
    const png = await fromRaw(4, 4, px).withIccProfile("p3").png().toBuffer();
    assert.ok((await sharp(png).metadata()).icc, "fixture carries its profile");
    const stored = decodePng(png);
    assert.equal(stored.channels, 3);
    const img = await readImage(png);
    assert.deepEqual([...img.data], [...stored.data], "the file's own values, as Pillow, OpenCV and torchvision give");
    const converted = await sharp(png).toColourspace("srgb").raw().toBuffer();
    assert.notDeepEqual([...img.data], [...converted], "the profile would have changed them");
    const resized = await readImage(png, { width: 2, height: 2 });
    assert.deepEqual(resized.data, (await resizeImage(img, 2, 2)).data, "the one-pipeline resize ignores it too");
  });
});

describe("readImage: channel and depth conversion", () => {
  it("drops alpha without compositing", async () => {
    const rgba = Buffer.from([10, 20, 30, 0, 200, 100, 50, 128, 1, 2, 3, 255, 90, 80, 70, 1]);
    const png = await sharp(rgba, { raw: { width: 2, height: 2, channels: 4 } })
      .png()
      .toBuffer();
    assert.equal((await sharp(png).metadata()).channels, 4, "fixture is RGBA");
    const img = await readImage(png);
    assert.deepEqual([...img.data], [10, 20, 30, 200, 100, 50, 1, 2, 3, 90, 80, 70]);
  });

  it("expands an 8-bit grayscale PNG to R = G = B", async () => {
    const levels = [0, 1, 50, 127, 128, 200, 254, 255];
    const png = encodePng({ width: 4, height: 2, data: Uint8Array.from(levels), channels: 1, depth: 8 });
    const img = await readImage(png);
    assertPixels(img, 4, 2, (x, y) => {
      const v = levels[y * 4 + x] as number;
      return [v, v, v];
    });
  });

  it("expands a gray + alpha PNG to R = G = B, alpha dropped", async () => {
    const png = encodePng({ width: 3, height: 1, data: Uint8Array.from([9, 0, 99, 128, 250, 255]), channels: 2 });
    assert.deepEqual([...(await readImage(png)).data], [9, 9, 9, 99, 99, 99, 250, 250, 250]);
  });

  it("reduces a 16-bit PNG to 8 bits (about v / 257)", async () => {
    const values = [0, 257 * 10, 65535, 1000, 30000, 50000, 12345, 257 * 200, 65280];
    const png = encodePng({ width: 3, height: 1, data: Uint16Array.from(values), depth: 16, channels: 3 });
    const img = await readImage(png);
    assert.equal(img.width, 3);
    assert.equal(img.height, 1);
    assert.ok(img.data instanceof Uint8Array);
    assert.equal(img.data.length, 9);
    values.forEach((v, i) => {
      assert.ok(Math.abs((img.data[i] as number) - v / 257) <= 1, `sample ${i}: ${img.data[i]} vs ${v / 257}`);
    });
    assert.deepEqual([img.data[0], img.data[1], img.data[2], img.data[7]], [0, 10, 255, 200]);
  });
});

describe("readImage: errors", () => {
  async function expectSegkitError(p: Promise<unknown>, file: string, message: RegExp): Promise<void> {
    await assert.rejects(p, (err: unknown) => {
      assert.ok(err instanceof SegkitError, `expected SegkitError, got ${String(err)}`);
      assert.equal(err.file, file);
      assert.match(err.message, message);
      return true;
    });
  }

  it("rejects random bytes as not a supported image, naming the file", async () => {
    const rng = createRng(7);
    const bytes = Uint8Array.from({ length: 512 }, () => rng.int(0, 256));
    bytes[0] = 0; // no format starts with a NUL byte
    const path = join(dir, "noise.png");
    await writeFile(path, bytes);
    await expectSegkitError(readImage(path), path, /not a supported image/);
    await expectSegkitError(readImageSize(path), path, /not a supported image/);
  });

  it("rejects a text file as not a supported image", async () => {
    const path = join(dir, "notes.jpg");
    await writeFile(path, "these are not pixels\nline two\n");
    await expectSegkitError(readImage(path), path, /not a supported image/);
  });

  it("names a buffer source <buffer>", async () => {
    await expectSegkitError(readImage(Buffer.from("plain text")), "<buffer>", /not a supported image/);
  });

  it("reports a missing file as file not found", async () => {
    const path = join(dir, "does-not-exist.png");
    await expectSegkitError(readImage(path), path, /^file not found$/);
    await expectSegkitError(readImageSize(path), path, /^file not found$/);
  });

  it("reports an empty file as empty", async () => {
    const path = join(dir, "empty.jpg");
    await writeFile(path, "");
    await expectSegkitError(readImage(path), path, /^empty file$/);
    await expectSegkitError(readImageSize(path), path, /^empty file$/);
  });

  it("reports a directory as a directory", async () => {
    const path = join(dir, "a-directory.png");
    await mkdir(path);
    await expectSegkitError(readImage(path), path, /is a directory/);
  });

  it("reports a truncated PNG as undecodable", async () => {
    const png = await fromRaw(32, 32, pattern).png().toBuffer();
    const path = join(dir, "truncated.png");
    await writeFile(path, png.subarray(0, 60));
    await assert.rejects(readImage(path), (err: unknown) => err instanceof SegkitError && err.file === path);
  });
});

describe("readImageSize", () => {
  it("reads the header size of each format", async () => {
    const base = () => fromRaw(W, H, pattern);
    for (const buf of [
      await base().png().toBuffer(),
      await base().jpeg().toBuffer(),
      await base().webp().toBuffer(),
      await base().tiff().toBuffer(),
      await base().gif().toBuffer(),
    ]) {
      assert.deepEqual(await readImageSize(buf), { width: W, height: H });
    }
  });

  it("swaps width and height for orientations 5..8 only", async () => {
    for (let orientation = 1; orientation <= 8; orientation++) {
      const jpeg = await fromRaw(6, 4, pattern).jpeg().withMetadata({ orientation }).toBuffer();
      const want = orientation >= 5 ? { width: 4, height: 6 } : { width: 6, height: 4 };
      assert.deepEqual(await readImageSize(jpeg), want, `orientation ${orientation}`);
      const img = await readImage(jpeg);
      assert.deepEqual({ width: img.width, height: img.height }, want, `decoded, orientation ${orientation}`);
    }
  });
});

describe("readImage with a size: decode and resize in one pipeline", () => {
  /** A smooth 8-bit pattern with some detail, so a resize has something to get wrong. */
  const scene = (x: number, y: number): Rgb => [(x * 3 + y) % 256, (y * 2) % 256, (x * y) % 256];
  const meanAbs = (a: Uint8Array, b: Uint8Array) =>
    a.reduce((s, v, i) => s + Math.abs(v - (b[i] as number)), 0) / a.length;

  it("gives exactly resizeImage(readImage(src)) for a PNG, with the original size", async () => {
    const png = await fromRaw(90, 70, scene).png().toBuffer();
    const twoStep = await resizeImage(await readImage(png), 32, 24);
    const direct = await readImage(png, { width: 32, height: 24 });
    assert.deepEqual(direct.originalSize, { width: 90, height: 70 });
    assert.equal(direct.width, 32);
    assert.equal(direct.height, 24);
    assert.deepEqual(direct.data, twoStep.data);
  });

  it("gives exactly the two-step result for a JPEG shrunk by less than 4x (no shrink-on-load)", async () => {
    const jpeg = await fromRaw(120, 90, scene).jpeg({ quality: 90 }).toBuffer();
    const twoStep = await resizeImage(await readImage(jpeg), 40, 30);
    const direct = await readImage(jpeg, { width: 40, height: 30 });
    assert.deepEqual(direct.data, twoStep.data);
  });

  it("stays within a level on average of the two-step result when libjpeg shrinks on load (8x here)", async () => {
    const jpeg = await fromRaw(400, 320, scene).jpeg({ quality: 90 }).toBuffer();
    const twoStep = await resizeImage(await readImage(jpeg), 50, 40);
    const direct = await readImage(jpeg, { width: 50, height: 40 });
    assert.deepEqual([direct.width, direct.height], [50, 40]);
    const diff = meanAbs(direct.data, twoStep.data);
    assert.ok(diff < 1, `mean absolute difference ${diff}`);
  });

  it("applies EXIF orientation first: originalSize is the upright size, pixels as the two-step path", async () => {
    // Stored 40 wide, 20 high; orientation 6 (rotate 90 clockwise) shows it 20 wide, 40 high.
    const jpeg = await fromRaw(40, 20, scene).jpeg({ quality: 95 }).withMetadata({ orientation: 6 }).toBuffer();
    const direct = await readImage(jpeg, { width: 10, height: 16 });
    assert.deepEqual(direct.originalSize, { width: 20, height: 40 });
    const twoStep = await resizeImage(await readImage(jpeg), 10, 16);
    assert.deepEqual(direct.data, twoStep.data);
  });

  it("resizes an image with alpha after dropping it, as the two-step path does (not premultiplied)", async () => {
    const rgba = Buffer.alloc(30 * 20 * 4);
    for (let i = 0; i < 30 * 20; i++) rgba.set([(i * 7) % 256, (i * 3) % 256, 99, i % 2 ? 0 : 255], i * 4);
    const png = await sharp(rgba, { raw: { width: 30, height: 20, channels: 4 } })
      .png()
      .toBuffer();
    const direct = await readImage(png, { width: 10, height: 10 });
    assert.deepEqual(direct.data, (await resizeImage(await readImage(png), 10, 10)).data);
  });

  it("names the file when it cannot decode it", async () => {
    const path = join(dir, "broken.jpg");
    await writeFile(path, Buffer.from([0xff, 0xd8, 0xff, 0xe0, 1, 2, 3]));
    await assert.rejects(readImage(path, { width: 8, height: 8 }), (err: unknown) => {
      assert.ok(err instanceof SegkitError);
      assert.equal(err.file, path);
      return true;
    });
  });
});

describe("jpegHeader", () => {
  it("reads size and EXIF orientation as sharp's metadata does, and declines what is not a plain JPEG", async () => {
    const upright = await fromRaw(40, 20, pattern).jpeg().toBuffer();
    assert.deepEqual(jpegHeader(upright), { width: 40, height: 20, orientation: 1, hasAlpha: false, depth: "uchar" });
    for (const orientation of [3, 6, 8]) {
      const jpeg = await fromRaw(40, 20, pattern).jpeg().withMetadata({ orientation }).toBuffer();
      const m = await sharp(jpeg).metadata();
      const h = jpegHeader(jpeg);
      assert.deepEqual([h?.width, h?.height, h?.orientation], [m.autoOrient.width, m.autoOrient.height, orientation]);
    }
    assert.equal(jpegHeader(await fromRaw(4, 4, pattern).png().toBuffer()), undefined);
    assert.equal(jpegHeader(upright.subarray(0, 30)), undefined);
  });
});
