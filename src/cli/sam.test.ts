import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, beforeEach, describe, it } from "node:test";
import {
  AmgCocoInstancesSchema,
  CocoInstancesSchema,
  createImage,
  createSamPredictor,
  decodeNpy,
  encodePng,
  readImageSize,
  readRawMask,
  rleArea,
  rleDecode,
  rleFromString,
  rleToBbox,
} from "../index.js";
import { runCli } from "../test-utils/cli.js";
import { type FakeHub, startFakeHub } from "../test-utils/fake-hub.js";
import { formatBytes } from "./sam.js";

let hub: FakeHub;
let root: string;
before(async () => {
  hub = await startFakeHub();
  root = await mkdtemp(join(tmpdir(), "segkit-sam-cli-"));
});
after(async () => {
  await hub.close();
  await rm(root, { recursive: true, force: true });
});
beforeEach(() => hub.reset());

const pull = (dir: string, ...args: string[]) =>
  runCli(["sam", "pull", "acme/tiny-sam", "--endpoint", hub.url, "--dir", join(root, dir), ...args]);

describe("segkit sam pull", () => {
  it("formats sizes", () => {
    assert.deepEqual([0, 999, 1000, 20_021, 999_960, 2_500_000_000].map(formatBytes), [
      "0 B",
      "999 B",
      "1.0 kB",
      "20.0 kB",
      "1.0 MB",
      "2.5 GB",
    ]);
  });

  it("downloads the SAM files and says so in one line; a second run finds them in place", async () => {
    const r = await pull("a");
    assert.equal(r.code, 0, r.err);
    const dir = join(root, "a", "models--acme--tiny-sam", "snapshots", hub.commit);
    // 21 + 4000 + 6000 + 10000 bytes
    assert.equal(
      r.out,
      `pulled acme/tiny-sam@${hub.commit}: 4 files, 20.0 kB (4 downloaded, 0 resumed, 0 already present; ` +
        `checked: 3 sha256, 1 git-sha1) in ${dir}`,
    );
    assert.equal(r.err, "");
    assert.deepEqual(readFileSync(join(dir, "onnx", "encoder.onnx")), hub.files["onnx/encoder.onnx"]);
    assert.equal(existsSync(join(dir, "README.md")), false);
    const again = await pull("a");
    assert.match(again.out, /: 4 files, 20\.0 kB \(0 downloaded, 0 resumed, 4 already present\) in /);
  });

  it("takes --include (repeatable), --all, --revision and the token from HF_TOKEN", async () => {
    const saved = process.env.HF_TOKEN;
    process.env.HF_TOKEN = "hf_env";
    try {
      const r = await pull("b", "--include", "README.md", "--include", "*.bin", "--revision", "v1");
      assert.equal(r.code, 0, r.err);
      assert.match(r.out, /^pulled acme\/tiny-sam@0123456789abcdef0123456789abcdef01234567: 2 files, 511 B /);
      assert.equal(hub.log[0]?.url, "/api/models/acme/tiny-sam/revision/v1");
      assert.equal(hub.log[0]?.authorization, "Bearer hf_env");
    } finally {
      if (saved === undefined) delete process.env.HF_TOKEN;
      else process.env.HF_TOKEN = saved;
    }
    hub.reset();
    const all = await pull("b", "--all", "--token", "hf_flag");
    assert.match(
      all.out,
      /: 6 files, .* \(4 downloaded, 0 resumed, 2 already present; checked: 3 sha256, 1 git-sha1\) in /,
    );
    assert.equal(hub.log.at(-1)?.authorization, undefined); // the last request went to the CDN
    assert.ok(hub.log.every((l) => l.url.startsWith("/cdn/") || l.authorization === "Bearer hf_flag"));
  });

  it("reports a missing repository, a bad checksum and a bad name as one line, exit code 1", async () => {
    const missing = await runCli(["sam", "pull", "acme/nope", "--endpoint", hub.url, "--dir", join(root, "c")]);
    assert.equal(missing.code, 1);
    assert.equal(
      missing.err,
      "segkit: acme/nope@main: repository not found (HTTP 404). check the repository id, --revision and --endpoint",
    );
    hub.faults.corrupt = "onnx/encoder.onnx";
    const corrupt = await pull("c");
    assert.equal(corrupt.code, 1);
    assert.match(
      corrupt.err,
      /^segkit: onnx\/encoder\.onnx: sha256 mismatch: expected [0-9a-f]{64}, got [0-9a-f]{64}; the download was deleted\. /,
    );
    const bad = await runCli(["sam", "pull", "../etc", "--dir", join(root, "c")]);
    assert.equal(bad.code, 1);
    assert.match(bad.err, /^segkit: invalid repository id "\.\.\/etc"\. expected owner\/name/);
    hub.reset();
    hub.faults.evilName = "../../x.json";
    const evil = await pull("d");
    assert.equal(evil.code, 1);
    assert.match(evil.err, /^segkit: refusing file name "\.\.\/\.\.\/x\.json" from http:/);
    assert.equal(existsSync(join(root, "d", "models--acme--tiny-sam", "snapshots")), false);
  });

  it("lists pull under sam", async () => {
    const r = await runCli(["sam", "--help"]);
    assert.match(r.out, /pull \[options\] <repo-id>\s+download a model repository/);
  });
});

describe("segkit sam (prompted masks)", () => {
  // the split fixture (src/sam/predictor.test.ts explains its masks): a foreground point gives a disc of radius
  // 1.665 sigma in the 1024 frame (sigma 48 for the single mask, 64 / 96 / 128 for the candidates), / 1.6 here
  const model = join(import.meta.dirname, "..", "sam", "fixtures", "models", "split");
  let image: string;
  before(async () => {
    const data = new Uint8Array(640 * 480 * 3).map((_, i) => (i * 37) % 256);
    image = join(root, "photo.png");
    await writeFile(image, await encodePng(createImage(640, 480, data)));
  });
  const sam = (out: string, ...args: string[]) =>
    runCli(["sam", "--model", model, "--image", image, "--out", join(root, out), ...args]);
  const json = (out: string) => JSON.parse(readFileSync(join(root, out, "result.json"), "utf8"));
  const pixel = async (file: string, x: number, y: number) => {
    const m = await readRawMask(file);
    return m.data[y * m.width + x];
  };

  it("writes one 0/255 PNG per mask, the overlay, the low-res logits and result.json", async () => {
    const r = await sam("one", "--point", "500,375", "--point", "530,375,0");
    assert.equal(r.code, 0, r.err);
    assert.match(r.outLines[0] ?? "", /^mask-0\.png {2}score 0\.\d{4} {2}stability 0\.\d{4} {2}channel 0$/);
    assert.match(
      r.outLines[1] ?? "",
      /^wrote 1 mask, overlay\.png, low_res_logits\.npy, result\.json to .*one \(embeddings: encoder/,
    );
    const result = json("one");
    assert.equal(result.layout, "split");
    assert.deepEqual(result.originalSize, { height: 480, width: 640 });
    assert.deepEqual(result.prompt.points, [
      { x: 500, y: 375, label: 1 },
      { x: 530, y: 375, label: 0 },
    ]);
    assert.equal(result.masks.length, 1);
    assert.equal(result.masks[0].file, "mask-0.png");
    assert.ok(result.masks[0].score > 0 && result.masks[0].score < 1);
    assert.deepEqual(result.lowResShape, [1, 256, 256]);
    assert.equal(result.timings.embeddings, "encoder");
    assert.ok(result.timings.decodeMs > 0);
    // the foreground side of the disc is in, the background point cancels it (8 e^-0.5 - 8 - 2 < 0)
    const mask = join(root, "one", "mask-0.png");
    assert.equal(await pixel(mask, 480, 375), 255);
    assert.equal(await pixel(mask, 530, 375), 0);
    assert.equal(await pixel(mask, 10, 10), 0);
    const npy = decodeNpy(await readFile(join(root, "one", "low_res_logits.npy")));
    assert.deepEqual(npy.dims, [1, 256, 256]);
    // low-res pixel (150, 200), centre (802, 602) in the 1024 frame, where the points sit at (800, 600) and (848, 600)
    const bump = (x: number, y: number) => 8 * Math.exp(-((802 - x) ** 2 + (602 - y) ** 2) / (2 * 48 * 48));
    const expected = bump(800, 600) - bump(848, 600) - 2;
    const got = npy.data[150 * 256 + 200] ?? Number.NaN;
    assert.ok(Math.abs(got - expected) < 0.1, `low-res logit ${got}, expected ${expected} + 0.01 e`);
    // the overlay: a green dot on the foreground point, a red one on the background point
    const overlay = await readRawRgb(join(root, "one", "overlay.png"));
    assert.deepEqual(overlay(500, 375), [0, 255, 0]);
    assert.deepEqual(overlay(530, 375), [255, 0, 0]);
  });

  it("--multimask gives 3 candidates in decoder order; several --box one decoder run each; --mask-input", async () => {
    const multi = await sam("multi", "--point", "500,375", "--multimask");
    assert.equal(multi.code, 0, multi.err);
    assert.deepEqual(
      json("multi").masks.map((m: { file: string; channel: number }) => [m.file, m.channel]),
      [
        ["mask-0.png", 1],
        ["mask-1.png", 2],
        ["mask-2.png", 3],
      ],
    );
    // 80 px left of the point: outside channel 1's disc (67 px), inside channel 2's (100 px)
    assert.equal(await pixel(join(root, "multi", "mask-0.png"), 420, 375), 0);
    assert.equal(await pixel(join(root, "multi", "mask-1.png"), 420, 375), 255);

    const boxes = await sam("boxes", "--box", "100,100,400,300", "--box", "20,20,200,50");
    assert.equal(boxes.code, 0, boxes.err);
    const b = json("boxes");
    assert.deepEqual(
      b.masks.map((m: { prompt: number }) => m.prompt),
      [0, 1],
    );
    assert.deepEqual(b.lowResShape, [2, 1, 256, 256]);
    assert.equal(await pixel(join(root, "boxes", "mask-0.png"), 400, 300), 255); // a corner of box 1
    assert.equal(await pixel(join(root, "boxes", "mask-1.png"), 400, 300), 0);
    const overlay = await readRawRgb(join(root, "boxes", "overlay.png"));
    assert.deepEqual(overlay(250, 100), [0, 255, 0]); // the top edge of box 1

    // the previous logits as mask_input: this decoder adds them, so the low-res logits double
    const prev = join(root, "multi", "low_res_logits.npy");
    const noIndex = await sam("again", "--point", "500,375", "--mask-input", prev);
    assert.equal(noIndex.code, 1);
    assert.match(noIndex.err, /low_res_logits\.npy: holds 3 low-res planes; choose one\. pass --mask-index K$/);
    const again = await sam("again", "--point", "500,375", "--multimask", "--mask-input", prev, "--mask-index", "1");
    assert.equal(again.code, 0, again.err);
    const before = decodeNpy(await readFile(prev)).data.subarray(65536, 2 * 65536);
    const after = decodeNpy(await readFile(join(root, "again", "low_res_logits.npy"))).data.subarray(65536, 2 * 65536);
    let maxErr = 0;
    for (let i = 0; i < 65536; i++) maxErr = Math.max(maxErr, Math.abs((after[i] ?? 0) - 2 * (before[i] ?? 0)));
    assert.ok(maxErr < 1e-4, `max error ${maxErr}`);
    // a mask PNG as mask_input: +10 inside, -10 outside. The first run's mask stops before (530, 375), which a lone
    // point's disc (radius 50) covers: the mask input cuts it there
    const png = await sam("png", "--point", "500,375", "--mask-input", join(root, "one", "mask-0.png"));
    assert.equal(png.code, 0, png.err);
    assert.equal(await pixel(join(root, "png", "mask-0.png"), 480, 375), 255);
    assert.equal(await pixel(join(root, "png", "mask-0.png"), 530, 375), 0);
    const plain = await sam("plain", "--point", "500,375");
    assert.equal(plain.code, 0, plain.err);
    assert.equal(await pixel(join(root, "plain", "mask-0.png"), 530, 375), 255);
  });

  it("takes a model directory of symbolic links (the Hugging Face cache), in segkit sam and createSamPredictor", async () => {
    // huggingface_hub's layout: snapshots/<rev>/NAME are relative links into blobs/<hash>
    const hub = join(root, "hf", "models--acme--sam");
    const snapshot = join(hub, "snapshots", "0123abc");
    await mkdir(join(hub, "blobs"), { recursive: true });
    await mkdir(snapshot, { recursive: true });
    for (const [name, blob] of [
      ["encoder.onnx", "e1"],
      ["decoder.onnx", "d2"],
    ] as const) {
      await writeFile(join(hub, "blobs", blob), await readFile(join(model, name)));
      await symlink(join("..", "..", "blobs", blob), join(snapshot, name));
    }
    const r = await runCli([
      "sam",
      "--model",
      snapshot,
      "--image",
      image,
      "--point",
      "500,375",
      "--out",
      join(root, "linked"),
    ]);
    assert.equal(r.code, 0, r.err);
    const direct = await sam("direct", "--point", "500,375");
    assert.equal(direct.code, 0, direct.err);
    assert.deepEqual(
      await readFile(join(root, "linked", "mask-0.png")),
      await readFile(join(root, "direct", "mask-0.png")),
    );
    const predictor = await createSamPredictor(snapshot);
    try {
      await predictor.setImage(image);
      const { masks } = await predictor.predict({ points: [{ x: 500, y: 375, label: 1 }], multimask: false });
      const m = masks[0];
      assert.equal(m?.data[375 * 640 + 480], 1);
      assert.equal(m?.data[10 * 640 + 10], 0);
    } finally {
      await predictor.dispose();
    }
  });

  it("reports bad prompts and missing flags as one line", async () => {
    const bad = await sam("bad", "--point", "5");
    assert.equal(bad.code, 1);
    assert.match(bad.err, /expected x,y or x,y,label, got "5"/);
    const label = await sam("bad", "--point", "5,5,2");
    assert.match(label.err, /point label must be 1 or 0/);
    const missing = await runCli(["sam", "--image", image, "--out", join(root, "m")]);
    assert.equal(missing.code, 1);
    assert.match(missing.err, /^segkit: missing --model\. usage: segkit sam --model DIR/);
    const noModel = await runCli(["sam", "--model", join(root, "nope"), "--image", image, "--out", join(root, "m")]);
    assert.match(noModel.err, /^segkit: .*nope: no such directory$/);
    const help = await runCli(["sam", "--help"]);
    assert.match(help.out, /--point <x,y\[,label\]>/);
    // --provider and --variant reach the loader
    const cpu = await sam("cpu", "--point", "500,375", "--provider", "cpu");
    assert.equal(cpu.code, 0, cpu.err);
    const provider = await sam("bad", "--point", "500,375", "--provider", "nosuch");
    // the exact message is checked in src/onnx/onnx.test.ts; here, that the CLI prints it with its hint
    assert.match(
      provider.err,
      /^segkit: execution provider "nosuch" is not available in this onnxruntime\S*\. cpu always is/,
    );
    const variant = await sam("bad", "--point", "500,375", "--variant", "fp16");
    assert.match(variant.err, /split: no encoder with the suffix `fp16`/);
  });
});

describe("segkit sam auto", () => {
  // the split fixture gives discs whose predicted IoU (~0.14..0.23) and stability (~0.47..0.62) the default filters
  // reject (src/sam/amg/generator.test.ts); these thresholds keep some and drop others
  const model = join(import.meta.dirname, "..", "sam", "fixtures", "models", "split");
  const relaxed = ["--points-per-side", "4", "--pred-iou-thresh", "0.15", "--stability-score-thresh", "0.5"];
  const pattern = (w: number, h: number) =>
    encodePng(
      createImage(
        w,
        h,
        new Uint8Array(w * h * 3).map((_, i) => (i * 37 + Math.floor(i / 4099) * 11) % 256),
      ),
    );
  let dir: string;
  before(async () => {
    dir = join(root, "auto-in");
    await mkdir(dir);
    await writeFile(join(dir, "a.png"), await pattern(300, 200));
    await writeFile(join(dir, "b.png"), await pattern(120, 160));
    await writeFile(join(dir, "broken.png"), "not a png");
  });
  const auto = (image: string, out: string, ...args: string[]) =>
    runCli(["sam", "auto", "--model", model, "--image", image, "--out", join(root, out), ...relaxed, ...args]);
  /** [x, y, maxX - minX, maxY - minY] of a mask's pixels: the reference's bbox. */
  const extent = (m: { data: Uint8Array; width: number }) => {
    let [x0, y0, x1, y1] = [Infinity, Infinity, -1, -1];
    m.data.forEach((v, i) => {
      if (!v) return;
      const [x, y] = [i % m.width, Math.floor(i / m.width)];
      [x0, y0, x1, y1] = [Math.min(x0, x), Math.min(y0, y), Math.max(x1, x), Math.max(y1, y)];
    });
    return [x0, y0, x1 - x0, y1 - y0];
  };

  it("one image: NAME.json records that decode to their area and bbox, the overlay, --masks-png", async () => {
    const r = await auto(join(dir, "a.png"), "auto-one", "--masks-png");
    assert.equal(r.code, 0, r.err);
    assert.equal(r.err, "");
    const out = join(root, "auto-one");
    const records = JSON.parse(readFileSync(join(out, "a.json"), "utf8"));
    assert.ok(records.length >= 3, `${records.length} masks`);
    assert.match(
      r.out,
      new RegExp(
        `^segmented 1 image \\(${records.length} masks\\) in [\\d.]+ s; wrote ${records.length + 2} files to `,
      ),
    );
    for (const [k, rec] of records.entries()) {
      assert.equal(typeof rec.segmentation.counts, "string");
      assert.deepEqual(rec.segmentation.size, [200, 300]);
      const mask = rleDecode(rleFromString(rec.segmentation));
      const area = mask.data.reduce((s: number, v: number) => s + v, 0);
      assert.equal(rec.area, area);
      assert.ok(area > 0);
      assert.deepEqual(rec.bbox, extent(mask));
      assert.ok(rec.predicted_iou > 0.15 && rec.stability_score >= 0.5);
      assert.deepEqual(rec.crop_box, [0, 0, 300, 200]);
      const png = await readRawMask(join(out, "a", `mask-${k}.png`));
      assert.deepEqual(
        png.data,
        mask.data.map((v) => v * 255),
      );
    }
    assert.equal(existsSync(join(out, "a", `mask-${records.length}.png`)), false);
    assert.deepEqual(await readImageSize(join(out, "a.overlay.png")), { width: 300, height: 200 });
  });

  it("a directory: one COCO file that passes the schema, an overlay per image, the bad image named and skipped", async () => {
    const r = await auto(dir, "auto-dir");
    assert.equal(r.code, 0, r.err);
    assert.match(r.err, /^skipped .*auto-in\/broken\.png: /);
    assert.equal(r.errLines.length, 1);
    assert.match(r.out, /^segmented 2 images \(\d+ masks\), skipped 1 in /);
    const out = join(root, "auto-dir");
    const coco = JSON.parse(readFileSync(join(out, "annotations.json"), "utf8"));
    assert.equal(AmgCocoInstancesSchema.safeParse(coco).success, true);
    const plain = {
      ...coco,
      annotations: coco.annotations.map(({ score: _s, stability_score: _t, ...a }: Record<string, unknown>) => a),
    };
    assert.equal(CocoInstancesSchema.safeParse(plain).success, true);
    assert.deepEqual(coco.images, [
      { id: 1, file_name: "a.png", width: 300, height: 200 },
      { id: 2, file_name: "b.png", width: 120, height: 160 },
    ]);
    assert.deepEqual(coco.categories, [{ id: 1, name: "object" }]);
    assert.ok(coco.annotations.some((a: { image_id: number }) => a.image_id === 2));
    for (const a of coco.annotations) {
      const rle = rleFromString(a.segmentation);
      assert.equal(a.area, rleArea(rle));
      assert.ok(a.area > 0);
      assert.deepEqual(a.bbox, rleToBbox(rle));
      assert.ok(a.score > 0.15 && a.score < 1 && a.stability_score >= 0.5 && a.iscrowd === 0);
    }
    assert.deepEqual(await readImageSize(join(out, "a.overlay.png")), { width: 300, height: 200 });
    assert.deepEqual(await readImageSize(join(out, "b.overlay.png")), { width: 120, height: 160 });
    for (const f of ["a.json", "broken.overlay.png", "a"]) assert.equal(existsSync(join(out, f)), false, f);
    // a training set as it is: the COCO file with --images at the segmented folder
    const inspect = await runCli(["data", "inspect", out, "--format", "coco", "--images", dir, "--json"]);
    assert.equal(inspect.code, 0, inspect.err);
    const report = JSON.parse(inspect.out);
    assert.equal(report.pairs, 2);
    assert.deepEqual(
      report.classes.map((c: { name: string }) => c.name),
      ["background", "object"],
    );
    assert.ok(report.classes[1].pixels > 0);
    const without = await runCli(["data", "inspect", out, "--format", "coco", "--json"]);
    assert.equal(without.code, 1);
    assert.match(
      without.err,
      /image 1: image file not found: .*auto-dir\/a\.png \(file_names are relative to the dataset directory; --images names another\)/,
    );
  });

  it("reports missing flags, prompts, bad values and a folder without a usable image as one line", async () => {
    const missing = await runCli(["sam", "auto", "--model", model, "--out", join(root, "x")]);
    assert.equal(missing.code, 1);
    assert.equal(missing.err, "segkit: missing --image. usage: segkit sam auto --model DIR --image IMG|DIR --out DIR");
    const prompt = await auto(dir, "x", "--point", "5,5");
    assert.match(prompt.err, /^segkit: sam auto takes no prompts/);
    const thresh = await auto(dir, "x", "--box-nms-thresh", "2");
    assert.equal(thresh.code, 1);
    assert.match(thresh.err, /^segkit: boxNmsThresh must be a number in \[0, 1\], got 2$/);
    const into = await runCli(["sam", "auto", "--model", model, "--image", dir, "--out", dir]);
    assert.match(into.err, /^segkit: .*auto-in: the output directory is the input directory/);
    await mkdir(join(root, "only-bad"));
    await writeFile(join(root, "only-bad", "c.jpg"), "");
    const none = await auto(join(root, "only-bad"), "x2");
    assert.equal(none.code, 1);
    assert.equal(none.errLines.length, 2);
    assert.match(none.errLines[0] ?? "", /^skipped .*only-bad\/c\.jpg: /);
    assert.equal(
      none.errLines[1],
      `segkit: ${join(root, "only-bad")}: no image could be segmented (1 skipped). ` +
        "give an image file or a directory of JPEG/PNG/WebP/TIFF/GIF images",
    );
    const help = await runCli(["sam", "--help"]);
    assert.match(help.out, /auto \[options\]\s+segment everything/);
    assert.match(help.out, /pull \[options\] <repo-id>/);
  });
});

/** The RGB pixel reader of a PNG (x, y) -> [r, g, b]. */
async function readRawRgb(file: string): Promise<(x: number, y: number) => number[]> {
  const { readImage } = await import("../index.js");
  const img = await readImage(file);
  return (x, y) => Array.from(img.data.subarray((y * img.width + x) * 3, (y * img.width + x) * 3 + 3));
}
