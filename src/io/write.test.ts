import assert from "node:assert/strict";
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { decode as decodePng, encode as encodePng } from "fast-png";
import sharp from "sharp";
import { SegkitError } from "../core/errors.js";
import { createImage, createMask, type Mask, type RgbImage } from "../core/image.js";
import { type Palette, VOC_PALETTE, vocPalette } from "../core/palette.js";
import { writeFileAtomic } from "./fs.js";
import { readImage } from "./image.js";
import { readMask, readRawMask } from "./mask.js";
import { encodeGrayPng, encodePalettePng } from "./png-rows.js";
import {
  CLASS_NAMES_KEY,
  colorizeMask,
  comparisonGrid,
  encodePng as encodeImagePng,
  encodeMaskPng,
  makeGrid,
  overlayMask,
  readMaskClassNames,
  writeImagePng,
  writeMaskPng,
} from "./write.js";

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), "segkit-write-test-"));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

const allValues = (): Mask =>
  createMask(
    16,
    16,
    Uint8Array.from({ length: 256 }, (_, i) => (i * 101 + 7) % 256),
  );

function flat(width: number, height: number, rgb: readonly [number, number, number]): RgbImage {
  const data = new Uint8Array(width * height * 3);
  for (let i = 0; i < width * height; i++) data.set(rgb, i * 3);
  return createImage(width, height, data);
}

describe("VOC palette", () => {
  it("has the PASCAL VOC colours", () => {
    assert.equal(VOC_PALETTE.length, 256);
    assert.deepEqual(VOC_PALETTE[0], [0, 0, 0]);
    assert.deepEqual(VOC_PALETTE[1], [128, 0, 0]);
    assert.deepEqual(VOC_PALETTE[2], [0, 128, 0]);
    assert.deepEqual(VOC_PALETTE[3], [128, 128, 0]);
    assert.deepEqual(VOC_PALETTE[4], [0, 0, 128]);
    assert.deepEqual(VOC_PALETTE[7], [128, 128, 128]);
    assert.deepEqual(VOC_PALETTE[8], [64, 0, 0]);
    assert.deepEqual(VOC_PALETTE[15], [192, 128, 128]);
    assert.deepEqual(VOC_PALETTE[20], [0, 64, 128]);
    assert.deepEqual(VOC_PALETTE[255], [224, 224, 192]);
  });

  it("gives distinct colours to all 256 indices", () => {
    assert.equal(new Set(VOC_PALETTE.map((c) => c.join(","))).size, 256);
    assert.deepEqual(vocPalette(), VOC_PALETTE);
  });
});

describe("encodeMaskPng", () => {
  it("round-trips all 256 indices through readRawMask and readMask", async () => {
    const m = allValues();
    const png = encodeMaskPng(m);
    const raw = await readRawMask(png);
    assert.deepEqual([raw.width, raw.height], [16, 16]);
    assert.deepEqual([...raw.data], [...m.data]);
    assert.deepEqual([...(await readMask(png)).data], [...m.data]);
  });

  it("round-trips a mask that only uses classes with gray VOC colours", async () => {
    const m = createMask(4, 1, Uint8Array.from([0, 7, 56, 63]));
    assert.deepEqual([...(await readRawMask(encodeMaskPng(m))).data], [0, 7, 56, 63]);
  });

  it("writes an 8-bit palette PNG with the VOC palette and the indices as data", async () => {
    const m = allValues();
    const bytes = encodeMaskPng(m);
    const png = decodePng(bytes, { checkCrc: true });
    assert.equal(png.depth, 8);
    assert.equal(png.channels, 1);
    assert.deepEqual([...png.data], [...m.data]);
    const palette = png.palette ?? [];
    assert.equal(palette.length, 256);
    assert.deepEqual(palette[0], [0, 0, 0]);
    assert.deepEqual(palette[1], [128, 0, 0]);
    assert.deepEqual(palette[15], [192, 128, 128]);
    assert.deepEqual(palette[255], [224, 224, 192]);
    assert.deepEqual(png.text, {}, "no class names asked for, no text chunk");
    // libvips (libspng, which checks every chunk's CRC) shows the palette colours
    const rgb = await sharp(bytes).removeAlpha().raw().toBuffer();
    assert.deepEqual(
      [...rgb],
      [...m.data].flatMap((k) => [...(VOC_PALETTE[k] ?? [])]),
    );
  });

  it("uses a given palette, padding it with black", () => {
    const palette: Palette = [
      [1, 2, 3],
      [250, 251, 252],
    ];
    const png = decodePng(encodeMaskPng(createMask(2, 1, Uint8Array.from([0, 1])), { palette }));
    assert.deepEqual(png.palette?.slice(0, 3), [
      [1, 2, 3],
      [250, 251, 252],
      [0, 0, 0],
    ]);
    assert.equal(png.palette?.length, 256);
  });

  it("stores class names in a segkit:classes tEXt chunk, non-Latin-1 names included", async () => {
    const names = ["background", "café", "道路", "🚗 car", 'quote " and \\ backslash'];
    const png = encodeMaskPng(createMask(2, 2, Uint8Array.from([0, 1, 2, 3])), { classNames: names });
    const text = decodePng(png).text;
    assert.equal(CLASS_NAMES_KEY, "segkit:classes");
    assert.ok(text[CLASS_NAMES_KEY] !== undefined);
    assert.deepEqual(JSON.parse(text[CLASS_NAMES_KEY] as string), names);
    assert.deepEqual(await readMaskClassNames(png), names);
    const path = join(dir, "named.png");
    await writeFile(path, png);
    assert.deepEqual(await readMaskClassNames(path), names);
  });

  it("reads no class names from a PNG without them", async () => {
    assert.equal(await readMaskClassNames(encodeMaskPng(createMask(1, 1))), undefined);
  });

  it("rejects a segkit:classes chunk that is not a JSON array of strings", async () => {
    const png = encodePng({
      width: 1,
      height: 1,
      data: new Uint8Array(1),
      channels: 1,
      text: { [CLASS_NAMES_KEY]: '{"not": "an array"}' },
    });
    await assert.rejects(readMaskClassNames(png), SegkitError);
  });

  it("writes a mask file atomically that readMask reads back", async () => {
    const path = join(dir, "out", "nested", "mask.png");
    const m = createMask(3, 2, Uint8Array.from([0, 1, 2, 255, 2, 1]));
    await writeMaskPng(path, m, { classNames: ["a", "b", "c"] });
    assert.deepEqual([...(await readMask(path, { numClasses: 3 })).data], [0, 1, 2, 255, 2, 1]);
    assert.deepEqual(await readMaskClassNames(path), ["a", "b", "c"]);
    assert.deepEqual(await readdir(join(dir, "out", "nested")), ["mask.png"]);
  });
});

describe("encodePalettePng", () => {
  it("refuses what would make a broken PNG: sizes, palettes, indices past the palette, text", () => {
    const data = Uint8Array.of(0, 1, 2, 1);
    const rgb = [
      [0, 0, 0],
      [255, 0, 0],
      [0, 255, 0],
    ] as [number, number, number][];
    assert.equal(decodePng(encodePalettePng(2, 2, data, rgb, { a: "b" })).palette?.length, 3);
    const cases: [() => unknown, RegExp][] = [
      [() => encodePalettePng(0, 4, new Uint8Array(0), rgb), /size 0 x 4/],
      [() => encodePalettePng(2.5, 2, data, rgb), /size 2.5 x 2/],
      [() => encodePalettePng(2, 2, data.subarray(1), rgb), /3 pixels, expected 2 x 2/],
      [() => encodePalettePng(2, 2, data, []), /1 to 256 colours, got 0/],
      [() => encodePalettePng(2, 2, data, [...rgb, [256, 0, 0]]), /colour 3 \(256,0,0\)/],
      [() => encodePalettePng(2, 2, data, rgb.slice(0, 2)), /pixel 2 is 2, past the 2-colour palette/],
      [() => encodePalettePng(2, 2, data, rgb, { "": "x" }), /text ""/],
      [() => encodePalettePng(2, 2, data, rgb, { k: "日本" }), /text "k"/],
      [() => encodePalettePng(2, 2, data, rgb, { ["k".repeat(80)]: "x" }), /Latin-1 keyword \(1-79/],
    ];
    for (const [encode, message] of cases) assert.throws(encode, message);
  });

  it("encodeGrayPng: an 8-bit grayscale PNG that fast-png and sharp read back", async () => {
    const data = Uint8Array.from({ length: 7 * 5 }, (_, i) => (i * 37) % 256);
    const png = encodeGrayPng(7, 5, data);
    const back = decodePng(png);
    assert.deepEqual([back.width, back.height, back.channels, back.depth, back.palette], [7, 5, 1, 8, undefined]);
    assert.deepEqual(back.data, data);
    assert.equal((await sharp(png).metadata()).channels, 1);
    assert.deepEqual(new Uint8Array(await sharp(png).extractChannel(0).raw().toBuffer()), data);
    assert.throws(() => encodeGrayPng(7, 4, data), /encodeGrayPng: 35 pixels, expected 7 x 4/);
  });
});

describe("encodePng / writeImagePng", () => {
  it("round-trips an RGB image exactly", async () => {
    const img = createImage(
      3,
      2,
      Uint8Array.from({ length: 18 }, (_, i) => i * 14),
    );
    assert.deepEqual([...(await readImage(await encodeImagePng(img))).data], [...img.data]);
    const path = join(dir, "img.png");
    await writeImagePng(path, img);
    const back = await readImage(path);
    assert.deepEqual([back.width, back.height, [...back.data]], [3, 2, [...img.data]]);
  });
});

describe("colorizeMask", () => {
  it("paints each pixel in its VOC colour", () => {
    const out = colorizeMask(createMask(2, 2, Uint8Array.from([0, 1, 255, 15])));
    assert.deepEqual([out.width, out.height], [2, 2]);
    assert.deepEqual([...out.data], [0, 0, 0, 128, 0, 0, 224, 224, 192, 192, 128, 128]);
  });

  it("uses a given palette and black past its end", () => {
    const palette: Palette = [
      [9, 8, 7],
      [6, 5, 4],
    ];
    const out = colorizeMask(createMask(3, 1, Uint8Array.from([1, 0, 2])), palette);
    assert.deepEqual([...out.data], [6, 5, 4, 9, 8, 7, 0, 0, 0]);
  });
});

describe("overlayMask", () => {
  // 2x2 image; mask classes 1, 0, 255, 2
  const img = createImage(2, 2, Uint8Array.from([100, 50, 200, 1, 2, 3, 40, 60, 80, 10, 20, 31]));
  const m = createMask(2, 2, Uint8Array.from([1, 0, 255, 2]));

  it("blends class colours at alpha 0.5 and leaves the ignore index alone", () => {
    const out = overlayMask(img, m);
    assert.deepEqual(
      [...out.data],
      [
        // class 1 (128, 0, 0): (100 + 128) / 2, 50 / 2, 200 / 2
        114, 25, 100,
        // class 0 (0, 0, 0): halved
        1, 1, 2,
        // 255: untouched
        40, 60, 80,
        // class 2 (0, 128, 0): 10 / 2, (20 + 128) / 2, 31 / 2 = 15.5 -> 16
        5, 74, 16,
      ],
    );
    assert.deepEqual([...img.data], [100, 50, 200, 1, 2, 3, 40, 60, 80, 10, 20, 31], "input not modified");
  });

  it("leaves skipClasses untinted", () => {
    const out = overlayMask(img, m, { skipClasses: [0, 2] });
    assert.deepEqual([...out.data], [114, 25, 100, 1, 2, 3, 40, 60, 80, 10, 20, 31]);
  });

  it("honours a custom ignore index (and then tints 255 like any class)", () => {
    const out = overlayMask(img, m, { ignoreIndex: 2, alpha: 1 });
    assert.deepEqual([...out.data], [128, 0, 0, 0, 0, 0, 224, 224, 192, 10, 20, 31]);
  });

  it("uses alpha and palette options", () => {
    const palette: Palette = [
      [0, 0, 0],
      [200, 200, 200],
      [0, 0, 0],
    ];
    const out = overlayMask(img, m, { alpha: 0.25, palette, skipClasses: [0, 2] });
    // 0.75 * (100, 50, 200) + 0.25 * 200 = (125, 87.5 -> 88, 200)
    assert.deepEqual([...out.data.subarray(0, 3)], [125, 88, 200]);
    assert.deepEqual([...overlayMask(img, m, { alpha: 0 }).data], [...img.data]);
  });

  it("throws when image and mask sizes differ", () => {
    assert.throws(() => overlayMask(img, createMask(2, 1)), RangeError);
    assert.throws(() => overlayMask(img, createMask(1, 4)), /image 2x2 and mask 1x4 differ/);
  });
});

describe("makeGrid", () => {
  it("places cells top-left in columns as wide as their widest cell, with gaps", () => {
    const a = flat(2, 1, [1, 1, 1]);
    const b = flat(1, 2, [2, 2, 2]);
    const c = flat(3, 1, [3, 3, 3]);
    const grid = makeGrid([[a, b], [c]], { gap: 1, background: [9, 9, 9] });
    // columns 3 and 1 wide, rows 2 and 1 high: 1 + 3 + 1 + 1 + 1 = 7 by 1 + 2 + 1 + 1 + 1 = 6
    assert.deepEqual([grid.width, grid.height], [7, 6]);
    const expected = ["9999999", "9119929", "9999929", "9999999", "9333999", "9999999"];
    const got = Array.from({ length: 6 }, (_, y) =>
      Array.from({ length: 7 }, (_, x) => {
        const i = (y * 7 + x) * 3;
        assert.equal(grid.data[i], grid.data[i + 1]);
        assert.equal(grid.data[i], grid.data[i + 2]);
        return String(grid.data[i]);
      }).join(""),
    );
    assert.deepEqual(got, expected);
  });

  it("keeps each cell's pixels in order", () => {
    const cell = createImage(
      2,
      2,
      Uint8Array.from({ length: 12 }, (_, i) => i + 1),
    );
    const grid = makeGrid([[cell]], { gap: 2, background: [0, 0, 0] });
    assert.deepEqual([grid.width, grid.height], [6, 6]);
    const row = (y: number) => [...grid.data.subarray((y * 6 + 2) * 3, (y * 6 + 4) * 3)];
    assert.deepEqual(row(2), [1, 2, 3, 4, 5, 6]);
    assert.deepEqual(row(3), [7, 8, 9, 10, 11, 12]);
    assert.equal(
      grid.data.reduce((s, v) => s + v, 0),
      78,
      "nothing else drawn",
    );
  });

  it("defaults to a 4-pixel white gap", () => {
    const grid = makeGrid([[flat(5, 3, [0, 0, 0]), flat(2, 2, [0, 0, 0])]]);
    assert.deepEqual([grid.width, grid.height], [4 + 5 + 4 + 2 + 4, 4 + 3 + 4]);
    assert.deepEqual([...grid.data.subarray(0, 3)], [255, 255, 255]);
    assert.deepEqual([...grid.data.subarray((4 * grid.width + 4) * 3, (4 * grid.width + 4) * 3 + 3)], [0, 0, 0]);
  });

  it("gives a gap-sized image for no rows", () => {
    const grid = makeGrid([], { gap: 2 });
    assert.deepEqual([grid.width, grid.height, grid.data.length], [2, 2, 12]);
  });
});

describe("writeFileAtomic", () => {
  it("creates the directory, writes the content and leaves no temporary file", async () => {
    const sub = join(dir, "atomic", "deep");
    const path = join(sub, "file.bin");
    await writeFileAtomic(path, Uint8Array.from([1, 2, 3]));
    assert.deepEqual([...(await readFile(path))], [1, 2, 3]);
    assert.deepEqual(await readdir(sub), ["file.bin"]);
  });

  it("replaces existing content", async () => {
    const sub = join(dir, "atomic-replace");
    const path = join(sub, "file.txt");
    await mkdir(sub);
    await writeFile(path, "old content that is longer than the new one");
    await writeFileAtomic(path, "new");
    assert.equal(await readFile(path, "utf8"), "new");
    await writeFileAtomic(path, "newer");
    assert.equal(await readFile(path, "utf8"), "newer");
    assert.deepEqual(await readdir(sub), ["file.txt"]);
  });

  it("removes its temporary file when the rename fails", async () => {
    const sub = join(dir, "atomic-fail");
    const target = join(sub, "taken");
    await mkdir(target, { recursive: true }); // a directory where the file should go: rename fails
    await assert.rejects(writeFileAtomic(target, "data"));
    assert.deepEqual(await readdir(sub), ["taken"]);
  });
});

describe("comparisonGrid", () => {
  it("lays out image | truth | prediction rows with the masks overlaid", () => {
    const image = createImage(2, 1, Uint8Array.from([100, 100, 100, 100, 100, 100]));
    const truth = createMask(2, 1, Uint8Array.from([1, 0]));
    const prediction = createMask(2, 1, Uint8Array.from([0, 1]));
    const grid = comparisonGrid(
      [
        { image, truth, prediction },
        { image, truth },
      ],
      { gap: 1, alpha: 1 },
    );
    // 3 columns of width 2 and 2 rows of height 1, gaps of 1 around and between.
    assert.deepEqual([grid.width, grid.height], [1 + 3 * 3, 1 + 2 * 2]);
    const px = (x: number, y: number) => [
      ...grid.data.subarray((y * grid.width + x) * 3, (y * grid.width + x) * 3 + 3),
    ];
    assert.deepEqual(px(1, 1), [100, 100, 100]); // image
    assert.deepEqual(px(4, 1), [128, 0, 0]); // truth class 1 in VOC red at alpha 1
    assert.deepEqual(px(5, 1), [0, 0, 0]); // truth class 0: VOC black
    assert.deepEqual(px(7, 1), [0, 0, 0]); // prediction class 0
    assert.deepEqual(px(8, 1), [128, 0, 0]); // prediction class 1
    assert.deepEqual(px(7, 3), [255, 255, 255]); // second row has no prediction: gap colour
  });
});
