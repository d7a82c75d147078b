import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { deflateSync } from "node:zlib";
import { encode as encodePng } from "fast-png";
import sharp from "sharp";
import { SegkitError } from "../core/errors.js";
import { VOC_PALETTE } from "../core/palette.js";
import { filteredPng, pngChunk } from "../test-utils/png.js";
import { readImage } from "./image.js";
import { applyEncoding, describeEncoding, type MaskEncoding, type RawMask, readMask, readRawMask } from "./mask.js";
import { resizeMask } from "./resize.js";

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), "segkit-mask-test-"));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function saved(name: string, bytes: Uint8Array): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, bytes);
  return path;
}

function grayPng(width: number, height: number, values: ArrayLike<number>): Uint8Array {
  return encodePng({ width, height, data: Uint8Array.from(values), channels: 1, depth: 8 });
}

/** Packs samples MSB-first into rows padded to whole bytes, as PNG stores 1/2/4-bit samples. */
function packBits(samples: readonly number[], width: number, height: number, depth: number): Uint8Array {
  const rowBytes = Math.ceil((width * depth) / 8);
  const out = new Uint8Array(rowBytes * height);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const bit = x * depth;
      const shift = 8 - depth - (bit % 8);
      const i = y * rowBytes + Math.floor(bit / 8);
      out[i] = (out[i] as number) | ((samples[y * width + x] as number) << shift);
    }
  }
  return out;
}

function raw(values: number[], width = values.length, height = 1): RawMask {
  return { data: Uint8Array.from(values), width, height };
}

async function rejectsSegkit(p: Promise<unknown>, check: (err: SegkitError) => void): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof SegkitError, `expected SegkitError, got ${String(err)}`);
    check(err);
    return true;
  });
}

describe("readRawMask: PNG", () => {
  it("reads every 8-bit gray value exactly", async () => {
    const values = Array.from({ length: 256 }, (_, i) => (i * 37) % 256); // a permutation of 0..255
    const m = await readRawMask(grayPng(16, 16, values));
    assert.equal(m.width, 16);
    assert.equal(m.height, 16);
    assert.ok(m.data instanceof Uint8Array);
    assert.deepEqual([...m.data], values);
  });

  it("keeps a non-square layout row-major", async () => {
    const values = [1, 2, 3, 4, 5, 6];
    const m = await readRawMask(grayPng(3, 2, values));
    assert.deepEqual([m.width, m.height, [...m.data]], [3, 2, values]);
  });

  it("reads a coloured palette PNG as palette indices", async () => {
    const indices = [0, 1, 2, 3, 3, 2, 1, 0, 20];
    const png = encodePng({
      width: 3,
      height: 3,
      data: Uint8Array.from(indices),
      channels: 1,
      depth: 8,
      palette: VOC_PALETTE.slice(0, 21).map((c) => [...c]),
    });
    assert.deepEqual([...(await readRawMask(png)).data], indices);
  });

  it("reads a gray palette PNG as gray levels", async () => {
    const palette = [
      [0, 0, 0],
      [255, 255, 255],
      [128, 128, 128],
    ];
    const png = encodePng({ width: 4, height: 1, data: Uint8Array.from([0, 1, 2, 1]), channels: 1, depth: 8, palette });
    assert.deepEqual([...(await readRawMask(png)).data], [0, 255, 128, 255]);
  });

  it("reads indices of a VOC-palette mask that only uses the gray classes 0, 7, 56, 63", async () => {
    // VOC colours of 7, 56 and 63 are grays (128, 64, 192); the rest of the palette is not.
    const indices = [0, 7, 56, 63, 7, 0];
    const png = encodePng({
      width: 3,
      height: 2,
      data: Uint8Array.from(indices),
      channels: 1,
      depth: 8,
      palette: VOC_PALETTE.map((c) => [...c]),
    });
    assert.deepEqual([...(await readRawMask(png)).data], indices);
  });

  it("ignores an unused transparent palette entry when deciding the palette is gray", async () => {
    const palette = [
      [76, 105, 113, 0], // transparent, never used (what GIF writers reserve)
      [0, 0, 0, 255],
      [255, 255, 255, 255],
    ];
    const png = encodePng({ width: 3, height: 1, data: Uint8Array.from([1, 2, 2]), channels: 1, depth: 8, palette });
    assert.deepEqual([...(await readRawMask(png)).data], [0, 255, 255]);
  });

  for (const depth of [1, 2, 4] as const) {
    // width 5: rows end mid-byte, so row padding is exercised
    const width = 5;
    const height = 3;
    const samples = Array.from({ length: width * height }, (_, i) => (i * 3 + (i >> 2)) % (1 << depth));

    it(`unpacks a ${depth}-bit palette PNG into indices`, async () => {
      const palette = Array.from({ length: 1 << depth }, (_, i) => [...(VOC_PALETTE[i + 1] ?? [])]);
      const png = encodePng({
        width,
        height,
        data: packBits(samples, width, height, depth),
        channels: 1,
        depth,
        palette,
      });
      assert.equal(png[24], depth, "fixture bit depth");
      const m = await readRawMask(png);
      assert.deepEqual([m.width, m.height], [width, height]);
      assert.deepEqual([...m.data], samples);
    });

    it(`unpacks a ${depth}-bit gray PNG into its stored values 0..${(1 << depth) - 1}`, async () => {
      const png = encodePng({ width, height, data: packBits(samples, width, height, depth), channels: 1, depth });
      assert.equal(png[24], depth, "fixture bit depth");
      assert.deepEqual([...(await readRawMask(png)).data], samples);
    });
  }

  it("reads a sharp 2-bit palette PNG with indices that match its colours", async () => {
    const colours = [
      [200, 0, 0],
      [0, 200, 0],
      [0, 0, 200],
      [200, 200, 0],
    ];
    const which = Array.from({ length: 7 * 5 }, (_, i) => (i * 7 + (i >> 3)) % 4);
    const rgb = Buffer.from(which.flatMap((k) => colours[k] as number[]));
    const png = await sharp(rgb, { raw: { width: 7, height: 5, channels: 3 } })
      .png({ palette: true, colours: 4, dither: 0 })
      .toBuffer();
    assert.deepEqual([png[24], png[25]], [2, 3], "2-bit indexed fixture");
    const m = await readRawMask(png);
    const img = await readImage(png);
    // the same colour always has the same index, different colours different indices
    const colourOf = new Map<number, string>();
    const indexOf = new Map<string, number>();
    for (let i = 0; i < which.length; i++) {
      const idx = m.data[i] as number;
      const col = [...img.data.subarray(i * 3, i * 3 + 3)].join(",");
      assert.equal(col, (colours[which[i] as number] as number[]).join(","), "fixture colours survive");
      assert.equal(colourOf.get(idx) ?? col, col, `index ${idx} has one colour`);
      assert.equal(indexOf.get(col) ?? idx, idx, `colour ${col} has one index`);
      colourOf.set(idx, col);
      indexOf.set(col, idx);
    }
    assert.equal(colourOf.size, 4);
    assert.ok([...colourOf.keys()].every((k) => k < 4));
  });

  it("rejects an interlaced PNG with 1-bit samples with a clear error", async () => {
    const g = Buffer.alloc(16 * 16);
    g[5 * 16 + 7] = 255;
    const png = await sharp(g, { raw: { width: 16, height: 16, channels: 1 } })
      .png({ progressive: true, palette: true, colours: 2 })
      .toBuffer();
    assert.deepEqual([png[24], png[28]], [1, 1], "1-bit interlaced fixture");
    const path = await saved("interlaced-1bit.png", png);
    await rejectsSegkit(readRawMask(path), (err) => {
      assert.equal(err.file, path);
      assert.match(err.message, /interlaced PNG with 1-bit samples/);
    });
  });

  it("reads an interlaced 8-bit gray PNG exactly", async () => {
    const values = Array.from({ length: 11 * 9 }, (_, i) => (i * 29) % 256);
    const png = await sharp(Buffer.from(values), { raw: { width: 11, height: 9, channels: 1 } })
      .png({ progressive: true })
      .toBuffer();
    assert.equal(png[28], 1, "interlaced fixture");
    const m = await readRawMask(png);
    // sharp writes a gray source as gray PNG or RGB; either way the values come back
    assert.deepEqual([m.width, m.height, [...m.data]], [11, 9, values]);
  });

  it("rejects a PNG whose header is over the pixel limit before decoding it", async () => {
    const png = grayPng(2, 2, [0, 1, 2, 3]);
    const view = new DataView(png.buffer, png.byteOffset, png.byteLength);
    view.setUint32(16, 16385); // IHDR width
    view.setUint32(20, 16385); // IHDR height: 16385^2 is just over 16384^2
    await rejectsSegkit(readRawMask(png), (err) => {
      assert.equal(err.file, "<buffer>");
      assert.match(err.message, /mask is 16385x16385, larger than the 268435456-pixel limit/);
    });
  });

  it("reads 16-bit gray values unchanged", async () => {
    const values = [0, 1, 2, 255, 256, 300, 1000, 65534, 65535];
    const png = encodePng({ width: 3, height: 3, data: Uint16Array.from(values), channels: 1, depth: 16 });
    const m = await readRawMask(png);
    assert.ok(m.data instanceof Uint16Array);
    assert.deepEqual([...m.data], values);
  });

  it("accepts RGB and RGBA PNGs whose pixels are all gray", async () => {
    const rgb = encodePng({ width: 2, height: 1, data: Uint8Array.from([3, 3, 3, 200, 200, 200]), channels: 3 });
    assert.deepEqual([...(await readRawMask(rgb)).data], [3, 200]);
    const rgba = encodePng({ width: 2, height: 1, data: Uint8Array.from([4, 4, 4, 0, 9, 9, 9, 255]), channels: 4 });
    assert.deepEqual([...(await readRawMask(rgba)).data], [4, 9]);
    const ga = encodePng({ width: 2, height: 1, data: Uint8Array.from([5, 0, 6, 255]), channels: 2 });
    assert.deepEqual([...(await readRawMask(ga)).data], [5, 6]);
  });

  it("rejects an RGB PNG with a colour pixel, naming the pixel", async () => {
    // pixel (2, 1) of a 3x2 image is the first non-gray one
    const data = Uint8Array.from([0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4, 5, 6, 5]);
    const path = await saved("colour.png", encodePng({ width: 3, height: 2, data, channels: 3 }));
    await rejectsSegkit(readRawMask(path), (err) => {
      assert.equal(err.file, path);
      assert.match(err.message, /colour mask/);
      assert.match(err.message, /\(2, 1\)/);
    });
  });
});

describe("readRawMask: GIF", () => {
  it("reads a gray 0/255 GIF as 0/255", async () => {
    const values = [0, 255, 255, 0, 255, 0, 0, 255, 0, 0, 255, 255];
    const gif = await sharp(Buffer.from(values), { raw: { width: 4, height: 3, channels: 1 } })
      .gif()
      .toBuffer();
    assert.equal(Buffer.from(gif.subarray(0, 4)).toString("latin1"), "GIF8");
    const m = await readRawMask(await saved("drive-like.gif", gif));
    assert.deepEqual([m.width, m.height, [...m.data]], [4, 3, values]);
  });

  it("reads a coloured GIF as indices, one per colour", async () => {
    const colours = [
      [255, 0, 0],
      [0, 255, 0],
      [0, 0, 255],
    ];
    const which = Array.from({ length: 8 * 8 }, (_, i) => (i + (i >> 3)) % 3);
    const gif = await sharp(Buffer.from(which.flatMap((k) => colours[k] as number[])), {
      raw: { width: 8, height: 8, channels: 3 },
    })
      .gif()
      .toBuffer();
    const m = await readRawMask(gif);
    assert.deepEqual([m.width, m.height], [8, 8]);
    const indexOfColour = new Map<number, number>();
    which.forEach((k, i) => {
      const idx = m.data[i] as number;
      assert.equal(indexOfColour.get(k) ?? idx, idx, `colour ${k} keeps one index`);
      indexOfColour.set(k, idx);
    });
    assert.equal(new Set(indexOfColour.values()).size, 3, "three colours, three indices");
    // and the colours the indices stand for are the colours an image reader sees
    const img = await readImage(gif);
    which.forEach((k, i) => {
      assert.deepEqual([...img.data.subarray(i * 3, i * 3 + 3)], colours[k]);
    });
  });

  it("rejects a truncated GIF", async () => {
    const gif = await sharp(Buffer.alloc(64 * 64 * 3, 90), { raw: { width: 64, height: 64, channels: 3 } })
      .gif()
      .toBuffer();
    const path = await saved("truncated.gif", gif.subarray(0, 8));
    await rejectsSegkit(readRawMask(path), (err) => assert.equal(err.file, path));
  });
});

describe("readRawMask: other formats (through sharp)", () => {
  it("reads an 8-bit gray TIFF exactly", async () => {
    const values = [0, 1, 2, 3, 4, 100, 254, 255];
    const tiff = await sharp(Buffer.from(values), { raw: { width: 4, height: 2, channels: 1 } })
      .toColourspace("b-w")
      .tiff({ compression: "lzw" })
      .toBuffer();
    const m = await readRawMask(await saved("mask.tif", tiff));
    assert.ok(m.data instanceof Uint8Array);
    assert.deepEqual([m.width, m.height, [...m.data]], [4, 2, values]);
  });

  it("reads a 16-bit gray TIFF with its 16-bit values", async () => {
    const values = [0, 1, 2, 300, 4000, 65535];
    const png16 = encodePng({ width: 3, height: 2, data: Uint16Array.from(values), channels: 1, depth: 16 });
    const tiff = await sharp(png16).toColourspace("grey16").tiff({ compression: "lzw" }).toBuffer();
    assert.equal((await sharp(tiff).metadata()).depth, "ushort", "16-bit fixture");
    const m = await readRawMask(tiff);
    assert.ok(m.data instanceof Uint16Array);
    assert.deepEqual([m.width, m.height, [...m.data]], [3, 2, values]);
  });

  it("rejects a 16-bit RGB TIFF with a colour pixel", async () => {
    const png16 = encodePng({
      width: 2,
      height: 1,
      data: Uint16Array.from([7, 7, 7, 300, 301, 300]),
      channels: 3,
      depth: 16,
    });
    const tiff = await sharp(png16).toColourspace("rgb16").tiff({ compression: "lzw" }).toBuffer();
    await rejectsSegkit(readRawMask(tiff), (err) => assert.match(err.message, /colour mask: pixel \(1, 0\)/));
  });

  it("reads a lossless WebP whose pixels are gray", async () => {
    const values = [0, 1, 2, 3, 250, 255];
    const webp = await sharp(Buffer.from(values), { raw: { width: 3, height: 2, channels: 1 } })
      .webp({ lossless: true })
      .toBuffer();
    assert.deepEqual([...(await readRawMask(webp)).data], values);
  });

  it("rejects a colour TIFF, naming the pixel", async () => {
    const rgb = Buffer.from([9, 9, 9, 10, 10, 10, 0, 0, 0, 200, 10, 10]);
    const tiff = await sharp(rgb, { raw: { width: 2, height: 2, channels: 3 } })
      .tiff({ compression: "lzw" })
      .toBuffer();
    const path = await saved("colour.tif", tiff);
    await rejectsSegkit(readRawMask(path), (err) => {
      assert.equal(err.file, path);
      assert.match(err.message, /colour mask: pixel \(1, 1\)/);
    });
  });

  it("rejects a non-image and a missing file", async () => {
    const path = await saved("notes.png", Buffer.from("not a mask at all\n"));
    await rejectsSegkit(readRawMask(path), (err) => {
      assert.equal(err.file, path);
      assert.match(err.message, /not a supported image/);
    });
    const missing = join(dir, "missing.png");
    await rejectsSegkit(readMask(missing), (err) => {
      assert.equal(err.file, missing);
      assert.equal(err.message, "file not found");
    });
  });
});

describe("applyEncoding / readMask value maps", () => {
  it("maps the Oxford-IIIT Pet trimap {1: 0, 2: 1, 3: 2}", () => {
    const m = applyEncoding(raw([1, 2, 3, 2, 1, 3], 3, 2), { values: { 1: 0, 2: 1, 3: 2 } });
    assert.deepEqual([m.width, m.height, [...m.data]], [3, 2, [0, 1, 2, 1, 0, 2]]);
  });

  it("with a size, samples the pixel centres first (as resizeMask) yet still checks every stored value", () => {
    // 4x2 -> 2x1 keeps the pixel centres (1, 1) and (3, 1): stored 3 and 1.
    const trimap = { values: { 1: 0, 2: 1, 3: 2, 4: 2 } };
    const small = applyEncoding(raw([1, 2, 3, 4, 3, 3, 1, 1], 4, 2), trimap, "t.png", { width: 2, height: 1 });
    assert.deepEqual([small.width, small.height, [...small.data]], [2, 1, [2, 0]]);
    const full = applyEncoding(raw([1, 2, 3, 4, 3, 3, 1, 1], 4, 2), trimap);
    assert.deepEqual(small.data, resizeMask(full, 2, 1).data);
    // 9 sits at (0, 0), a pixel the 2x1 output does not keep: still an error naming the file.
    assert.throws(
      () => applyEncoding(raw([9, 2, 3, 4, 3, 3, 1, 1], 4, 2), trimap, "t.png", { width: 2, height: 1 }),
      (err: unknown) => err instanceof SegkitError && err.file === "t.png" && /mask value 9 not in/.test(err.message),
    );
  });

  it("maps ISBI {0: 1, 255: 0}", async () => {
    const m = await readMask(grayPng(4, 1, [0, 255, 255, 0]), { values: { 0: 1, 255: 0 } });
    assert.deepEqual([...m.data], [1, 0, 0, 1]);
  });

  it("thresholds noisy 0/255 values at 128", () => {
    const m = applyEncoding(raw([0, 3, 12, 127, 128, 129, 240, 255]), { threshold: 128 });
    assert.deepEqual([...m.data], [0, 0, 0, 0, 1, 1, 1, 1]);
  });

  it("thresholds 16-bit values", () => {
    const m = applyEncoding(
      { data: Uint16Array.from([0, 999, 1000, 65535]), width: 4, height: 1 },
      { threshold: 1000 },
    );
    assert.deepEqual([...m.data], [0, 0, 1, 1]);
  });

  it("maps 16-bit values through a value map", () => {
    const m = applyEncoding(
      { data: Uint16Array.from([0, 1000, 2000, 1000]), width: 2, height: 2 },
      {
        values: { 0: 0, 1000: 1, 2000: 255 },
      },
    );
    assert.deepEqual([...m.data], [0, 1, 255, 1]);
  });

  it("passes class indices below numClasses and the ignore index 255 through", () => {
    const m = applyEncoding(raw([0, 1, 2, 255, 1]), { numClasses: 3 });
    assert.deepEqual([...m.data], [0, 1, 2, 255, 1]);
  });

  it("rejects a class index >= numClasses", () => {
    assert.throws(
      () => applyEncoding(raw([0, 1, 3, 2, 4]), { numClasses: 3 }, "masks/a.png"),
      (err: unknown) => {
        assert.ok(err instanceof SegkitError);
        assert.equal(err.file, "masks/a.png");
        assert.match(err.message, /mask values 3, 4 not in the value map class indices 0\.\.2/);
        assert.match(err.message, /values found: 0, 1, 2, 3, 4\)/);
        return true;
      },
    );
  });

  it("uses a custom ignore index instead of 255", () => {
    assert.deepEqual([...applyEncoding(raw([0, 1, 200]), { numClasses: 2, ignoreIndex: 200 }).data], [0, 1, 200]);
    assert.throws(() => applyEncoding(raw([0, 255]), { numClasses: 2, ignoreIndex: 200 }), /mask value 255 not/);
  });

  it("accepts any 8-bit value without a map and rejects 16-bit values above 255", () => {
    const all = Array.from({ length: 256 }, (_, i) => i);
    assert.deepEqual([...applyEncoding(raw(all), {}).data], all);
    assert.throws(
      () => applyEncoding({ data: Uint16Array.from([1, 256]), width: 2, height: 1 }, {}),
      /mask value 256 not in the value map class indices/,
    );
  });

  it("reports values outside the map with the values found and the file", async () => {
    const path = await saved("trimap.png", grayPng(3, 2, [1, 2, 5, 3, 9, 5]));
    const enc: MaskEncoding = { values: { 1: 0, 2: 1, 3: 2 } };
    await rejectsSegkit(readMask(path, enc), (err) => {
      assert.equal(err.file, path);
      assert.equal(
        err.message,
        "mask values 5, 9 not in the value map {1: 0, 2: 1, 3: 2} (values found: 1, 2, 3, 5, 9)",
      );
      assert.ok(err.hint && /ignore index/.test(err.hint));
    });
  });

  it("names a single offending value in the singular", () => {
    assert.throws(
      () => applyEncoding(raw([0, 255]), { values: { 0: 0 } }),
      (err: unknown) =>
        err instanceof SegkitError &&
        err.message === "mask value 255 not in the value map {0: 0} (values found: 0, 255)",
    );
  });

  it("maps a value to the ignore index (CamVid {11: 255})", async () => {
    const values: Record<number, number> = { 11: 255 };
    for (let v = 0; v < 11; v++) values[v] = v;
    const m = await readMask(grayPng(4, 1, [0, 11, 10, 11]), { values });
    assert.deepEqual([...m.data], [0, 255, 10, 255]);
  });

  it("reads through readMask with no encoding as plain class indices", async () => {
    const m = await readMask(grayPng(2, 2, [0, 1, 2, 255]));
    assert.deepEqual([m.width, m.height, [...m.data]], [2, 2, [0, 1, 2, 255]]);
  });

  it("describes each kind of encoding", () => {
    assert.equal(describeEncoding({ values: { 0: 1, 255: 0 } }), "{0: 1, 255: 0}");
    assert.equal(describeEncoding({ threshold: 128 }), "threshold 128");
    assert.equal(describeEncoding({ numClasses: 21 }), "class indices 0..20");
    assert.equal(describeEncoding({}), "class indices");
  });
});

describe("readRawMask: the native-zlib PNG path", () => {
  /** An 8-bit gray (or palette) PNG whose row y is stored with filter filters[y], its data in two IDAT chunks. */
  const filtered = (width: number, height: number, values: number[], filters: number[], palette?: number[][]) =>
    filteredPng({
      width,
      height,
      colourType: palette ? 3 : 0,
      data: values,
      filters,
      idatParts: 2,
      ...(palette ? { palette } : {}),
    });

  // Values chosen so that every predictor and the wrap-around at 255 -> 0 are exercised.
  const width = 6;
  const values = [0, 255, 3, 200, 7, 128, 250, 1, 99, 99, 100, 255, 5, 5, 254, 0, 77, 3, 128, 64, 32, 16, 8, 255];
  const height = values.length / width;

  for (const filter of [0, 1, 2, 3, 4]) {
    it(`undoes PNG row filter ${filter}, on the first row (nothing above) and the rows below`, async () => {
      const png = filtered(width, height, values, Array(height).fill(filter));
      const mask = await readRawMask(png);
      assert.deepEqual([mask.width, mask.height], [width, height]);
      assert.deepEqual([...mask.data], values);
    });
  }

  it("undoes a different filter on every row", async () => {
    const png = filtered(width, height, values, [4, 3, 1, 2]);
    assert.deepEqual([...(await readRawMask(png)).data], values);
  });

  it("reads a palette PNG as indices, or as gray levels when the palette is gray", async () => {
    const idx = [0, 1, 2, 2, 1, 0];
    const read = async (palette: number[][]) => [...(await readRawMask(filtered(3, 2, idx, [0, 4], palette))).data];
    const colours = [0, 0, 0, 255, 0, 0, 0, 255, 0];
    const grays = [0, 0, 0, 9, 9, 9, 200, 200, 200];
    const triples = (flat: number[]) => [0, 1, 2].map((i) => flat.slice(3 * i, 3 * i + 3));
    assert.deepEqual(await read(triples(colours)), idx);
    assert.deepEqual(await read(triples(grays)), [0, 9, 200, 200, 9, 0]);
  });

  it("rejects an unknown row filter and cut-short image data, naming the file", async () => {
    const bad = filtered(width, height, values, [0, 0, 0, 0]);
    const rows = Buffer.alloc((width + 1) * height);
    rows[0] = 7;
    const z = deflateSync(rows);
    const ihdrEnd = 8 + 25;
    const broken = Buffer.concat([bad.subarray(0, ihdrEnd), pngChunk("IDAT", z), pngChunk("IEND", new Uint8Array(0))]);
    const path = await saved("filter7.png", broken);
    await rejectsSegkit(readRawMask(path), (err) => {
      assert.equal(err.file, path);
      assert.match(err.message, /row filter 7/);
    });
    const short = Buffer.concat([bad.subarray(0, ihdrEnd), pngChunk("IDAT", deflateSync(rows.subarray(0, 10)))]);
    await rejectsSegkit(readRawMask(await saved("short.png", short)), (err) => assert.match(err.message, /cut short/));
  });
});
