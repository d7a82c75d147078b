// SAM 2 image prompts against the official SAM2ImagePredictor on the tiny random-weight fixture
// (scripts/fixtures/make_sam2.py; src/sam/fixtures/sam2/README.md): masks at IoU >= 0.999, scores within 1e-4,
// low-res logits (sampled every 16th row and column) within 1e-3.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { cp, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { SegkitError } from "../core/errors.js";
import { readImage } from "../io/image.js";
import { type Rle, rleArea, rleEncode, rleIou } from "../masks/rle.js";
import { decodeNpy } from "./npy.js";
import { createSamPredictor, type SamPredictor, type SamPredictRequest } from "./predictor.js";

const FIXTURES = join(import.meta.dirname, "fixtures");
const SAM2 = join(FIXTURES, "sam2");

interface ImageCase {
  id: string;
  image: string;
  points?: [number, number][];
  labels?: (0 | 1)[];
  box?: [number, number, number, number];
  multimask: boolean;
  mask_input?: string;
  masks: Rle[];
  scores: number[];
  low_res_samples: number[][][];
}

const REFS = JSON.parse(readFileSync(join(SAM2, "image-refs.json"), "utf8")) as { cases: ImageCase[] };

/** The case as a segkit request (points with their labels, the box, the mask input file's plane). */
function request(c: ImageCase): SamPredictRequest {
  const points = (c.points ?? []).map(([x, y], i) => ({ x, y, label: c.labels?.[i] ?? 1 }));
  const mask = c.mask_input ? decodeNpy(readFileSync(join(SAM2, c.mask_input)), c.mask_input).data : undefined;
  return { points, ...(c.box ? { box: c.box } : {}), ...(mask ? { maskInput: mask } : {}), multimask: c.multimask };
}

/** Runs every case `runs` accepts on `model` and checks it against the official answer. */
function checkCases(model: string, runs: (c: ImageCase) => boolean) {
  let predictor: SamPredictor;
  before(async () => {
    predictor = await createSamPredictor(join(FIXTURES, "models", model), { threads: 1 });
  });
  after(() => predictor.dispose());

  for (const c of REFS.cases.filter(runs)) {
    test(`${c.image} ${c.id}`, async () => {
      await predictor.setImage(await readImage(join(SAM2, "images", c.image)));
      const p = await predictor.predict(request(c));
      assert.equal(p.scores.length, c.scores.length);
      p.scores.forEach((s, k) => {
        assert.ok(Math.abs(s - (c.scores[k] as number)) <= 1e-4, `score ${k}: ${s} vs ${c.scores[k]}`);
      });
      p.masks.forEach((m, k) => {
        const want = c.masks[k] as Rle;
        const got = rleEncode(m);
        // two empty masks agree (their IoU is 0 by COCO's definition)
        const iou = rleArea(got) + rleArea(want) === 0 ? 1 : (rleIou([got], [want])[0]?.[0] ?? 0);
        assert.ok(iou >= 0.999, `mask ${k}: IoU ${iou} (areas ${rleArea(got)}, ${rleArea(want)})`);
      });
      const area = 256 * 256;
      c.low_res_samples.forEach((rows, k) => {
        let worst = 0;
        rows.forEach((row, i) => {
          row.forEach((v, j) => {
            const got = p.lowResLogits.data[k * area + 16 * i * 256 + 16 * j] as number;
            worst = Math.max(worst, Math.abs(got - v));
          });
        });
        assert.ok(worst <= 1e-3, `low-res ${k}: max |diff| ${worst}`);
      });
    });
  }
}

describe("SAM 2 image prompts, samexporter's split (multimask cases: its decoder has no token 0)", () => {
  checkCases("sam2-split", (c) => c.multimask);
});

describe("SAM 2 image prompts, the 7-graph split: every case (single masks by stability, mask input)", () => {
  checkCases("sam2-ailia", () => true);
});

test("the references are not vacuous: most masks are neither empty nor the whole image", () => {
  const masks = REFS.cases.flatMap((c) => c.masks);
  const partial = masks.filter((m) => {
    const a = rleArea(m);
    return a > 0 && a < (m.size[0] as number) * (m.size[1] as number);
  });
  assert.ok(partial.length >= masks.length / 2, `${partial.length} of ${masks.length} partial`);
});

describe("a 7-graph SAM 2 directory that is not whole is one error naming what is wrong", () => {
  const src = join(FIXTURES, "models", "sam2-ailia");
  const copy = async (edit: (dir: string) => Promise<void>) => {
    const dir = await mkdtemp(join(tmpdir(), "segkit-sam2-"));
    await cp(src, dir, { recursive: true });
    await edit(dir);
    return dir;
  };
  const dirs: string[] = [];
  after(() => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));

  test("a missing graph, missing constants, another model's graph beside them, a graph with other inputs", async () => {
    const cases: [(dir: string) => Promise<void>, RegExp][] = [
      [(d) => rm(join(d, "memory_encoder_tiny.onnx")), /the SAM 2 graph memory_encoder_tiny.onnx is missing/],
      [(d) => rm(join(d, "constants_tiny.json")), /constants_tiny.json is missing beside the SAM 2 graphs/],
      [
        (d) => cp(join(FIXTURES, "models", "split", "decoder.onnx"), join(d, "decoder.onnx")),
        /mixes a SAM 2 7-graph split \(tiny\) with other graphs: decoder.onnx/,
      ],
      [
        (d) => cp(join(d, "mlp_tiny.onnx"), join(d, "prompt_encoder_tiny.onnx")),
        /the SAM 2 prompt_encoder graph has inputs `x`/,
      ],
      [
        async (d) => writeFile(join(d, "constants_tiny.json"), JSON.stringify({ no_mem_embed: [1] })),
        /constants_tiny.json|maskmem_tpos_enc/,
      ],
      [
        async (d) => {
          const file = join(d, "constants_tiny.json");
          await writeFile(file, JSON.stringify({ ...JSON.parse(await readFile(file, "utf8")), image_size: 512 }));
        },
        /constants_tiny.json: image_size 512: segkit runs SAM 2 at 1024/,
      ],
    ];
    for (const [edit, message] of cases) {
      const dir = await copy(edit);
      dirs.push(dir);
      await assert.rejects(
        createSamPredictor(dir, { threads: 1 }),
        (err: unknown) => err instanceof SegkitError && message.test(`${err.file}: ${err.message}`),
        String(message),
      );
    }
  });
});
