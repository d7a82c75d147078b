import assert from "node:assert/strict";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { nativeKernelsStatus } from "../backend/addon.js";
import { createImage, type Mask, type RgbImage } from "../core/image.js";
import { encodePng } from "../io/write.js";
import { loadSamModel, type SamModel } from "./model.js";
import { createSamPredictor, type SamPredictor } from "./predictor.js";
import { decoderInputs, preprocessImage } from "./transforms.js";

// The fixture models (scripts/make_sam_fixtures.py): the low-res logit of channel k is
// 8 * sum_p w(label_p) * exp(-d^2 / (2 sigma_k^2)) - 2 + small, d in the 1024 frame, sigma_k = 48, 64, 96, 128
// (transformers: 64, 96, 128), w = +1 for foreground points and box corners, -1 for background, 0 for padding;
// + mask_input (split), + 4 inside a box (transformers). So one foreground point gives a disc of radius
// sigma * sqrt(2 ln 4) = 1.665 sigma (80 px of the 1024 frame for sigma 48) and -2 far from it.
const FIXTURES = join(import.meta.dirname, "fixtures", "models");

let temp: string;
before(async () => {
  temp = await mkdtemp(join(tmpdir(), "segkit-sam-predictor-"));
});
after(async () => {
  await rm(temp, { recursive: true, force: true });
});

function pattern(width: number, height: number, seed = 0): RgbImage {
  const data = new Uint8Array(width * height * 3);
  for (let i = 0; i < data.length; i++) data[i] = (i * 37 + seed * 101 + Math.floor(i / 4099) * 11) % 256;
  return createImage(width, height, data);
}

const at = (m: Mask | undefined, x: number, y: number) => m?.data[y * m.width + x];

/** The model with its encoder and decoder calls counted. */
function counted(model: SamModel) {
  const calls = { encode: 0, decode: 0, prepare: 0 };
  const m: SamModel = {
    ...model,
    encode: (x) => {
      calls.encode++;
      return model.encode(x);
    },
    decode: (e, p, o) => {
      calls.decode++;
      return model.decode(e, p, o);
    },
  };
  const prepare = model.prepare;
  if (prepare) {
    m.prepare = (e, p) => {
      calls.prepare++;
      return prepare(e, p);
    };
  }
  return { m, calls };
}

async function withPredictor<T>(
  dir: string,
  fn: (p: SamPredictor, calls: { encode: number; decode: number; prepare: number }) => Promise<T>,
  options = {},
) {
  const model = await loadSamModel(join(FIXTURES, dir), { threads: 1 });
  const { m, calls } = counted(model);
  const p = await createSamPredictor(m, options);
  try {
    return await fn(p, calls);
  } finally {
    await p.dispose();
    await model.dispose();
  }
}

describe("SamPredictor: split layout", () => {
  test("prompts in original pixels, both orientations; masks equal the decoder graph's own full-size masks", async () => {
    await withPredictor("split", async (p, calls) => {
      for (const [w, h, fg] of [
        [640, 480, { x: 500, y: 375 }], // landscape: x 1.6 to 1024 x 768
        [480, 640, { x: 100, y: 600 }], // portrait: x 1.6 to 768 x 1024
      ] as const) {
        const img = pattern(w, h);
        const info = await p.setImage(img);
        assert.deepEqual(info.originalSize, { height: h, width: w });
        assert.deepEqual(info.inputSize, w > h ? { height: 768, width: 1024 } : { height: 1024, width: 768 });
        const single = await p.predict({ points: [{ ...fg, label: 1 }], multimask: false, returnLogits: true });
        assert.deepEqual(single.channels, [0]);
        const mask = single.masks[0];
        assert.equal(mask?.width, w);
        assert.equal(mask?.height, h);
        // the disc has radius 80 / 1.6 = 50 original pixels around the point
        assert.equal(at(mask, fg.x, fg.y), 1);
        assert.equal(at(mask, fg.x - 30, fg.y), 1);
        assert.equal(at(mask, fg.x, fg.y - 30), 1);
        assert.equal(at(mask, fg.x - 70, fg.y), 0);
        assert.equal(at(mask, fg.x, fg.y - 70), 0);
        assert.equal(at(mask, 0, 0), 0);
        // untransformed coordinates would put the disc at (fg / 1.6): empty there
        assert.equal(at(mask, Math.round(fg.x / 1.6), Math.round(fg.y / 1.6)), 0);

        // the reference: the official decoder's in-graph upscaling (`masks`) of the same prompt
        const emb = await p.model.encode(preprocessImage(img));
        const packed = decoderInputs({ points: [{ ...fg, label: 1 }] }, info.originalSize);
        const ref = await p.model.decode(
          emb,
          { points: packed.point_coords.data, labels: packed.point_labels.data, origSize: [h, w] },
          { fullSize: true },
        );
        const logits = single.logits?.[0];
        assert.ok(logits && ref.masks, "the predictor's logits and the graph's masks");
        const refLogits = ref.masks.data.subarray(0, w * h);
        let maxDiff = 0;
        let mismatched = 0;
        logits.forEach((v, i) => {
          const r = refLogits[i] ?? Number.NaN;
          maxDiff = Math.max(maxDiff, Math.abs(v - r));
          if (v > 0 !== r > 0 || mask?.data[i] !== (r > 0 ? 1 : 0)) mismatched++;
        });
        assert.ok(maxDiff < 1e-4, `max |logit - graph logit| ${maxDiff}`);
        assert.equal(mismatched, 0);
        assert.equal(single.scores[0], ref.scores[0]);
        assert.deepEqual(single.lowResLogits.dims, [1, 256, 256]);
        assert.deepEqual(single.lowResLogits.data, ref.lowRes.data.subarray(0, 65536));
      }
      assert.equal(calls.encode, 2 + 2); // one per setImage, one per reference encode above
    });
  });

  test("multimask returns channels 1-3 in decoder order with their IoU; background points and boxes act", async () => {
    await withPredictor("split", async (p, calls) => {
      await p.setImage(pattern(640, 480));
      const fg = { x: 500, y: 375, label: 1 as const };
      const multi = await p.predict({ points: [fg] });
      assert.deepEqual(multi.channels, [1, 2, 3]);
      assert.equal(multi.perPrompt, 3);
      assert.equal(multi.masks.length, 3);
      assert.deepEqual(multi.lowResLogits.dims, [3, 256, 256]);
      assert.equal(multi.logits, undefined);
      // the decoder's own outputs for the same prompt
      const packed = decoderInputs({ points: [fg] }, { height: 480, width: 640 });
      const emb = await p.model.encode(preprocessImage(pattern(640, 480)));
      const raw = await p.model.decode(emb, {
        points: packed.point_coords.data,
        labels: packed.point_labels.data,
        origSize: [480, 640],
      });
      assert.deepEqual(Array.from(multi.scores), Array.from(raw.scores.subarray(1)));
      assert.deepEqual(multi.lowResLogits.data, raw.lowRes.data.subarray(65536));
      // decode: the same scores and low-res logits, nothing upscaled
      const low = await p.decode({ points: [fg] });
      assert.deepEqual(low.scores, multi.scores);
      assert.deepEqual(low.lowResLogits, multi.lowResLogits);
      assert.deepEqual([low.channels, low.inputSize], [[1, 2, 3], { height: 768, width: 1024 }]);
      assert.equal("masks" in low, false);
      // wider sigmas give wider discs: 96 / 1.6 * 1.665 = 100 px for channel 2 (sigma 96), 67 px for channel 1
      assert.deepEqual(
        multi.masks.map((m) => at(m, 500 - 80, 375)),
        [0, 1, 1],
      );
      // stability: #(logit > 1) / #(logit > -1); for one disc 8 e^(-d^2 / 2 sigma^2) - 2 that is the ratio of
      // squared radii, ln(8/3) / ln(8) = 0.4717 (channel 1's disc lies inside the image)
      assert.ok(Math.abs((multi.stabilityScores[0] ?? 0) - Math.log(8 / 3) / Math.log(8)) < 0.02, "stability");
      for (const s of multi.stabilityScores) assert.ok(s > 0 && s <= 1, `stability ${s}`);

      // a background point 30 px right cancels the disc there (8 e^-0.5 - 8 - 2 < 0), keeps the fg side
      const bg = await p.predict({ points: [fg, { x: 530, y: 375, label: 0 }], multimask: false });
      assert.equal(at(bg.masks[0], 530, 375), 0);
      assert.equal(at(bg.masks[0], 480, 375), 1);
      const onlyBg = await p.predict({ points: [{ x: 500, y: 375, label: 0 }], multimask: false });
      assert.equal(
        onlyBg.masks[0]?.data.some((v) => v === 1),
        false,
      );

      // a box: corners are foreground prompts in this fixture (labels 2, 3), no padding point
      const boxed = await p.predict({ box: [100, 100, 400, 300], multimask: false });
      assert.equal(at(boxed.masks[0], 100, 100), 1);
      assert.equal(at(boxed.masks[0], 400, 300), 1);
      assert.equal(at(boxed.masks[0], 250, 200), 0);
      // several boxes: one decoder call each, box-major
      const before = calls.decode;
      const two = await p.predict({
        boxes: [
          [100, 100, 400, 300],
          [20, 20, 200, 50],
        ],
        multimask: true,
      });
      assert.equal(calls.decode - before, 2);
      assert.equal(two.prompts, 2);
      assert.equal(two.masks.length, 6);
      assert.deepEqual(two.lowResLogits.dims, [2, 3, 256, 256]);
      assert.equal(at(two.masks[0], 400, 300), 1);
      assert.equal(at(two.masks[3], 400, 300), 0);
      assert.equal(at(two.masks[3], 200, 50), 1);
      assert.equal(calls.encode, 2); // the predictor's setImage and the reference encode: predicts never encode
    });
  });

  const built = nativeKernelsStatus();
  test("the native upscaling and the JavaScript one: the same masks and scores", {
    skip: built.loaded ? false : `native kernels not built: ${built.reason}`,
  }, async () => {
    await withPredictor("split", async (native) => {
      await withPredictor(
        "split",
        async (js) => {
          for (const [w, h, fg] of [
            [640, 480, { x: 500, y: 375 }],
            [333, 97, { x: 40, y: 50 }],
          ] as const) {
            await native.setImage(pattern(w, h));
            await js.setImage(pattern(w, h));
            for (const multimask of [true, false]) {
              const want = await js.predict({ points: [{ ...fg, label: 1 }], multimask });
              const got = await native.predict({ points: [{ ...fg, label: 1 }], multimask });
              assert.deepEqual(got.masks, want.masks);
              assert.deepEqual(got.stabilityScores, want.stabilityScores);
              assert.ok(
                got.masks.some((m) => m.data.includes(1)),
                "some mask is not empty",
              );
            }
          }
        },
        { nativeUpscale: false, upscaleWorker: false },
      );
    });
  });

  test("maskInput is a previous low-res plane, added by this decoder", async () => {
    await withPredictor("split", async (p) => {
      await p.setImage(pattern(640, 480));
      const points = [{ x: 500, y: 375, label: 1 as const }];
      const first = await p.predict({ points, multimask: false });
      const previous = first.lowResLogits.data;
      const refined = await p.predict({ points, multimask: false, maskInput: previous });
      // logits double (x2 the plane): the difference is the plane itself
      let maxErr = 0;
      for (let i = 0; i < 65536; i++) {
        maxErr = Math.max(maxErr, Math.abs((refined.lowResLogits.data[i] ?? 0) - 2 * (previous[i] ?? 0)));
      }
      assert.ok(maxErr < 1e-4, `max error ${maxErr}`);
      const erased = await p.predict({ points, multimask: false, maskInput: new Float32Array(65536).fill(-20) });
      assert.equal(
        erased.masks[0]?.data.some((v) => v === 1),
        false,
      );
      await assert.rejects(p.predict({ points, maskInput: new Float32Array(10) }), /256x256/);
    });
  });

  test("caches: memory by image hash (LRU), disk round trip keyed by model, corrupt files re-encoded", async () => {
    const cacheDir = join(temp, "cache");
    const a = pattern(640, 480, 1);
    const b = pattern(480, 640, 2);
    const png = join(temp, "a.png");
    await writeFile(png, await encodePng(a));
    let first: Float32Array = new Float32Array();
    await withPredictor(
      "split",
      async (p, calls) => {
        assert.equal((await p.setImage(a)).source, "encoder");
        assert.equal((await p.setImage(b)).source, "encoder");
        const again = await p.setImage(png); // the same pixels from a file: same hash
        assert.equal(again.source, "memory");
        assert.equal(calls.encode, 2);
        // the decoder's once-per-image part prepared per image set, not again when it is the current one
        assert.deepEqual([calls.prepare, calls.decode], [3, 0]);
        assert.equal((await p.setImage(a)).source, "memory");
        assert.equal(calls.prepare, 3);
        first = (await p.predict({ points: [{ x: 500, y: 375, label: 1 }] })).lowResLogits.data;
        assert.equal(calls.encode, 2);
        assert.deepEqual([calls.prepare, calls.decode], [3, 1]);
        assert.equal((await readdir(cacheDir)).filter((f) => f.endsWith(".emb")).length, 2);
      },
      { cacheDir },
    );
    // a new predictor: from disk, identical predictions, no encoder run
    await withPredictor(
      "split",
      async (p, calls) => {
        assert.equal((await p.setImage(a)).source, "disk");
        assert.equal(calls.encode, 0);
        const again = await p.predict({ points: [{ x: 500, y: 375, label: 1 }] });
        assert.deepEqual(again.lowResLogits.data, first);
        // memoryCache 1: b pushes a out of memory, a comes back from disk
        assert.equal((await p.setImage(b)).source, "disk");
        assert.equal((await p.setImage(a)).source, "disk");
        assert.equal(calls.encode, 0);
      },
      { cacheDir, memoryCache: 1 },
    );
    // another encoder file: another key
    await withPredictor("split-hwc", async (p) => assert.equal((await p.setImage(a)).source, "encoder"), { cacheDir });
    // a corrupt file is a miss and is rewritten
    const files = (await readdir(cacheDir)).filter((f) => f.endsWith(".emb"));
    for (const f of files) {
      const bytes = await readFile(join(cacheDir, f));
      await writeFile(join(cacheDir, f), bytes.subarray(0, bytes.length - 4));
    }
    await withPredictor(
      "split",
      async (p, calls) => {
        assert.equal((await p.setImage(a)).source, "encoder");
        assert.equal(calls.encode, 1);
      },
      { cacheDir },
    );
    await withPredictor("split", async (p) => assert.equal((await p.setImage(a)).source, "disk"), { cacheDir });
  });

  test("setImage again on the current image: its hash without re-hashing; pixels changed in place: a new image", async () => {
    const a = pattern(64, 48, 3);
    await withPredictor("split", async (p, calls) => {
      const first = await p.setImage(a);
      const click = { points: [{ x: 10, y: 20, label: 1 as const }] };
      const before = (await p.predict(click)).lowResLogits.data;
      const again = await p.setImage(a);
      assert.deepEqual([again.source, again.hash, calls.encode], ["memory", first.hash, 1]);
      a.data[(20 * 64 + 10) * 3] = ((a.data[(20 * 64 + 10) * 3] as number) + 1) % 256; // the same array, changed
      const changed = await p.setImage(a);
      assert.equal(changed.source, "encoder");
      assert.notEqual(changed.hash, first.hash);
      assert.equal(calls.encode, 2);
      assert.equal(p.image?.hash, changed.hash);
      // and back: the original pixels are the cached image again
      a.data[(20 * 64 + 10) * 3] = ((a.data[(20 * 64 + 10) * 3] as number) + 255) % 256;
      const back = await p.setImage(a);
      assert.deepEqual([back.source, back.hash, calls.encode], ["memory", first.hash, 2]);
      assert.deepEqual((await p.predict(click)).lowResLogits.data, before);
    });
  });

  test("the raw-HWC encoder export gives the same masks", async () => {
    const img = pattern(640, 480);
    const prompt = { points: [{ x: 500, y: 375, label: 1 as const }], multimask: true };
    const nchw = await withPredictor("split", async (p) => {
      await p.setImage(img);
      return p.predict(prompt);
    });
    await withPredictor("split-hwc", async (p) => {
      assert.equal(p.model.encoderInput, "hwc");
      await p.setImage(img);
      const hwc = await p.predict(prompt);
      assert.deepEqual(hwc.channels, nchw.channels);
      for (const [k, m] of hwc.masks.entries()) assert.deepEqual(m.data, nchw.masks[k]?.data);
    });
  });

  test("bad use is a clear error", async () => {
    await withPredictor("split", async (p) => {
      await assert.rejects(p.predict({ points: [{ x: 1, y: 1, label: 1 }] }), /call setImage before predict/);
      await p.setImage(pattern(64, 48));
      await assert.rejects(p.predict({}), /empty prompt/);
      await assert.rejects(p.predict({ box: [0, 0, 5, 5], boxes: [[0, 0, 5, 5]] }), /either `box` or `boxes`/);
      await assert.rejects(p.predict({ points: [{ x: 1, y: 1, label: 2 as 1 }] }), /point 1: label must be 1/);
      await assert.rejects(p.setImage(join(temp, "missing.png")), /missing\.png: file not found|file not found/);
      await p.dispose();
      await assert.rejects(p.predict({ points: [{ x: 1, y: 1, label: 1 }] }), /disposed/);
    });
    await assert.rejects(createSamPredictor(join(FIXTURES, "split"), { memoryCache: 0 }), /memoryCache must be/);
  });
});

describe("SamPredictor: transformers.js layout", () => {
  test("3 candidates; single mask = highest predicted IoU; box as input_boxes; points mapped", async () => {
    await withPredictor("transformers", async (p, calls) => {
      await p.setImage(pattern(480, 640));
      const fg = { x: 100, y: 600, label: 1 as const };
      const multi = await p.predict({ points: [fg] });
      assert.deepEqual(multi.channels, [0, 1, 2]);
      const best = multi.scores.indexOf(Math.max(...multi.scores));
      // sigma 128 makes the widest disc, the largest mean logit, the highest IoU
      assert.equal(best, 2);
      const single = await p.predict({ points: [fg], multimask: false });
      assert.deepEqual(single.channels, [2]);
      assert.equal(single.scores[0], multi.scores[2]);
      assert.deepEqual(single.masks[0]?.data, multi.masks[2]?.data);
      assert.equal(at(single.masks[0], 100, 600), 1);
      assert.equal(at(single.masks[0], 100, 400), 0);
      // a box alone: +4 - 2 inside it (box in 1024 frame 160..640 x 160..480 covers whole low-res pixels)
      const boxed = await p.predict({ box: [100, 100, 400, 300], multimask: false });
      const m = boxed.masks[0];
      assert.equal(at(m, 250, 200), 1);
      assert.equal(at(m, 105, 105), 1);
      assert.equal(at(m, 395, 295), 1);
      assert.equal(at(m, 90, 200), 0);
      assert.equal(at(m, 250, 310), 0);
      await assert.rejects(p.predict({ points: [fg], maskInput: new Float32Array(65536) }), /no mask_input/);
      assert.equal(calls.encode, 1);
    });
  });
});

describe("SamPredictor: EdgeSAM, SAM-HQ and SlimSAM exports", () => {
  const img = pattern(640, 480);
  const fg = { x: 500, y: 375, label: 1 as const };
  const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
    assert.equal(a.length, b.length);
    let m = 0;
    for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs((a[i] as number) - (b[i] as number)));
    return m;
  };

  test("EdgeSAM: the official decoder's channels and prompt packing, upscaled from its low-res masks", async () => {
    // the EdgeSAM fixture computes the split fixture's logits (without a mask input): the same predictions
    const requests: Parameters<SamPredictor["predict"]>[0][] = [
      { points: [fg] },
      { points: [fg], multimask: false, returnLogits: true },
      { box: [100, 100, 400, 300], multimask: false },
      {
        points: [fg, { x: 530, y: 375, label: 0 }],
        boxes: [
          [100, 100, 400, 300],
          [20, 20, 200, 50],
        ],
      },
    ];
    const want = await withPredictor("split", async (p) => {
      await p.setImage(img);
      const out = [];
      for (const r of requests) out.push(await p.predict(r));
      return out;
    });
    await withPredictor("edgesam", async (p) => {
      await p.setImage(img);
      for (const [i, r] of requests.entries()) {
        const got = await p.predict(r);
        const ref = want[i];
        assert.ok(ref);
        assert.deepEqual(got.channels, ref.channels);
        assert.equal(got.perPrompt, ref.perPrompt);
        assert.deepEqual(got.lowResLogits.dims, ref.lowResLogits.dims);
        assert.ok(maxDiff(got.lowResLogits.data, ref.lowResLogits.data) < 1e-5, `request ${i}: low-res logits`);
        assert.ok(maxDiff(got.scores, ref.scores) < 1e-6, `request ${i}: scores`);
        for (const [k, m] of got.masks.entries())
          assert.deepEqual(m.data, ref.masks[k]?.data, `request ${i} mask ${k}`);
      }
      const single = await p.predict({ points: [fg], multimask: false });
      assert.equal(at(single.masks[0], 500, 375), 1);
      assert.equal(at(single.masks[0], 430, 375), 0);
      await assert.rejects(p.predict({ points: [fg], maskInput: new Float32Array(65536) }), /no mask_input/);
    });
  });

  test("SAM-HQ: its one mask in both multimask modes, equal to the decoder's own outputs", async () => {
    await withPredictor("sam-hq", async (p) => {
      await p.setImage(img);
      const multi = await p.predict({ points: [fg], returnLogits: true });
      const single = await p.predict({ points: [fg], multimask: false });
      for (const r of [multi, single]) {
        assert.deepEqual(r.channels, [0]);
        assert.equal(r.perPrompt, 1);
        assert.equal(r.masks.length, 1);
        assert.deepEqual(r.lowResLogits.dims, [1, 256, 256]);
      }
      assert.deepEqual(single.masks[0]?.data, multi.masks[0]?.data);
      // the decoder run by hand: its low-res logits, its score, and its in-graph upscaling to the original size
      const emb = await p.model.encode(preprocessImage(img));
      const packed = decoderInputs({ points: [fg] }, { height: 480, width: 640 });
      const raw = await p.model.decode(
        emb,
        { points: packed.point_coords.data, labels: packed.point_labels.data, origSize: [480, 640] },
        { fullSize: true },
      );
      assert.deepEqual(multi.lowResLogits.data, raw.lowRes.data);
      assert.equal(multi.scores[0], raw.scores[0]);
      assert.ok(multi.logits?.[0] && raw.masks, "logits and the graph's masks");
      assert.ok(maxDiff(multi.logits[0], raw.masks.data) < 1e-4, "full-size logits");
      // sigma 48: a disc of radius 80 / 1.6 = 50 px around the point
      assert.equal(at(multi.masks[0], 500, 375), 1);
      assert.equal(at(multi.masks[0], 430, 375), 0);
      const two = await p.predict({
        boxes: [
          [100, 100, 400, 300],
          [20, 20, 200, 50],
        ],
      });
      assert.equal(two.perPrompt, 1);
      assert.equal(two.masks.length, 2);
      assert.deepEqual(two.lowResLogits.dims, [2, 1, 256, 256]);
      assert.equal(at(two.masks[0], 400, 300), 1);
      assert.equal(at(two.masks[1], 200, 50), 1);
    });
  });

  test("SlimSAM (only quantized files, no input_boxes): the transformers.js candidates; a box is refused", async () => {
    const dir = await mkdtemp(join(temp, "slimsam-"));
    for (const [to, from] of [
      ["vision_encoder_quantized.onnx", "transformers/onnx/vision_encoder.onnx"],
      ["prompt_encoder_mask_decoder_quantized.onnx", "slimsam/onnx/prompt_encoder_mask_decoder_quantized.onnx"],
    ] as const) {
      await writeFile(join(dir, to), await readFile(join(FIXTURES, from)));
    }
    const portrait = pattern(480, 640);
    const click = { x: 100, y: 600, label: 1 as const };
    const want = await withPredictor("transformers", async (p) => {
      await p.setImage(portrait);
      return [await p.predict({ points: [click] }), await p.predict({ points: [click], multimask: false })];
    });
    const p = await createSamPredictor(dir, { threads: 1 });
    try {
      assert.equal(p.model.acceptsBox, false);
      await p.setImage(portrait);
      const got = [await p.predict({ points: [click] }), await p.predict({ points: [click], multimask: false })];
      assert.deepEqual(
        got.map((r) => r.channels),
        [[0, 1, 2], [2]],
      );
      for (const [i, r] of got.entries()) {
        const ref = want[i];
        assert.ok(ref);
        assert.ok(maxDiff(r.lowResLogits.data, ref.lowResLogits.data) < 1e-5, `request ${i}: low-res logits`);
        assert.ok(maxDiff(r.scores, ref.scores) < 1e-6, `request ${i}: scores`);
        for (const [k, m] of r.masks.entries()) assert.deepEqual(m.data, ref.masks[k]?.data);
      }
      await assert.rejects(p.predict({ points: [click], box: [100, 100, 400, 300] }), (err: unknown) => {
        assert.match((err as Error).message, /no input_boxes: boxes cannot be given/);
        assert.equal((err as { file?: string }).file, p.model.files.decoder);
        return true;
      });
    } finally {
      await p.dispose();
    }
  });
});
