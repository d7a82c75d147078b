import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { encode as encodePngRaw } from "fast-png";
import { SegkitError } from "../core/errors.js";
import { createMask } from "../core/image.js";
import { instancesFromMasks } from "../masks/instances.js";
import { rleDecode } from "../masks/rle.js";
import { encodeInstanceMap, instanceMapMasks, readInstanceMap, writeInstanceMap } from "./instance-map.js";
import { readRawMask } from "./mask.js";

/** A 5 x 3 mask with [x1, x2) x [y1, y2) set. */
function rect(x1: number, y1: number, x2: number, y2: number) {
  const m = createMask(5, 3);
  for (let y = y1; y < y2; y++) for (let x = x1; x < x2; x++) m.data[y * 5 + x] = 1;
  return m;
}
// instance 1 overlaps instance 0 at columns 2-3 of row 1: the later one wins there
const INST = instancesFromMasks([rect(0, 0, 4, 2), rect(2, 1, 5, 3)], { classIds: [1, 2] });
const IDS = [1, 1, 1, 1, 0, 1, 1, 2, 2, 2, 0, 0, 2, 2, 2];

describe("instance maps", () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "segkit-instance-map-"));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it("16-bit: value k + 1 per pixel, read back by any 16-bit reader and by readInstanceMap", async () => {
    const file = join(dir, "a.png");
    await writeInstanceMap(file, INST);
    const raw = await readRawMask(file);
    assert.ok(raw.data instanceof Uint16Array);
    assert.deepEqual([...raw.data], IDS);
    const map = await readInstanceMap(file);
    assert.deepEqual([map.width, map.height, [...map.ids]], [5, 3, IDS]);
    const { ids, masks } = instanceMapMasks(map);
    assert.deepEqual(ids, [1, 2]);
    assert.deepEqual(
      masks.map((m) => [...rleDecode(m).data]),
      [IDS.map((v) => (v === 1 ? 1 : 0)), IDS.map((v) => (v === 2 ? 1 : 0))],
    );
  });

  it("rgb: id = R + 256 G + 256^2 B, as COCO panoptic; ids past 255 survive", async () => {
    const many = instancesFromMasks(
      Array.from({ length: 300 }, (_, k) => (k === 299 ? rect(0, 0, 1, 1) : createMask(5, 3))),
      { classIds: Array.from({ length: 300 }, () => 1) },
    );
    const map = await readInstanceMap(encodeInstanceMap(many, "rgb"));
    assert.equal(map.ids[0], 300); // R 44, G 1
    assert.deepEqual([...(await readInstanceMap(encodeInstanceMap(INST, "rgb"))).ids], IDS);
  });

  it("a palette PNG or junk is an error naming the file", async () => {
    const pal = encodePngRaw({
      width: 1,
      height: 1,
      data: new Uint8Array(1),
      depth: 8,
      channels: 1,
      palette: [[0, 0, 0]],
    });
    await assert.rejects(
      readInstanceMap(pal),
      /8\/16-bit gray or 8-bit RGB; this PNG has 1 channels of 8 bits and a palette/,
    );
    await assert.rejects(readInstanceMap(join(dir, "missing.png")), (e: unknown) => e instanceof Error);
    await assert.rejects(
      readInstanceMap(new TextEncoder().encode("not a png")),
      (e: unknown) => e instanceof SegkitError && /not a PNG instance map/.test(e.message),
    );
  });

  it("a header over the pixel limit is refused before anything is decoded", async () => {
    const png = encodeInstanceMap(INST, "rgb");
    const view = new DataView(png.buffer, png.byteOffset, png.byteLength);
    view.setUint32(16, 16385);
    view.setUint32(20, 16385);
    await assert.rejects(
      readInstanceMap(png),
      (e: unknown) => e instanceof SegkitError && /16385x16385, more than 268435456 pixels/.test(e.message),
    );
  });
});
