import assert from "node:assert/strict";
import { cp, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { encode } from "fast-png";
import sharp from "sharp";
import { SegkitError } from "../core/errors.js";
import { filteredPng } from "../test-utils/png.js";
import { type CocoPanopticDataset, readPanopticPng } from "./coco-panoptic.js";
import { detectFormat, openDataset } from "./formats.js";
import { batches } from "./loader.js";

const FIXTURES = join(import.meta.dirname, "..", "eval", "fixtures", "panoptic");
const W = 32;

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), "segkit-panoptic-"));
  for (const name of ["panoptic_val.json", "panoptic_val", "images"]) {
    await cp(join(FIXTURES, name), join(dir, name), { recursive: true });
  }
});
after(() => rm(dir, { recursive: true, force: true }));

const open = async (root: string, options = {}) =>
  (await openDataset(root, { format: "coco-panoptic", images: "images", ...options })) as CocoPanopticDataset;

describe("coco-panoptic dataset", () => {
  it("is detected from panoptic*.json and reads semantic samples: categories by id, void ignored", async () => {
    assert.equal(detectFormat(dir), "coco-panoptic");
    const ds = await open(dir);
    assert.deepEqual(ds.classNames, ["person", "car", "dog", "bicycle", "sky", "grass", "road"]);
    assert.deepEqual(
      ds.classCategories.map((c) => c.id),
      [1, 2, 3, 4, 10, 11, 12],
    );
    assert.equal(ds.palette, undefined); // the fixture's categories have no colours
    assert.equal(ds.length, 4);
    assert.deepEqual(ds.skipped, []);
    assert.equal(ds.id(0), "000001");
    const s = await ds.get(0);
    assert.equal(s.image.width, W);
    const at = (x: number, y: number) => s.mask.data[y * W + x];
    assert.equal(at(0, 0), 4); // sky
    assert.equal(at(0, 23), 5); // grass
    assert.equal(at(2, 10), 0); // person
    assert.equal(at(22, 14), 1); // car
    assert.equal(at(31, 5), 255); // void
    assert.deepEqual((await ds.getMask(0)).data, s.mask.data);
    // sample 2: crowd regions are read as their category
    const crowd = await ds.getMask(1);
    assert.equal(crowd.data[0], 0);
  });

  it("gives each sample's panoptic segments: ids R + 256 G + 256^2 B and segments_info", async () => {
    const ds = await open(dir);
    const pan = await ds.getPanoptic(0);
    assert.equal(pan.ids[0], 0x0a0b0c);
    assert.equal(pan.ids[12 * W + 14], 0x010001);
    assert.equal(pan.ids[31], 0);
    const person = pan.segments.find((s) => s.id === 5);
    assert.deepEqual(person, { id: 5, categoryId: 1, iscrowd: false, area: 96, bbox: [2, 10, 8, 12] });
    assert.equal(pan.ids.filter((id) => id === 5).length, 96);
    assert.equal((await ds.getPanoptic(1)).segments.find((s) => s.id === 21)?.iscrowd, true);
  });

  it("reports bad annotations and missing files in skipped, and a batch skips an undecodable PNG", async () => {
    const bad = await mkdtemp(join(tmpdir(), "segkit-panoptic-bad-"));
    try {
      for (const name of ["panoptic_val", "images"]) await cp(join(dir, name), join(bad, name), { recursive: true });
      const json = JSON.parse(await readFile(join(dir, "panoptic_val.json"), "utf8"));
      json.annotations[1].segments_info[0].category_id = 99;
      json.annotations[2].file_name = "../x.png";
      json.annotations.push({ image_id: 1234, file_name: "x.png", segments_info: [] });
      json.annotations.push({ image_id: 5, segments_info: [] });
      json.categories.forEach((c: { color?: number[] }, k: number) => {
        c.color = [k, 2 * k, 3 * k];
      });
      await writeFile(join(bad, "panoptic_val.json"), JSON.stringify(json));
      await writeFile(join(bad, "panoptic_val", "000004.png"), "not a png");
      const ds = await open(bad);
      assert.equal(ds.length, 2);
      assert.deepEqual(ds.palette?.[6], [6, 12, 18]); // COCO's category colours, by id
      const reasons = ds.skipped.map((s) => s.reason);
      assert.deepEqual(reasons, [
        "annotation #5 (image_id 5): file_name: Invalid input: expected string, received undefined",
        "image 2: segment 20: category 99 does not exist",
        `image 3: file_name "../x.png" is outside the PNG folder ${join(bad, "panoptic_val")}`,
        "image 1234: no entry in images",
      ]);
      assert.ok(ds.skipped.every((s) => s.path === join(bad, "panoptic_val.json")));
      await assert.rejects(ds.get(1), (e: unknown) => e instanceof SegkitError && e.file?.endsWith("000004.png"));
      const skipped: string[] = [];
      let seen = 0;
      for await (const b of batches(ds, { batchSize: 2, size: 16, onSkip: (s) => skipped.push(s.path) }))
        seen += b.ids.length;
      assert.equal(seen, 1);
      assert.deepEqual(skipped, [join(bad, "panoptic_val", "000004.png")]);
      await assert.rejects(open(bad, { strict: true }), /annotation #5/);
    } finally {
      await rm(bad, { recursive: true, force: true });
    }
  });

  it("names the file when the JSON is not COCO panoptic, or the folder holds several", async () => {
    const other = await mkdtemp(join(tmpdir(), "segkit-panoptic-json-"));
    try {
      await writeFile(join(other, "panoptic_a.json"), JSON.stringify({ images: [] }));
      await assert.rejects(open(other), (e: unknown) => {
        assert.ok(e instanceof SegkitError);
        assert.equal(e.file, join(other, "panoptic_a.json"));
        assert.match(e.message, /not a COCO panoptic file: annotations/);
        return true;
      });
      await writeFile(join(other, "panoptic_b.json"), "{}");
      await assert.rejects(open(other), /several panoptic files/);
    } finally {
      await rm(other, { recursive: true, force: true });
    }
  });

  it("decodes RGB and RGBA PNGs with every row filter (and interlaced ones) to their values", async () => {
    const width = 37;
    const height = 23;
    const rgba = new Uint8Array(width * height * 4);
    for (let i = 0; i < rgba.length; i++) rgba[i] = i % 7 === 0 ? (i * 7919) % 251 : (i >> 3) & 255;
    const file = join(dir, "f.png");
    for (const channels of [3, 4] as const) {
      const raw = channels === 4 ? rgba : rgba.filter((_, i) => i % 4 !== 3);
      const want = Array.from({ length: width * height }, (_, p) => {
        const at = p * channels;
        return (raw[at] as number) + 256 * (raw[at + 1] as number) + 65536 * (raw[at + 2] as number);
      });
      // row y filtered with type y % 5 (None, Sub, Up, Average, Paeth); and sharp's interlaced PNG (read by sharp)
      for (const png of [
        filteredPng({ width, height, colourType: channels === 3 ? 2 : 6, data: raw }),
        await sharp(raw, { raw: { width, height, channels } }).png({ progressive: true }).toBuffer(),
      ]) {
        await writeFile(file, png);
        assert.deepEqual([...(await readPanopticPng(file)).ids], want, `${channels} channels`);
      }
    }
  });

  it("reads ids from RGB, RGBA and palette PNGs and rejects gray ones", async () => {
    const file = join(dir, "t.png");
    const rgba = Uint8Array.from([1, 2, 3, 255, 0, 0, 1, 0]);
    await writeFile(file, encode({ width: 2, height: 1, data: rgba, channels: 4 }));
    assert.deepEqual([...(await readPanopticPng(file)).ids], [1 + 2 * 256 + 3 * 65536, 65536]);
    await writeFile(
      file,
      encode({
        width: 2,
        height: 1,
        data: Uint8Array.from([1, 0]),
        channels: 1,
        palette: [
          [0, 0, 0],
          [4, 5, 6],
        ],
      }),
    );
    assert.deepEqual([...(await readPanopticPng(file)).ids], [4 + 5 * 256 + 6 * 65536, 0]);
    await writeFile(file, encode({ width: 2, height: 1, data: Uint8Array.from([1, 0]), channels: 1 }));
    await assert.rejects(readPanopticPng(file), /must be 8-bit RGB .* 8-bit gray/);
  });
});
