import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import * as tf from "@tensorflow/tfjs";
import { SegkitError } from "../core/errors.js";
import { binaryCrossEntropy, crossEntropy, diceLoss, focalLoss, type LossFn } from "./losses.js";
import { createLoss, LOSS_NAMES, type LossConfig } from "./registry.js";

await tf.setBackend("cpu");

interface Reference {
  logits: Record<string, { shape: number[]; data: number[] }>;
  targets: Record<string, { shape: number[]; data: number[] }>;
  cases: { name: string; logits: string; target: string; loss: LossConfig; expected: number; grad: number[] }[];
}

/** Made by scripts/losses_reference.py with PyTorch (see its header for what each value is). */
const reference = JSON.parse(
  readFileSync(new URL("./fixtures/torch-reference.json", import.meta.url), "utf8"),
) as Reference;

const value = (fn: () => tf.Scalar): number => {
  const s = fn();
  const v = s.dataSync()[0] as number;
  s.dispose();
  return v;
};

/** The loss and its gradient w.r.t. the logits (flattened NHWC); frees what it makes. */
function withGrad(loss: LossFn, yTrue: tf.Tensor, yPred: tf.Tensor): { loss: number; grad: Float32Array } {
  const { value: v, grad } = tf.valueAndGrad((x: tf.Tensor) => loss(yTrue, x))(yPred);
  const out = { loss: v.dataSync()[0] as number, grad: grad.dataSync() as Float32Array };
  tf.dispose([v, grad]);
  return out;
}

const assertClose = (actual: number, expected: number, tol: number, what: string) =>
  assert.ok(Math.abs(actual - expected) <= tol, `${what}: ${actual} vs ${expected} (tolerance ${tol})`);

describe("losses against PyTorch", () => {
  for (const c of reference.cases) {
    it(c.name, () => {
      const l = reference.logits[c.logits];
      const t = reference.targets[c.target];
      assert.ok(l && t, `fixture inputs ${c.logits}, ${c.target}`);
      const yPred = tf.tensor(l.data, l.shape, "float32");
      const yTrue = tf.tensor(t.data, t.shape, "int32");
      const before = tf.memory().numTensors;
      const r = withGrad(createLoss(c.loss), yTrue, yPred);
      assert.equal(tf.memory().numTensors, before, "tensors leaked");
      assertClose(r.loss, c.expected, 1e-5, "loss");
      c.grad.forEach((g, i) => {
        assertClose(r.grad[i] as number, g, 1e-5, `d loss / d logit[${i}]`);
      });
      tf.dispose([yPred, yTrue]);
    });
  }
});

describe("losses by hand", () => {
  // Three pixels, two classes: logits (0, 0) class 0; (1, 3) class 1; (5, -5) ignored.
  const yPred = () => tf.tensor4d([0, 0, 1, 3, 5, -5], [1, 1, 3, 2]);
  const yTrue = () => tf.tensor3d([0, 1, 255], [1, 1, 3], "int32");
  const ce = (options = {}) => tf.tidy(() => value(() => crossEntropy(yTrue(), yPred(), options)));
  const a = Math.LN2; // -log softmax(0, 0)[0]
  const b = Math.log1p(Math.exp(-2)); // -log softmax(1, 3)[1]
  const b0 = Math.log1p(Math.exp(2)); // -log softmax(1, 3)[0]

  it("cross-entropy: mean over scored pixels", () => {
    assertClose(ce(), (a + b) / 2, 1e-6, "plain");
    assertClose(ce({ classWeights: [1, 3] }), (a + 3 * b) / 4, 1e-6, "weighted: sum w[y] nll / sum w[y]");
    // label smoothing 0.2: (1 - 0.2) * nll + 0.2 / 2 * (sum over classes of -log p)
    assertClose(ce({ labelSmoothing: 0.2 }), (0.8 * a + 0.1 * 2 * a + 0.8 * b + 0.1 * (b0 + b)) / 2, 1e-6, "smoothed");
    // with weights, the smoothing term weighs class c by w[c] and the denominator stays sum w[y] = 4
    const smoothedWeighted = (0.8 * a + 0.1 * (a + 3 * a) + 0.8 * 3 * b + 0.1 * (b0 + 3 * b)) / 4;
    assertClose(ce({ labelSmoothing: 0.2, classWeights: [1, 3] }), smoothedWeighted, 1e-6, "smoothed, weighted");
    // ignoreIndex 1: the class-1 pixel drops; 255, now outside the classes, has no class weight, so it drops too
    assertClose(ce({ ignoreIndex: 1 }), a, 1e-6, "ignore index 1");
  });

  it("is 0, not NaN, with a finite gradient, when every pixel is ignored", () => {
    const ignored = tf.fill([1, 2, 2], 255, "int32");
    const multi = tf.randomNormal([1, 2, 2, 3]);
    const binary = tf.randomNormal([1, 2, 2, 1]);
    for (const name of LOSS_NAMES) {
      const x = name.startsWith("bce") ? binary : multi;
      const r = withGrad(createLoss(name), ignored, x);
      assert.ok(r.loss === 0, `${name}: ${r.loss}`); // === 0 accepts -0
      assert.ok(
        r.grad.every((g) => g === 0),
        `${name} gradient ${r.grad}`,
      );
    }
    tf.dispose([ignored, multi, binary]);
  });

  it("dice: absent classes cost nothing but count in the mean", () => {
    // One pixel of class 0, perfectly predicted in the limit; class 1 absent, class 2 absent.
    const d = tf.tidy(() =>
      value(() => diceLoss(tf.tensor3d([0], [1, 1, 1], "int32"), tf.tensor4d([30, 0, 0], [1, 1, 1, 3]))),
    );
    assertClose(d, 0, 1e-6, "perfect on the present class, absent classes 0");
    const w = tf.tidy(() =>
      value(() => diceLoss(tf.tensor3d([0], [1, 1, 1], "int32"), tf.tensor4d([0, 0, 0], [1, 1, 1, 3]))),
    );
    // p = 1/3 for class 0: dice = (2/3) / (1/3 + 1) = 1/2, loss 1/2, mean over 3 classes
    assertClose(w, 0.5 / 3, 1e-6, "uniform prediction");
  });
});

describe("gradients against central differences", () => {
  // B=1, H=2, W=3; one ignored pixel; class 2 absent in the multiclass target.
  const multi = tf.tensor4d(
    [0.3, -1.2, 0.8, 1.5, 0.1, -0.4, -0.7, 0.9, 0.2, 2.1, -1.5, 0.6, 0.0, 0.4, -0.9, -1.1, 1.3, 0.5],
    [1, 2, 3, 3],
  );
  const multiTrue = tf.tensor3d([0, 1, 255, 0, 1, 1], [1, 2, 3], "int32");
  const binary = tf.tensor4d([0.3, -1.2, 0.8, 1.5, -0.4, -2.0], [1, 2, 3, 1]);
  const binaryTrue = tf.tensor3d([1, 0, 255, 1, 0, 1], [1, 2, 3], "int32");
  const cases: [string, LossConfig, "multi" | "binary"][] = [
    ["ce, weights + smoothing", { loss: "ce", options: { classWeights: [0.5, 2, 1], labelSmoothing: 0.1 } }, "multi"],
    ["bce", "bce", "binary"],
    ["dice", { loss: "dice", options: { smooth: 1 } }, "multi"],
    ["dice binary", "dice", "binary"],
    ["focal alpha 0.25", { loss: "focal", options: { alpha: 0.25 } }, "multi"],
    ["focal binary gamma 1.5", { loss: "focal", options: { gamma: 1.5 } }, "binary"],
    ["ce+dice", "ce+dice", "multi"],
  ];
  for (const [name, config, kind] of cases) {
    it(name, () => {
      const [x, y] = kind === "multi" ? [multi, multiTrue] : [binary, binaryTrue];
      const loss = createLoss(config);
      const { grad } = withGrad(loss, y, x);
      const base = x.dataSync() as Float32Array;
      const h = 1e-2; // float32: roundoff ~1e-7/h, truncation ~h^2
      const at = (i: number, d: number) => {
        const shifted = Float32Array.from(base);
        shifted[i] = (shifted[i] as number) + d;
        return tf.tidy(() => value(() => loss(y, tf.tensor(shifted, x.shape))));
      };
      for (let i = 0; i < base.length; i++) {
        const numeric = (at(i, h) - at(i, -h)) / (2 * h);
        const analytic = grad[i] as number;
        assertClose(analytic, numeric, 1e-3 + 1e-2 * Math.abs(numeric), `d/dx[${i}]`);
      }
    });
  }
});

describe("loss registry and options", () => {
  const x = () => tf.zeros([1, 2, 2, 3]);
  const y = () => tf.zeros([1, 2, 2], "int32");

  it("creates every registered name, leak-free", () => {
    const multi = tf.randomNormal([2, 3, 3, 3]);
    const binary = tf.randomNormal([2, 3, 3, 1]);
    const labels = tf.tensor3d([0, 1, 2, 255, 1, 1, 0, 0, 2, 1, 1, 0, 255, 0, 1, 1, 0, 0], [2, 3, 3], "int32");
    const binaryLabels = tf.minimum(labels, tf.scalar(1, "int32"));
    const before = tf.memory().numTensors;
    for (const name of LOSS_NAMES) {
      const v = name.startsWith("bce")
        ? value(() => createLoss(name)(binaryLabels, binary))
        : value(() => createLoss(name)(labels, multi));
      assert.ok(Number.isFinite(v) && v > 0, `${name}: ${v}`);
    }
    assert.equal(value(() => focalLoss(binaryLabels, binary)) > 0, true);
    assert.equal(value(() => binaryCrossEntropy(binaryLabels, binary)) > 0, true);
    assert.equal(tf.memory().numTensors, before);
    tf.dispose([multi, binary, labels, binaryLabels]);
  });

  it("sums weighted terms", () => {
    const parts = tf.tidy(() => {
      const yp = tf.randomNormal([1, 3, 3, 3], 0, 1, "float32", 7);
      const yt = tf.tensor3d([0, 1, 2, 0, 1, 2, 0, 1, 255], [1, 3, 3], "int32");
      const ce = value(() => crossEntropy(yt, yp));
      const dice = value(() => diceLoss(yt, yp, { smooth: 1 }));
      const sum = value(() =>
        createLoss({
          sum: [
            { loss: "ce", weight: 0.5 },
            { loss: { loss: "dice", options: { smooth: 1 } }, weight: 2 },
          ],
        })(yt, yp),
      );
      const cePlusDice = value(() => createLoss("ce+dice")(yt, yp));
      return [ce, dice, sum, cePlusDice];
    });
    const [ce, dice, sum, cePlusDice] = parts as [number, number, number, number];
    assertClose(sum, 0.5 * ce + 2 * dice, 1e-6, "0.5 ce + 2 dice");
    assert.ok(cePlusDice > ce, "ce+dice");
  });

  const throwsSegkit = (fn: () => unknown, message: RegExp) =>
    assert.throws(fn, (e: unknown) => e instanceof SegkitError && message.test(e.message), String(message));

  it("rejects unknown names, listing the valid ones", () => {
    throwsSegkit(
      () => createLoss("lovasz" as LossConfig),
      /unknown loss "lovasz"; valid: ce, bce, dice, focal, ce\+dice, bce\+dice/,
    );
    throwsSegkit(() => createLoss({ loss: "tversky" } as unknown as LossConfig), /unknown loss "tversky"/);
    throwsSegkit(() => createLoss({ loss: "ce+dice", options: {} } as unknown as LossConfig), /takes no options/);
    throwsSegkit(() => createLoss({ sum: [] }), /at least one/);
    throwsSegkit(() => createLoss({ sum: [{ loss: "ce", weight: -1 }] }), /item 0 has weight -1/);
  });

  it("rejects bad options with the option's name", () => {
    throwsSegkit(
      () => createLoss({ loss: "ce", options: { labelSmoothing: 1.5 } }),
      /cross-entropy option labelSmoothing/,
    );
    throwsSegkit(
      () => createLoss({ loss: "ce", options: { labelSmothing: 0.1 } as never }),
      /cross-entropy option.*labelSmothing/,
    );
    throwsSegkit(() => createLoss({ loss: "dice", options: { classWeights: [0, 0, 0] } }), /weight > 0/);
    throwsSegkit(() => createLoss({ loss: "dice", options: { eps: 0 } }), /dice option eps/);
    throwsSegkit(() => createLoss({ loss: "focal", options: { alpha: 2 } }), /focal option alpha/);
    throwsSegkit(() => createLoss({ loss: "focal", options: { gamma: -1 } }), /focal option gamma/);
    throwsSegkit(() => createLoss({ loss: "bce", options: { ignoreIndex: 0.5 } }), /ignoreIndex/);
  });

  it("rejects inputs of the wrong shape, dtype or channel count, leak-free", () => {
    const before = tf.memory().numTensors;
    tf.tidy(() => {
      throwsSegkit(() => crossEntropy(y(), x(), { classWeights: [1, 2] }), /classWeights has 2 values for 3 classes/);
      throwsSegkit(() => crossEntropy(y().toFloat(), x()), /yTrue must be int32 class indices \[1,2,2\]/);
      throwsSegkit(() => crossEntropy(tf.zeros([1, 2, 3], "int32"), x()), /got int32 \[1,2,3\]/);
      throwsSegkit(() => diceLoss(y(), tf.zeros([2, 2, 3])), /yPred must be float32 logits/);
      throwsSegkit(() => binaryCrossEntropy(y(), x()), /C = 1/);
      throwsSegkit(() => crossEntropy(y(), tf.zeros([1, 2, 2, 1])), /C >= 2/);
    });
    assert.equal(tf.memory().numTensors, before);
  });

  it("never mutates the user's options", () => {
    const options = { classWeights: [1, 2, 3], labelSmoothing: 0.1 };
    const frozen = structuredClone(options);
    tf.tidy(() => createLoss({ loss: "ce", options })(y(), x()));
    assert.deepEqual(options, frozen);
  });
});
