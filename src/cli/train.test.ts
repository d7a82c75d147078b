// `segkit train` through `main()` on tiny synthetic sets (16 samples at 32x32, U-Nets of a few hundred weights):
// the run directory and the printed summary, flags over the config file, --resume, Ctrl-C, and bad config files.
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { mkdir, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import * as tf from "@tensorflow/tfjs";
import {
  CHECKPOINT_FILES,
  createImage,
  createMask,
  createModel,
  DEFAULT_UNET_OPTIONS,
  type EpochMetrics,
  encodePng,
  encoderLayers,
  initBackend,
  loadEncoderWeights,
  loadInstanceModel,
  loadModel,
  type ModelCard,
  syntheticInstanceSample,
  type TrainState,
  validateTrainConfig,
  writeMaskPng,
} from "../index.js";
import { runCli as run } from "../test-utils/cli.js";
import { readTrainConfig } from "./train.js";

const readJson = <T>(file: string): T => JSON.parse(readFileSync(file, "utf8")) as T;
const metrics = (dir: string): EpochMetrics[] =>
  readFileSync(join(dir, "metrics.jsonl"), "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l) as EpochMetrics);
const trainState = (dir: string) => readJson<TrainState>(join(dir, "last", "train-state.json"));

const TINY_JSON = {
  model: { arch: "unet", options: { baseFilters: 4, depth: 2 } },
  optimizer: { name: "sgd", lr: 0.05 },
  batchSize: 4,
  augment: false,
};
const TINY_YAML = `# a tiny U-Net
model:
  arch: unet
  options: { baseFilters: 4, depth: 2 }
optimizer: { name: adam, lr: 0.01 }
batchSize: 4
augment: false
`;
/** 16 synthetic samples: 13 to train, 3 to validate (20% held out). */
const DATA = ["--format", "synthetic", "--length", "16", "--size", "32"];

let dir: string;
let yamlConfig: string;
let jsonConfig: string;
before(async () => {
  await initBackend();
  dir = await mkdtemp(join(tmpdir(), "segkit-train-"));
  yamlConfig = join(dir, "tiny.yaml");
  jsonConfig = join(dir, "tiny.json");
  await writeFile(yamlConfig, TINY_YAML);
  await writeFile(jsonConfig, JSON.stringify(TINY_JSON));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("segkit train", () => {
  const runDir = () => join(dir, "run");

  it("trains from a YAML config, writes the run directory and prints the best epoch and where things are", async () => {
    const tensors = tf.memory().numTensors;
    const out = runDir();
    const r = await run(["train", ...DATA, "--epochs", "2", "--config", yamlConfig, "--out", out]);
    assert.equal(r.code, 0, r.err);
    assert.equal(tf.memory().numTensors, tensors, "tensors leaked");

    // the run directory: fit's files, plus data.json
    for (const name of ["metrics.jsonl", "data.json", "report.html"]) assert.ok(existsSync(join(out, name)), name);
    for (const ckpt of ["last", "best"]) {
      assert.deepEqual((await readdir(join(out, ckpt))).sort(), [...CHECKPOINT_FILES].sort());
    }
    assert.deepEqual(readJson(join(out, "data.json")), {
      path: "synthetic",
      dataset: { format: "synthetic", length: 16 },
      validation: { fraction: 0.2, seed: 0 },
    });
    // the config: the file's fields, the flags', defaults for the rest
    const cfg = trainState(out).config;
    assert.deepEqual(cfg.model, { arch: "unet", options: { baseFilters: 4, depth: 2 } });
    assert.equal(cfg.optimizer.name, "adam");
    assert.equal(cfg.optimizer.lr, 0.01);
    assert.deepEqual([cfg.batchSize, cfg.epochs, cfg.inputSize, cfg.augment, cfg.seed], [4, 2, [32, 32], false, 0]);

    // stderr: what is trained on what, then one line per epoch
    assert.equal(
      r.errLines[0],
      "training unet at 32x32 on 13 synthetic samples, validating on 3 (20% held out with seed 0); " +
        `backend wasm (${/\((\d+) threads\)/.exec(r.errLines[0] ?? "")?.[1]} threads)`,
    );
    assert.deepEqual(
      r.errLines.slice(1).map((l) => l.split("  ")[0]),
      ["epoch 1/2", "epoch 2/2"],
    );
    // stdout: the best epoch with its val mIoU as metrics.jsonl has it, the checkpoints, the files
    const history = metrics(out);
    assert.equal(history.length, 2);
    const best = history.reduce((a, b) => (b["val/miou"] > a["val/miou"] ? b : a));
    const lines = r.out.split("\n");
    assert.equal(lines.length, 3, r.out);
    assert.match(
      lines[0] ?? "",
      new RegExp(
        `^best epoch ${best.epoch} of 2: val mIoU ${best["val/miou"].toFixed(4)} \\(pet \\d\\.\\d{4}, background`,
      ),
    );
    assert.equal(lines[1], `checkpoints: best ${join(out, "best")}, last ${join(out, "last")} (epoch 2)`);
    assert.equal(lines[2], `metrics: ${join(out, "metrics.jsonl")}  report: ${join(out, "report.html")}`);
  });

  it("resumes to more epochs with the run's own data and config; refuses changes", async () => {
    const out = runDir();
    const before = metrics(out);
    const r = await run(["train", "--resume", "--epochs", "3", "--out", out]);
    assert.equal(r.code, 0, r.err);
    assert.match(r.errLines[0] ?? "", /^resuming after epoch 2: training unet at 32x32 on 13 synthetic samples/);
    assert.deepEqual(
      r.errLines.slice(1).map((l) => l.split("  ")[0]),
      ["epoch 3/3"],
    );
    const history = metrics(out);
    assert.equal(history.length, 3);
    assert.deepEqual(history.slice(0, 2), before);
    assert.equal(trainState(out).epoch, 3);
    assert.match(r.out, / of 3: val mIoU /);

    const lr = await run(["train", "--resume", "--epochs", "4", "--lr", "0.1", "--config", yamlConfig, "--out", out]);
    assert.equal(lr.code, 1);
    assert.equal(
      lr.err,
      `segkit: ${out}: --resume continues the run's own configuration: drop --config, --lr. only --epochs may ` +
        "change; start a new run (another --out, or --overwrite) to change the rest",
    );
    const done = await run(["train", "--resume", "--out", out]);
    assert.equal(done.code, 1);
    assert.match(done.err, /: the run has already trained 3 of 3 epochs\. pass --epochs with more than 3/);
    const otherData = await run(["train", "--resume", "--epochs", "4", "--out", out, ...DATA.slice(0, 2)]);
    assert.equal(otherData.code, 1);
    assert.match(otherData.err, /data\.json: cannot resume on other data than the run was started with/);
    const again = await run(["train", ...DATA, "--config", yamlConfig, "--out", out]);
    assert.equal(again.code, 1);
    assert.match(again.err, /: already holds a training run\. continue it with --resume, start again with --overwrite/);
    assert.equal(trainState(out).epoch, 3);
  });

  it("--task instance learns instances as background / boundary / interior maps; data.json keeps the task", async () => {
    const out = join(dir, "instances");
    const data = ["--format", "synthetic-instances", "--task", "instance", "--length", "8", "--size", "32"];
    const r = await run(["train", ...data, "--epochs", "1", "--config", jsonConfig, "--out", out]);
    assert.equal(r.code, 0, r.err);
    assert.match(
      r.errLines[0] ?? "",
      /^training unet at 32x32 on 6 synthetic-instances samples, validating on 2 \(20% held out/,
    );
    assert.match(r.out, /best epoch 1 of 1: val mIoU [\d.]+ \(background [\d.]+, boundary [\d.]+, disc /);
    assert.deepEqual(readJson<{ dataset: unknown }>(join(out, "data.json")).dataset, {
      format: "synthetic-instances",
      length: 8,
      task: "instance",
    });
    const card = readJson<{ classes: string[]; instances: unknown }>(join(out, "best", "card.json"));
    assert.deepEqual(card.classes, ["background", "boundary", "disc", "box", "triangle"]);
    const categories = [
      { id: 1, name: "disc" },
      { id: 2, name: "box" },
      { id: 3, name: "triangle" },
    ];
    assert.deepEqual(card.instances, { categories, boundary: 1 });
    // the run is an instance model: its maps split into instances of the categories
    const model = await loadInstanceModel(out);
    try {
      assert.deepEqual([model.kind, model.categories], ["segkit", categories]);
      const inst = await model.predict(syntheticInstanceSample(0, 0, 48).image);
      assert.deepEqual([inst.width, inst.height], [48, 48]);
      assert.ok(inst.classIds.every((c) => c >= 1 && c <= 3));
      assert.ok(inst.scores.every((v, k) => v > 0 && v <= 1 && (k === 0 || v <= (inst.scores[k - 1] as number))));
    } finally {
      await model.dispose();
    }
    const folder = await run(["train", ...DATA, "--task", "instance", "--out", join(dir, "not-instances")]);
    assert.equal(folder.code, 1);
    assert.match(folder.err, /option task does not apply to format synthetic/);
  });

  it("lets flags override the config file, and holds out --val-fraction", async () => {
    const out = join(dir, "flags");
    const r = await run([
      "train",
      ...["--format", "synthetic", "--length", "8", "--val-fraction", "0.5", "--epochs", "1"],
      ...["--config", jsonConfig, "--size", "32x64", "--batch-size", "2", "--lr", "0.02", "--seed", "5"],
      ...["--out", out],
    ]);
    assert.equal(r.code, 0, r.err);
    assert.match(r.errLines[0] ?? "", /^training unet at 32x64 on 4 synthetic samples, validating on 4 \(50% held out/);
    const cfg = trainState(out).config;
    assert.deepEqual(cfg.optimizer, { name: "sgd", lr: 0.02, momentum: 0.9, nesterov: false, weightDecay: 0 });
    assert.deepEqual([cfg.inputSize, cfg.batchSize, cfg.seed, cfg.epochs], [[32, 64], 2, 5, 1]);
    // with --format synthetic, --seed also picks the generated set
    assert.deepEqual(readJson(join(out, "data.json")), {
      path: "synthetic",
      dataset: { format: "synthetic", seed: 5, length: 8 },
      validation: { fraction: 0.5, seed: 5 },
    });
  });

  it("validates ISBI 2012 on a labelled test/ part when there is one, else on a held-out fraction", async () => {
    const root = join(dir, "isbi");
    const put = async (split: string, name: string, label: boolean) => {
      for (const d of label ? ["image", "label"] : ["image"]) {
        await mkdir(join(root, split, d), { recursive: true });
        await writeFile(join(root, split, d, name), await encodePng(createImage(32, 32)));
      }
    };
    for (const n of [0, 1, 2, 3, 4]) await put("train", `${n}.png`, true);
    // the challenge's own layout: test/image without labels is not a validation split
    await put("test", "0.png", false);
    const train = (out: string) =>
      run([
        "train",
        root,
        "--format",
        "isbi2012",
        "--size",
        "32",
        "--epochs",
        "1",
        "--config",
        yamlConfig,
        "--out",
        out,
      ]);
    const unlabelled = await train(join(dir, "isbi-fraction"));
    assert.equal(unlabelled.code, 0, unlabelled.err);
    assert.deepEqual(readJson<{ validation: unknown }>(join(dir, "isbi-fraction", "data.json")).validation, {
      fraction: 0.2,
      seed: 0,
    });
    await put("test", "7.png", true);
    await rm(join(root, "test", "image", "0.png"));
    const labelled = await train(join(dir, "isbi-test"));
    assert.equal(labelled.code, 0, labelled.err);
    assert.match(labelled.errLines[0] ?? "", /on 5 isbi2012 samples, validating on 1 \(split test\)/);
    assert.deepEqual(readJson<{ validation: unknown }>(join(dir, "isbi-test", "data.json")).validation, {
      split: "test",
    });
  });

  it("stops cleanly on Ctrl-C, saying how to resume; last/ resumes", async () => {
    const out = join(dir, "interrupted");
    const listeners = process.listenerCount("SIGINT");
    let sent = false;
    const r = await run(["train", ...DATA, "--epochs", "30", "--config", yamlConfig, "--out", out], (line) => {
      if (!sent && line.startsWith("epoch 1/30")) {
        sent = true;
        process.kill(process.pid, "SIGINT");
      }
    });
    assert.equal(r.code, 130, r.err);
    assert.equal(process.listenerCount("SIGINT"), listeners);
    const saved = trainState(out).epoch;
    assert.ok(saved >= 1 && saved < 30, `stopped after epoch ${saved}`);
    assert.equal(metrics(out).length, saved);
    assert.ok(r.errLines.includes("stopping at the next batch (Ctrl-C again to quit at once)"), r.err);
    assert.equal(
      r.errLines.at(-1),
      `interrupted: last/ holds epoch ${saved}; continue with: segkit train --resume --out ${out}`,
    );
    assert.match(r.out, new RegExp(`^best epoch \\d+ of ${saved}: val mIoU`));

    const resumed = await run(["train", "--resume", "--epochs", String(saved + 1), "--out", out]);
    assert.equal(resumed.code, 0, resumed.err);
    assert.equal(trainState(out).epoch, saved + 1);
  });

  it("reports a bad config file in one line naming the file and the field, and writes nothing", async () => {
    const cases: [string, string, RegExp][] = [
      [
        "syntax.yaml",
        "model:\n  arch: unet\n  options: [1, 2\nepochs: 3\n",
        /: not valid YAML: .* at line 4, column 1$/,
      ],
      ["syntax.json", '{"epochs": 2,}', /: not valid JSON: .* at line 1, column 14$/],
      ["unknown.yml", "epochs: 2\nlearningRate: 0.1\n", /: training config: Unrecognized key: "learningRate"$/],
      [
        "type.json",
        '{"batchSize": "eight"}',
        /: training config: batchSize: Invalid input: expected number, received string$/,
      ],
      ["nested.yaml", "optimizer: { name: adam, lr: -1 }\n", /: training config: optimizer\.lr: .*>0/],
      ["list.yaml", "- epochs: 2\n", /: a training config must be a mapping of fields/],
      ["config.toml", "epochs = 2\n", /: a training config must be a \.json, \.yaml or \.yml file$/],
    ];
    for (const [name, text, expected] of cases) {
      const file = join(dir, name);
      await writeFile(file, text);
      const out = join(dir, `bad-${name}`);
      const r = await run(["train", ...DATA, "--config", file, "--out", out]);
      assert.equal(r.code, 1, name);
      assert.equal(r.err.split("\n").length, 1, r.err);
      assert.ok(r.err.startsWith(`segkit: ${file}: `), r.err);
      assert.match(r.err, expected);
      assert.equal(existsSync(out), false, name);
    }
    const missing = await run(["train", ...DATA, "--config", join(dir, "nope.yaml"), "--out", join(dir, "x")]);
    assert.equal(missing.err, `segkit: ${join(dir, "nope.yaml")}: config file not found`);
    const size = await run(["train", ...DATA, "--size", "32x", "--out", join(dir, "x")]);
    assert.equal(size.code, 1);
    assert.match(size.err, /--size must be N \(square\) or HxW/);
  });

  it("reads the README's example config", async () => {
    const block = /A config file:\n\n```yaml\n([\s\S]*?)```/.exec(readFileSync("README.md", "utf8"))?.[1];
    assert.ok(block, "no yaml block after 'A config file:' in README.md");
    const file = join(dir, "readme.yaml");
    await writeFile(file, block);
    const cfg = validateTrainConfig(await readTrainConfig(file));
    assert.deepEqual(
      [cfg.model.arch, cfg.loss, cfg.optimizer.name, cfg.schedule.name],
      ["unet", "ce+dice", "adam", "cosine"],
    );
    assert.deepEqual([cfg.inputSize, cfg.classWeights, cfg.earlyStopping], [[128, 128], "auto", { patience: 8 }]);
  });

  it("reads every recipe; the Oxford Pet one is the defaults with 15 epochs", async () => {
    const names = (await readdir("recipes")).filter((f) => f.endsWith(".yaml")).sort();
    assert.deepEqual(names, ["camvid.yaml", "drive.yaml", "isbi2012.yaml", "oxford-pet.yaml"]);
    const recipes = new Map<string, ReturnType<typeof validateTrainConfig>>();
    for (const name of names) recipes.set(name, validateTrainConfig(await readTrainConfig(join("recipes", name))));
    const pet = recipes.get("oxford-pet.yaml");
    const unet = { arch: "unet", options: { baseFilters: 16, depth: 4 } }; // the preset's own sizes, written out
    assert.deepEqual(pet, { ...validateTrainConfig({ epochs: 15 }), model: unet });
    assert.deepEqual(
      [DEFAULT_UNET_OPTIONS.baseFilters, DEFAULT_UNET_OPTIONS.depth],
      [unet.options.baseFilters, unet.options.depth],
    );
    // the patch recipes predict in overlapping tiles
    for (const name of ["drive.yaml", "isbi2012.yaml"]) assert.equal(recipes.get(name)?.predict?.mode, "tile", name);
  });

  it("takes the dataset as --data as well as [path]; two different ones are an error", async () => {
    const data = join(dir, "folder-data");
    await mkdir(join(data, "images"), { recursive: true });
    await mkdir(join(data, "masks"), { recursive: true });
    for (let k = 0; k < 4; k++) {
      const pixels = new Uint8Array(32 * 32 * 3).map((_, i) => (i * (k + 3)) % 256);
      await writeFile(join(data, "images", `s${k}.png`), await encodePng(createImage(32, 32, pixels)));
      const mask = createMask(32, 32);
      mask.data.fill(1, 0, 16 * 32 * (k % 2));
      await writeMaskPng(join(data, "masks", `s${k}.png`), mask);
    }
    const out = join(dir, "data-flag");
    const args = ["--classes", "background,thing", "--size", "32", "--epochs", "1", "--val-fraction", "0.5"];
    const r = await run(["train", "--data", data, ...args, "--config", jsonConfig, "--out", out]);
    assert.equal(r.code, 0, r.err);
    assert.match(r.errLines[0] ?? "", /^training unet at 32x32 on 2 folder samples, validating on 2 /);
    assert.equal(readJson<{ path: string }>(join(out, "data.json")).path, data);
    const same = await run(["train", data, "--data", join(data, "."), ...args, "--out", join(dir, "same")]);
    assert.equal(same.code, 0, same.err);
    const two = await run(["train", data, "--data", dir, ...args, "--out", join(dir, "two")]);
    assert.equal(two.code, 1);
    assert.equal(two.err, `segkit: two datasets given: ${data} and --data ${dir}. give one of them`);
  });

  it("checks the validation options", async () => {
    const out = join(dir, "x");
    const both = await run(["train", ...DATA, "--val-split", "val", "--val-fraction", "0.1", "--out", out]);
    assert.equal(both.err, "segkit: give --val-split or --val-fraction, not both");
    const noTrainSplit = await run(["train", ...DATA, "--val-split", "val", "--out", out]);
    assert.equal(noTrainSplit.err, "segkit: --val-split needs --split naming the training split(s)");
    const tooFew = await run([
      "train",
      "--format",
      "synthetic",
      "--length",
      "2",
      "--val-fraction",
      "0.1",
      "--out",
      out,
    ]);
    assert.match(tooFew.err, /--val-fraction 0.1 of 2 samples leaves 2 to train and 0 to validate/);
  });

  it("--encoder-weights F --freeze-encoder 1: starts from F, keeps the encoder as loaded in epoch 1, then trains it", async () => {
    const weights = join(import.meta.dirname, "..", "models", "fixtures", "mobilenet-v2-0.35-torchvision.safetensors");
    const config = join(dir, "mobilenet.json");
    const options = { alpha: 0.35 as const, decoderFilters: [16, 8, 8, 8] };
    await writeFile(config, JSON.stringify({ model: { arch: "mobilenetv2-unet", options }, batchSize: 8 }));
    const out = join(dir, "pretrained");
    const tensors = tf.memory().numTensors;
    const args = ["train", ...DATA, "--config", config, "--out", out, "--encoder-weights", weights];
    const r = await run([...args, "--epochs", "1", "--freeze-encoder", "1"]);
    assert.equal(r.code, 0, r.err);
    assert.equal(tf.memory().numTensors, tensors, "tensors leaked");
    assert.match(
      r.errLines[0] ?? "",
      /; encoder weights from .*torchvision\.safetensors, encoder frozen for 1 epochs$/,
    );
    const card = readJson<ModelCard>(join(out, "last", "card.json"));
    assert.deepEqual(card.encoderWeights, {
      file: weights,
      format: "safetensors",
      naming: "torchvision",
      tensors: 251,
    });
    assert.equal(card.training.encoderWeights, weights);
    assert.equal(card.training.freezeEncoderEpochs, 1);

    // the file's values, as loadEncoderWeights puts them into a fresh model
    const expected = createModel("mobilenetv2-unet", { ...options, inputSize: [32, 32], numClasses: 2 });
    await loadEncoderWeights(expected, weights);
    const values = (m: tf.LayersModel) =>
      encoderLayers(m).flatMap((l) => l.getWeights().map((t) => Array.from(t.dataSync())));
    const epoch1 = await loadModel(join(out, "last"));
    // frozen: kernels and batch-norm statistics exactly as loaded after a training epoch
    assert.deepEqual(values(epoch1), values(expected));

    // epoch 2 (resumed at the boundary): the encoder trains, on a fresh optimizer
    const held = tf.memory().numTensors; // the two models above
    const again = await run(["train", "--resume", "--out", out, "--epochs", "2"]);
    assert.equal(again.code, 0, again.err);
    assert.equal(tf.memory().numTensors, held, "tensors leaked");
    const epoch2 = await loadModel(join(out, "last"));
    const [before, after] = [epoch1, epoch2].map((m) =>
      Array.from(m.getLayer("Conv1").getWeights()[0]?.dataSync() ?? []),
    );
    assert.equal(before?.length, 432);
    assert.notDeepEqual(after, before);
    assert.equal(readJson<ModelCard>(join(out, "last", "card.json")).encoderWeights?.naming, "torchvision");
    for (const m of [expected, epoch1, epoch2]) m.dispose();

    const refused = await run(["train", "--resume", "--out", out, "--epochs", "3", "--freeze-encoder", "2"]);
    assert.match(refused.err, /--resume continues the run's own configuration: drop --freeze-encoder/);
    const missing = await run([...args.slice(0, -1), join(dir, "nowhere.h5"), "--overwrite", "--epochs", "1"]);
    assert.notEqual(missing.code, 0);
    assert.match(missing.err, /nowhere\.h5: file not found/);
    // the overwritten run is still there: a bad weights file is found before anything is removed
    assert.equal(readJson<ModelCard>(join(out, "last", "card.json")).epoch, 2);
  });
});
