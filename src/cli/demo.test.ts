// `segkit demo` through `main()`: a tiny run (fixed epochs, or a time budget of a few seconds) and its files and
// printed lines; with SEGKIT_SLOW, the real recipe learns clearly.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import * as tf from "@tensorflow/tfjs";
import { type EpochMetrics, initBackend, readMask } from "../index.js";
import { runCli } from "../test-utils/cli.js";
import { slowSkip } from "../test-utils/shared.js";

/** `segkit demo ARGS`, with stdout and stderr as lines. */
async function demo(...argv: string[]) {
  const r = await runCli(["demo", ...argv]);
  return { code: r.code, out: r.outLines, err: r.errLines };
}

const metrics = (dir: string): EpochMetrics[] =>
  readFileSync(join(dir, "metrics.jsonl"), "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l) as EpochMetrics);
const num = (line: string | undefined, re: RegExp) => Number(re.exec(line ?? "")?.[1]);

let dir: string;
before(async () => {
  await initBackend();
  dir = await mkdtemp(join(tmpdir(), "segkit-demo-"));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("segkit demo", () => {
  it("trains, predicts the validation set from best/, scores it and says where to look", async () => {
    const out = join(dir, "fixed");
    const tensors = tf.memory().numTensors;
    const r = await demo("--out", out, "--epochs", "2", "--length", "20", "--size", "32");
    assert.equal(r.code, 0, r.err.join("\n"));
    assert.equal(tf.memory().numTensors, tensors, "tensors leaked");
    assert.match(
      r.err[0] ?? "",
      /^segkit demo: a U-Net .* on 16 synthetic 32x32 images, validating on 4; 2 epochs on /,
    );
    assert.deepEqual(
      r.err.filter((l) => l.startsWith("epoch ")).map((l) => l.split("  ")[0]),
      ["epoch 1/2", "epoch 2/2"],
    );

    // the files: the run, 4 class-index masks at the image size, the evaluation
    const files = await readdir(out);
    for (const f of ["best", "last", "metrics.jsonl", "report.html", "predictions", "eval.json"]) {
      assert.ok(files.includes(f), f);
    }
    const masks = (await readdir(join(out, "predictions"))).sort();
    assert.equal(masks.length, 4);
    const mask = await readMask(join(out, "predictions", masks[0] as string), { numClasses: 3 });
    assert.deepEqual([mask.width, mask.height], [32, 32]);
    const report = JSON.parse(readFileSync(join(out, "eval.json"), "utf8"));
    assert.equal(report.images, 4);
    assert.deepEqual(report.problems, []);

    // the printed outcome: the untrained score, the trained one (the predictions from best/ score what fit
    // measured for the best epoch), where to look
    const history = metrics(out);
    const best = history.reduce((a, b) => (b["val/miou"] > a["val/miou"] ? b : a));
    assert.equal(r.out.length, 5, r.out.join("\n"));
    const untrained = num(r.out[0], /^untrained model: val mIoU (\d\.\d{4})$/);
    assert.ok(untrained >= 0 && untrained <= 1, r.out[0]);
    assert.ok(r.err.includes(`before training: val mIoU ${untrained.toFixed(4)} (the untrained model)`));
    const trained = num(r.out[1], /^trained model: {3}val mIoU (\d\.\d{4}) \(pet /);
    assert.ok(Math.abs(trained - report.miou) < 1e-4, `${trained} vs eval.json ${report.miou}`);
    assert.ok(Math.abs(trained - best["val/miou"]) < 0.01, `${trained} vs fit's ${best["val/miou"]}`);
    assert.match(r.out[1] ?? "", new RegExp(`best epoch ${best.epoch} of 2, \\d+ s$`));
    assert.equal(
      r.out[2],
      `report:      ${join(out, "report.html")} (learning curves, validation samples, per-class scores)`,
    );
    assert.equal(
      r.out[3],
      `predictions: ${join(out, "predictions")}/ (4 class-index PNGs), scored in ${join(out, "eval.json")}`,
    );
    assert.match(r.out[4] ?? "", new RegExp(`^checkpoint: {2}${join(out, "best")}`));

    // again into the same directory: replaced, not refused
    const again = await demo("--out", out, "--epochs", "1", "--length", "20", "--size", "32");
    assert.equal(again.code, 0, again.err.join("\n"));
    assert.equal(metrics(out).length, 1);
  });

  it("plans the epochs from the time budget after timing the first", async () => {
    const out = join(dir, "budget");
    const r = await demo("--out", out, "--minutes", "0.05", "--length", "20", "--size", "32");
    assert.equal(r.code, 0, r.err.join("\n"));
    assert.match(r.err[0] ?? "", /; about 0\.05 min on /);
    const lines = r.err.filter((l) => l.startsWith("epoch "));
    const epochs = metrics(out).length;
    assert.ok(epochs >= 1, "no epoch");
    // every epoch line shows the planned total, which is what ran
    assert.deepEqual(
      lines.map((l) => l.split("  ")[0]),
      Array.from({ length: epochs }, (_, i) => `epoch ${i + 1}/${epochs}`),
    );
    // the plan (from the run's own record, not the test's clock): the epochs after the first fit the 3 s budget at
    // the first epoch's pace
    const perEpoch = metrics(out)[0]?.seconds;
    assert.ok(perEpoch !== undefined && perEpoch > 0);
    assert.ok((epochs - 1) * perEpoch <= 3, `${epochs} epochs of ${perEpoch.toFixed(2)} s planned for a 3 s budget`);
  });

  it("learns clearly with the real recipe (8 epochs of the 2-minute run's 15 or so)", {
    skip: slowSkip(),
  }, async () => {
    const out = join(dir, "recipe");
    const r = await demo("--out", out, "--epochs", "8");
    assert.equal(r.code, 0, r.err.join("\n"));
    const untrained = num(r.out[0], /val mIoU (\d\.\d{4})/);
    const trained = num(r.out[1], /val mIoU (\d\.\d{4})/);
    assert.ok(trained > untrained + 0.3 && trained > 0.5, `untrained ${untrained}, trained ${trained}`);
  });
});
