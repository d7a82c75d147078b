// SAM 2 video tracking against the official SAM2VideoPredictor on the tiny random-weight fixture
// (scripts/fixtures/make_sam2.py; src/sam/fixtures/sam2/README.md): every step of every scenario returns the same
// frames, per frame and object a mask at IoU >= 0.999 and the object score logit within 1e-3.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { createMask } from "../core/image.js";
import { readImage } from "../io/image.js";
import { type Rle, rleArea, rleDecode, rleEncode, rleIou } from "../masks/rle.js";
import { findSam2Files, openSam2, type Sam2Parts } from "./sam2.js";
import {
  createVideoPredictor,
  roundBfloat16,
  sinePositions,
  trackVideo,
  type VideoFrameResult,
  type VideoFrames,
  type VideoPrompt,
} from "./video.js";

const SAM2 = join(import.meta.dirname, "fixtures", "sam2");

interface Step {
  step: {
    frame?: number;
    object?: number;
    points?: [number, number][];
    labels?: (0 | 1)[];
    box?: [number, number, number, number];
    /** add_new_mask's mask. */
    mask?: Rle;
    propagate?: "forward" | "backward";
  };
  frames: { frame: number; objects: { id: number; score: number; mask: Rle }[] }[];
}

const REFS = JSON.parse(readFileSync(join(SAM2, "video-refs.json"), "utf8")) as {
  frames: string[];
  width: number;
  height: number;
  scenarios: Record<string, Step[]>;
};

const CLIP: VideoFrames = {
  count: REFS.frames.length,
  width: REFS.width,
  height: REFS.height,
  name: (i) => REFS.frames[i] as string,
  read: (i) => readImage(join(SAM2, "clip", REFS.frames[i] as string)),
};

function sameFrames(got: VideoFrameResult[], want: Step["frames"], what: string) {
  assert.deepEqual(
    got.map((f) => f.frame),
    want.map((f) => f.frame),
    `${what}: frames`,
  );
  got.forEach((f, i) => {
    const w = want[i] as Step["frames"][number];
    assert.deepEqual(
      f.objects.map((o) => o.id),
      w.objects.map((o) => o.id),
      `${what} frame ${f.frame}: objects`,
    );
    f.objects.forEach((o, j) => {
      const ref = w.objects[j] as Step["frames"][number]["objects"][number];
      assert.ok(
        Math.abs(o.score - ref.score) <= 1e-3,
        `${what} frame ${f.frame} object ${o.id}: score ${o.score} vs ${ref.score}`,
      );
      const mine = rleEncode(o.mask);
      const iou = rleArea(mine) + rleArea(ref.mask) === 0 ? 1 : (rleIou([mine], [ref.mask])[0]?.[0] ?? 0);
      assert.ok(
        iou >= 0.999,
        `${what} frame ${f.frame} object ${o.id}: IoU ${iou} (areas ${rleArea(mine)}, ${rleArea(ref.mask)})`,
      );
    });
  });
}

/** The tiny 7-graph fixture's parts, one thread. */
async function openFixture(): Promise<Sam2Parts> {
  const files = await findSam2Files(join(import.meta.dirname, "fixtures", "models", "sam2-ailia"));
  assert.ok(files);
  return openSam2(files, { threads: 1 });
}

describe("SAM 2 video predictor against SAM2VideoPredictor", () => {
  let parts: Sam2Parts;
  before(async () => {
    parts = await openFixture();
  });
  after(() => parts.dispose());

  const runs = [
    ...Object.keys(REFS.scenarios).map((name) => ({ name, memoryFrames: undefined })),
    // every tracked frame's memory and logits on disk at once: read back for the backward pass and the correction
    { name: "reverse", memoryFrames: 0 },
    { name: "correction", memoryFrames: 0 },
  ];
  for (const { name, memoryFrames } of runs) {
    const steps = REFS.scenarios[name] as Step[];
    test(`${name}${memoryFrames === undefined ? "" : ` (memoryFrames ${memoryFrames}: spilled to disk)`}`, async () => {
      const video = trackVideo(parts, CLIP, memoryFrames === undefined ? {} : { memoryFrames });
      for (const [i, { step, frames }] of steps.entries()) {
        let got: VideoFrameResult[] = [];
        if (step.propagate) {
          for await (const r of video.propagate({ reverse: step.propagate === "backward" })) got.push(r);
        } else {
          const prompt: VideoPrompt = {
            frame: step.frame as number,
            object: step.object as number,
            ...(step.points
              ? { points: step.points.map(([x, y], k) => ({ x, y, label: step.labels?.[k] ?? 1 })) }
              : {}),
            ...(step.box ? { box: step.box } : {}),
            ...(step.mask ? { mask: rleDecode(step.mask) } : {}),
          };
          got = [await video.addPrompt(prompt)];
        }
        sameFrames(got, frames, `${name} step ${i}`);
      }
      await video.dispose();
    });
  }
});

describe("createVideoPredictor: a model directory, a clip at a time", () => {
  test("a directory of frames; the point scenario's first frames; clear errors", async () => {
    const models = join(import.meta.dirname, "fixtures", "models");
    const video = await createVideoPredictor(join(models, "sam2-ailia"), { threads: 1 });
    try {
      await assert.rejects(video.addPrompt({ frame: 0, object: 1, box: [1, 1, 9, 9] }), /no clip: call init/);
      const frames = await video.init(join(SAM2, "clip"));
      assert.deepEqual([frames.count, frames.width, frames.height, frames.name(7)], [8, 64, 48, "00007.png"]);
      const [first, forward] = REFS.scenarios.point as Step[];
      const got = [await video.addPrompt({ frame: 0, object: 1, points: [{ x: 12, y: 16, label: 1 }] })];
      sameFrames(got, first?.frames ?? [], "init + point");
      const tracked: VideoFrameResult[] = [];
      for await (const r of video.propagate({ maxFrames: 2 })) tracked.push(r);
      sameFrames(tracked, forward?.frames.slice(0, 3) ?? [], "maxFrames 2");
      await assert.rejects(
        video.addPrompt({ frame: 8, object: 1, box: [1, 1, 9, 9] }),
        /frame 8 does not exist: the clip has frames 0\.\.7/,
      );
      await assert.rejects(video.init(join(SAM2, "nowhere")), /no such file or directory/);
    } finally {
      await video.dispose();
    }
    await assert.rejects(createVideoPredictor(join(models, "sam2-split")), /no SAM 2 7-graph split here/);
  });
});

describe("mask prompts (add_new_mask)", () => {
  let parts: Sam2Parts;
  before(async () => {
    parts = await openFixture();
  });
  after(() => parts.dispose());

  // The official answers to mask prompts are the `mask` scenario above; here, what holds by construction
  test("the mask comes back as the frame's mask (score +10), an empty one as absent (-10); it conditions tracking", async () => {
    const video = trackVideo(parts, CLIP);
    // a 16 x 16 square over the disc of frame 0
    const given = createMask(CLIP.width, CLIP.height);
    for (let y = 8; y < 24; y++) given.data.fill(1, y * CLIP.width + 4, y * CLIP.width + 20);
    const ref = rleEncode(given);
    const r = await video.addPrompt({ frame: 0, object: 1, mask: given });
    const back = r.objects[0];
    assert.equal(back?.score, 10);
    const iou = rleIou([rleEncode(back?.mask ?? given)], [ref])[0]?.[0] ?? 0;
    assert.ok(iou >= 0.97, `IoU ${iou}`);
    const empty = await video.addPrompt({ frame: 0, object: 2, mask: createMask(CLIP.width, CLIP.height) });
    assert.deepEqual([empty.objects.map((o) => o.id), empty.objects[1]?.score], [[1, 2], -10]);
    assert.equal(
      empty.objects[1]?.mask.data.some((v) => v),
      false,
    );
    const tracked: VideoFrameResult[] = [];
    for await (const f of video.propagate()) tracked.push(f);
    assert.deepEqual(
      tracked.map((f) => f.frame),
      [0, 1, 2, 3, 4, 5, 6, 7],
    );
    await assert.rejects(
      video.addPrompt({ frame: 1, object: 1, mask: createMask(3, 3) }),
      /a 3x3 mask for 64x48 frames/,
    );
    await assert.rejects(
      video.addPrompt({ frame: 1, object: 1, mask: given, points: [{ x: 1, y: 1, label: 1 }] }),
      /give points \/ a box, or a mask, not both/,
    );
    await video.dispose();
  });
});

describe("video helpers", () => {
  test("bfloat16 rounding: nearest, ties to even, by hand", () => {
    // 1 + 2^-8 is halfway between bf16 1 and 1 + 2^-7: ties to even (1); 1 + 3 * 2^-8 rounds up to 1 + 2^-6
    const x = Float32Array.of(1, 1 + 2 ** -8, 1 + 3 * 2 ** -8, -2.5, 1 + 2 ** -7 + 2 ** -9);
    assert.deepEqual([...roundBfloat16(x)], [1, 1, 1 + 2 ** -6, -2.5, 1 + 2 ** -7]);
  });

  test("sine temporal encoding: sines then cosines of pos / tMax / 10000^(2 floor(i/2) / (dim/2))", () => {
    const pe = sinePositions([0, 15], 15, 4);
    assert.deepEqual([...pe.subarray(0, 4)], [0, 0, 1, 1]);
    // pos 1: i = 0, 1 -> 10000^0 = 1
    assert.ok(Math.abs((pe[4] as number) - Math.sin(1)) < 1e-7 && Math.abs((pe[6] as number) - Math.cos(1)) < 1e-7);
  });
});
