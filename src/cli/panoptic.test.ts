// `segkit panoptic` through main(), then `segkit eval --task panoptic` of what it wrote.
// Models: the YOLO-seg fixture (src/instances/fixtures/yolo-seg) and models written here whose one layer is a 1x1
// convolution with hand-set weights, so that each pixel's class is a known function of its colour: a semantic model
// (classes background / sky / ground / apple) and a segkit --task instance model (background / boundary / apple /
// leaf interiors). On a hand-drawn scene every segment is known, and so is the PQ against a hand-made ground truth.
import assert from "node:assert/strict";
import { copyFile, cp, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import * as tf from "@tensorflow/tfjs";
import { INSTANCE_PALETTE } from "../core/palette.js";
import {
  createImage,
  encodeIdMap,
  encodePng,
  initBackend,
  readImage,
  readImageSize,
  readPanopticPng,
  saveModel,
} from "../index.js";
import { runCli } from "../test-utils/cli.js";

const run = (...argv: string[]) => runCli(argv);
const FIXTURES = fileURLToPath(new URL("../instances/fixtures/yolo-seg/", import.meta.url));
const S = 32; // the models' input size and the scene's size

/** A checkpoint of one 1x1 convolution: logits[c] = kernel[c] . (R, G, B) + bias[c]; `card` completes the card. */
async function colourModel(dir: string, rows: [number, number, number, number][], card: Record<string, unknown>) {
  const input = tf.input({ shape: [S, S, 3] });
  const kernel = tf.tensor4d(
    [0, 1, 2].flatMap((ch) => rows.map((r) => r[ch] as number)),
    [1, 1, 3, rows.length],
  );
  const bias = tf.tensor1d(rows.map((r) => r[3]));
  const conv = tf.layers.conv2d({ filters: rows.length, kernelSize: 1, weights: [kernel, bias] });
  const model = tf.model({ inputs: input, outputs: conv.apply(input) as tf.SymbolicTensor });
  await saveModel(model, dir);
  model.dispose();
  kernel.dispose();
  bias.dispose();
  const classes = card.classes as string[];
  const palette = classes.map((_, k) => [40 * k, 255 - 40 * k, 128]);
  await writeFile(
    join(dir, "card.json"),
    JSON.stringify({ format: "segkit-model-card", palette, inputSize: [S, S], ignoreIndex: 255, ...card }),
  );
}

// red (255, 0, 0), green (0, 255, 0), blue (0, 0, 255), black
const RED = [255, 0, 0] as const;
const GREEN = [0, 255, 0] as const;
const BLUE = [0, 0, 255] as const;
/** Rows x0..x1, y0..y1 inclusive of the scene. */
type Rect = [x0: number, y0: number, x1: number, y1: number];
const inRect = (x: number, y: number, [x0, y0, x1, y1]: Rect) => x >= x0 && x <= x1 && y >= y0 && y <= y1;
const A: Rect = [2, 2, 5, 5]; // an apple in the sky, 16 px
const B: Rect = [4, 20, 9, 25]; // an apple on the ground, 36 px
const C: Rect = [20, 20, 27, 23]; // a leaf, 32 px
const STRIP: Rect = [28, 28, 30, 28]; // 3 green px: below the instance model's 4-px seeds, "background" to the semantic

/** The scene: sky (blue) above row 16, ground (black) below, two red apples, a green leaf and a green strip. */
function scene() {
  const img = createImage(S, S);
  for (let y = 0; y < S; y++) {
    for (let x = 0; x < S; x++) {
      const c =
        inRect(x, y, A) || inRect(x, y, B)
          ? RED
          : inRect(x, y, C) || inRect(x, y, STRIP)
            ? GREEN
            : y < 16
              ? BLUE
              : null;
      if (c) img.data.set(c, (y * S + x) * 3);
    }
  }
  return img;
}

let dir: string;
let yolo: string;
let semantic: string;
let instanceRun: string;
let images: string;
let sceneDir: string;

before(async () => {
  await initBackend();
  dir = await mkdtemp(join(tmpdir(), "segkit-cli-panoptic-"));
  yolo = join(dir, "yolo");
  await mkdir(yolo);
  await copyFile(join(FIXTURES, "yolo-seg.onnx"), join(yolo, "yolo-seg.onnx"));
  // semantic: green -> background (class 0), blue -> sky, red -> apple, black (and grey) -> ground
  semantic = join(dir, "semantic");
  await colourModel(
    semantic,
    [
      [-1, 2, -1, -100],
      [-1, -1, 2, -100],
      [0, 0, 0, 0],
      [2, -1, -1, -100],
    ],
    { classes: ["background", "sky", "ground", "apple"], backgroundClass: 0 },
  );
  // instances: red interiors are apples (id 1), green ones leaves (id 2); never boundary
  instanceRun = join(dir, "instances");
  await colourModel(
    instanceRun,
    [
      [0, 0, 0, 0],
      [0, 0, 0, -1000],
      [2, -1, -1, -100],
      [-1, 2, -1, -100],
    ],
    {
      classes: ["background", "boundary", "apple", "leaf"],
      backgroundClass: 0,
      instances: {
        categories: [
          { id: 1, name: "apple" },
          { id: 2, name: "leaf" },
        ],
        boundary: 1,
      },
    },
  );
  images = join(dir, "images");
  await mkdir(images);
  for (const f of ["square.png", "tall.png", "wide.png"]) await copyFile(join(FIXTURES, f), join(images, f));
  await writeFile(join(images, "broken.png"), "not a png");
  sceneDir = join(dir, "scene");
  await mkdir(sceneDir);
  await writeFile(join(sceneDir, "scene.png"), await encodePng(scene()));
});
after(() => rm(dir, { recursive: true, force: true }));

interface PanopticJson {
  images: { id: number; file_name: string; width: number; height: number }[];
  annotations: {
    image_id: number;
    file_name: string;
    segments_info: { id: number; category_id: number; iscrowd: number; bbox: number[]; area: number }[];
  }[];
  categories: { id: number; name: string; isthing: number }[];
}
type Quality = Record<"All" | "Things" | "Stuff", { pq: number; sq: number; rq: number; n: number }> & {
  per_class: Record<string, { pq: number; sq: number; rq: number }>;
};

async function evalPanoptic(pred: string, gt: string, report: string): Promise<Quality> {
  const r = await run("eval", "--task", "panoptic", "--pred", pred, "--gt", gt, "--json", report);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /^ {10}\| {4}PQ {5}SQ {5}RQ {5}N$/m);
  return JSON.parse(await readFile(report, "utf8"));
}

/** `segkit panoptic ARGS` into `out`: exits 0 with the summary line `line`; its panoptic.json. */
async function panoptic(out: string, args: string[], line: RegExp) {
  const r = await run("panoptic", "-o", out, ...args);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, line);
  return {
    r,
    pred: join(out, "panoptic.json"),
    pan: JSON.parse(await readFile(join(out, "panoptic.json"), "utf8")) as PanopticJson,
  };
}

const close = (got: number, want: number, what: string) =>
  assert.ok(Math.abs(got - want) < 1e-12, `${what}: ${got}, expected ${want}`);

describe("segkit panoptic", () => {
  it("YOLO-seg + a semantic model over a directory: COCO panoptic JSON + PNGs, overlays; scored against itself PQ = 1", async () => {
    const out = join(dir, "out");
    const { r, pred, pan } = await panoptic(
      out,
      ["--instances", yolo, "--semantic", semantic, "-i", images, "--stuff-area", "50", "--overlay", "--threads", "1"],
      /^\d+ segments \(\d+ things, \d+ stuff\) in 3 images, skipped 1 in [\d.]+ s \(yolo-seg \+ (onnx|tfjs)\); wrote .*, 3 PNGs in .* and 3 overlays$/,
    );
    assert.match(r.err, /skipped .*broken\.png: /);
    // things: the YOLO model's categories; stuff: sky, ground and apple (no YOLO category is named apple), ids after 3
    assert.deepEqual(pan.categories, [
      { id: 1, name: "cat", isthing: 1 },
      { id: 2, name: "dog's toy", isthing: 1 },
      { id: 3, name: "traffic light", isthing: 1 },
      { id: 4, name: "sky", isthing: 0 },
      { id: 5, name: "ground", isthing: 0 },
      { id: 6, name: "apple", isthing: 0 },
    ]);
    assert.deepEqual(
      pan.images.map((i) => [i.id, i.file_name, i.width, i.height]),
      [
        [1, "square.png", 96, 96],
        [2, "tall.png", 71, 150],
        [3, "wide.png", 130, 60],
      ],
    );
    assert.deepEqual(
      pan.annotations.map((a) => [a.image_id, a.file_name]),
      [
        [1, "square.png"],
        [2, "tall.png"],
        [3, "wide.png"],
      ],
    );
    // each PNG holds exactly the listed ids, with the listed areas and boxes
    for (const a of pan.annotations) {
      const png = await readPanopticPng(join(out, "panoptic", a.file_name));
      const area = new Map<number, number>();
      for (const id of png.ids) if (id !== 0) area.set(id, (area.get(id) ?? 0) + 1);
      assert.deepEqual(
        a.segments_info.map((s) => [s.id, s.area]),
        [...area].sort((x, y) => x[0] - y[0]),
      );
      for (const s of a.segments_info) {
        assert.equal(s.iscrowd, 0);
        const [x, y, w, h] = s.bbox as [number, number, number, number];
        const at = (px: number, py: number) => png.ids[py * png.width + px] === s.id;
        assert.ok([...Array(w).keys()].some((k) => at(x + k, y)) && [...Array(h).keys()].some((k) => at(x, y + k)));
        assert.ok(w >= 1 && h >= 1 && x + w <= png.width && y + h <= png.height);
      }
    }
    const all = pan.annotations.flatMap((a) => a.segments_info);
    const thingSegments = all.filter((s) => s.category_id <= 3).length;
    assert.ok(thingSegments >= 2 && thingSegments < all.length, `${thingSegments} of ${all.length} are things`);
    // tall.png: no YOLO detection scores 0.5 (the reference's best is 0.485): only stuff
    assert.ok((pan.annotations[1]?.segments_info ?? []).every((s) => s.category_id > 3));
    assert.deepEqual((await readdir(out)).sort(), [
      "panoptic",
      "panoptic.json",
      "square.overlay.png",
      "tall.overlay.png",
      "wide.overlay.png",
    ]);
    assert.deepEqual(await readImageSize(join(out, "wide.overlay.png")), { width: 130, height: 60 });

    // the prediction as its own ground truth (COCO's layout: gt.json + gt/): PQ 1 for every category present
    const gt = join(dir, "self", "gt.json");
    await mkdir(join(dir, "self"));
    await cp(join(out, "panoptic"), join(dir, "self", "gt"), { recursive: true });
    await copyFile(pred, gt);
    const q = await evalPanoptic(pred, gt, join(dir, "self", "pq.json"));
    const present = new Set(all.map((s) => s.category_id));
    assert.equal(q.All.n, present.size);
    assert.equal(q.Things.n, [...present].filter((c) => c <= 3).length);
    for (const key of ["All", "Things", "Stuff"] as const) {
      for (const m of ["pq", "sq", "rq"] as const) close(q[key][m], 1, `${key} ${m}`);
    }
    for (const c of present) assert.deepEqual(q.per_class[c], { pq: 1, sq: 1, rq: 1 });
  });

  it("a hand-drawn scene: the segments known pixel for pixel, and PQ against a hand-made ground truth", async () => {
    const out = join(dir, "scene-out");
    const tensors = tf.memory().numTensors;
    const { pred, pan } = await panoptic(
      out,
      [
        "--instances",
        instanceRun,
        "--semantic",
        semantic,
        "-i",
        join(sceneDir, "scene.png"),
        "--stuff-area",
        "100",
        "--overlay",
      ],
      /^5 segments \(3 things, 2 stuff\) in 1 image in [\d.]+ s \(segkit \+ (onnx|tfjs)\); wrote .*panoptic\.json, 1 PNG in .*panoptic and 1 overlay$/,
    );
    assert.equal(tf.memory().numTensors, tensors, "both models disposed");
    // semantic classes: background (class 0) and apple (a thing's name) are not stuff; sky and ground get ids 3, 4
    assert.deepEqual(pan.categories, [
      { id: 1, name: "apple", isthing: 1 },
      { id: 2, name: "leaf", isthing: 1 },
      { id: 3, name: "sky", isthing: 0 },
      { id: 4, name: "ground", isthing: 0 },
    ]);
    assert.deepEqual(pan.images, [{ id: 1, file_name: "scene.png", width: S, height: S }]);
    // things by score (all 1: apples first, in scan order), then stuff by class; the strip is void
    assert.deepEqual(pan.annotations, [
      {
        image_id: 1,
        file_name: "scene.png",
        segments_info: [
          { id: 1, category_id: 1, iscrowd: 0, bbox: [2, 2, 4, 4], area: 16 },
          { id: 2, category_id: 1, iscrowd: 0, bbox: [4, 20, 6, 6], area: 36 },
          { id: 3, category_id: 2, iscrowd: 0, bbox: [20, 20, 8, 4], area: 32 },
          { id: 4, category_id: 3, iscrowd: 0, bbox: [0, 0, 32, 16], area: 512 - 16 },
          { id: 5, category_id: 4, iscrowd: 0, bbox: [0, 16, 32, 16], area: 512 - 36 - 32 - 3 },
        ],
      },
    ]);
    const png = await readPanopticPng(join(out, "panoptic", "scene.png"));
    const want = (x: number, y: number) =>
      inRect(x, y, A) ? 1 : inRect(x, y, B) ? 2 : inRect(x, y, C) ? 3 : inRect(x, y, STRIP) ? 0 : y < 16 ? 4 : 5;
    assert.deepEqual(
      [...png.ids],
      [...Array(S * S).keys()].map((p) => want(p % S, Math.floor(p / S))),
    );

    // the overlay: ground tinted half with its class colour (palette [80, 175, 128]), the void strip as it is, apple B
    // half its instance colour (the second thing), each away from boxes and labels
    const overlay = await readImage(join(out, "scene.overlay.png"));
    const px = (x: number, y: number) => [...overlay.data.subarray((y * S + x) * 3, (y * S + x) * 3 + 3)];
    assert.deepEqual(px(15, 30), [40, 88, 64]);
    assert.deepEqual(px(29, 28), [...GREEN]);
    const colour = INSTANCE_PALETTE[2] as readonly number[];
    assert.deepEqual(
      px(6, 23),
      [...RED].map((v, ch) => Math.round(v * 0.5 + (colour[ch] as number) * 0.5)),
    );

    // the ground truth: apple A as predicted (IoU 1); apple B 2 columns wider (IoU 36/48 = 0.75); the leaf only its
    // top half (IoU 16/32 = 0.5, not above 0.5: a false negative and a false positive); sky as predicted; ground the
    // rest, the strip void. Ground: predicted 441 px, true 512 - 48 - 16 - 3 = 445, shared 441 - 12 = 429.
    const B2: Rect = [4, 20, 11, 25];
    const C2: Rect = [20, 20, 27, 21];
    const gtIds = [0x0a0b0c, 300, 7, 0x010000, 42]; // A, B, C, sky, ground: any ids
    const truth = (x: number, y: number) =>
      inRect(x, y, A)
        ? gtIds[0]
        : inRect(x, y, B2)
          ? gtIds[1]
          : inRect(x, y, C2)
            ? gtIds[2]
            : inRect(x, y, STRIP)
              ? 0
              : y < 16
                ? gtIds[3]
                : gtIds[4];
    const ids = Uint32Array.from([...Array(S * S).keys()].map((p) => truth(p % S, Math.floor(p / S)) as number));
    const gtDir = join(dir, "scene-gt");
    await mkdir(join(gtDir, "panoptic_val"), { recursive: true });
    await writeFile(join(gtDir, "panoptic_val", "scene.png"), encodeIdMap({ width: S, height: S, ids }, "rgb"));
    const seg = (id: number, category_id: number, area: number) => ({ id, category_id, iscrowd: 0, area });
    const gt = join(gtDir, "panoptic_val.json");
    await writeFile(
      gt,
      JSON.stringify({
        images: [{ id: 1, file_name: "scene.png", width: S, height: S }],
        annotations: [
          {
            image_id: 1,
            file_name: "scene.png",
            segments_info: [
              seg(0x0a0b0c, 1, 16),
              seg(300, 1, 48),
              seg(7, 2, 16),
              seg(0x010000, 3, 496),
              seg(42, 4, 445),
            ],
          },
        ],
        categories: pan.categories,
      }),
    );
    const q = await evalPanoptic(pred, gt, join(gtDir, "pq.json"));
    const ground = 429 / (441 + 445 - 429);
    close(q.per_class[1]?.pq ?? -1, (1 + 0.75) / 2, "apple PQ");
    close(q.per_class[1]?.rq ?? -1, 1, "apple RQ");
    assert.deepEqual(q.per_class[2], { pq: 0, sq: 0, rq: 0 });
    assert.deepEqual(q.per_class[3], { pq: 1, sq: 1, rq: 1 });
    close(q.per_class[4]?.pq ?? -1, ground, "ground PQ");
    close(q.All.pq, (0.875 + 0 + 1 + ground) / 4, "All PQ");
    close(q.All.rq, 0.75, "All RQ");
    close(q.Things.pq, 0.4375, "Things PQ");
    close(q.Stuff.pq, (1 + ground) / 2, "Stuff PQ");
    assert.deepEqual([q.All.n, q.Things.n, q.Stuff.n], [4, 2, 2]);
  });

  it("--thing-classes names the semantic classes that are not stuff; an unknown one is an error", async () => {
    const out = join(dir, "thing-classes");
    const input = join(sceneDir, "scene.png");
    const models = ["--instances", instanceRun, "--semantic", semantic, "-i", input, "--stuff-area", "0"];
    const stuffOf = (pan: PanopticJson) => [
      pan.categories.filter((c) => !c.isthing).map((c) => [c.id, c.name]),
      pan.annotations[0]?.segments_info.filter((s) => s.category_id > 2).map((s) => [s.category_id, s.area]),
    ];
    // class 0 and the sky by name: the sky is void now; no apple pixel is left to the semantic map
    let { pan } = await panoptic(join(out, "1"), [...models, "--thing-classes", "0,sky"], /^4 segments/);
    assert.deepEqual(stuffOf(pan), [
      [
        [3, "ground"],
        [4, "apple"],
      ],
      [[3, 441]],
    ]);
    // none: the strip the instance model leaves is "background" stuff
    ({ pan } = await panoptic(join(out, "2"), [...models, "--thing-classes", ""], /^6 segments/));
    assert.deepEqual(stuffOf(pan), [
      [
        [3, "background"],
        [4, "sky"],
        [5, "ground"],
        [6, "apple"],
      ],
      [
        [3, 3],
        [4, 496],
        [5, 441],
      ],
    ]);
    const r = await run(
      "panoptic",
      ...["--instances", instanceRun, "--semantic", semantic, "-i", input, "-o", out, "--thing-classes", "road"],
    );
    assert.equal(r.code, 1);
    assert.match(r.err, /thing class "road" is not a class of the semantic model/);
    assert.match(r.err, /0 background, 1 sky, 2 ground, 3 apple/);
  });

  it("errors: missing models, an instance run as the semantic model, a card that disagrees with its model, an unreadable image", async () => {
    const out = join(dir, "bad");
    const input = join(sceneDir, "scene.png");
    const missing = join(dir, "nothing-here");
    let r = await run("panoptic", "--instances", missing, "--semantic", semantic, "-i", input, "-o", out);
    assert.equal(r.code, 1);
    assert.match(r.err, /nothing-here: cannot read the instance model directory/);
    r = await run("panoptic", "--instances", yolo, "--semantic", missing, "-i", input, "-o", out);
    assert.equal(r.code, 1);
    assert.match(r.err, /nothing-here: not found/);
    r = await run("panoptic", "--instances", yolo, "--semantic", instanceRun, "-i", input, "-o", out);
    assert.equal(r.code, 1);
    assert.match(r.err, /an instance model \(segkit train --task instance\), not a semantic one/);
    // a semantic checkpoint whose card gives another input size than its model takes
    const wrong = join(dir, "wrong-size");
    await cp(semantic, wrong, { recursive: true });
    const card = JSON.parse(await readFile(join(wrong, "card.json"), "utf8"));
    await writeFile(join(wrong, "card.json"), JSON.stringify({ ...card, inputSize: [64, 64] }));
    r = await run("panoptic", "--instances", yolo, "--semantic", wrong, "-i", input, "-o", out);
    assert.equal(r.code, 1);
    assert.match(r.err, /card\.json: the card says input 64x64x3 but the model takes 32x32x3/);
    // one unreadable image given alone is an error naming it; in a directory it is skipped (the first test)
    r = await run("panoptic", "--instances", yolo, "--semantic", semantic, "-i", join(images, "broken.png"), "-o", out);
    assert.equal(r.code, 1);
    assert.match(r.err, /broken\.png/);
    r = await run("panoptic", "--instances", yolo, "--semantic", semantic, "-i", images, "-o", out, "--score", "1.5");
    assert.notEqual(r.code, 0);
    assert.match(r.err, /--score must be a number from 0 to 1/);
  });
});
