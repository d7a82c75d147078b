// The threaded-SIMD wasm build started by segkit in Node: it runs the threads it is asked for, computes what the
// single-threaded build computes (conv2d, matMul, a training step through segkit's gradient kernels), lets the
// process exit by itself, and falls back to one thread with a warning when its workers cannot start.
// Each build needs its own process (the wasm module cannot be swapped under live tensors): this file doubles as
// the child script, run with SEGKIT_THREADS_CHILD=<threads>, which prints its results as JSON.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import * as tf from "@tensorflow/tfjs";
import { createRng } from "../core/random.js";
import { DEFAULT_INIT_BACKEND_OPTIONS, initBackend, wasmThreads } from "./init.js";
import { defaultWasmThreads } from "./threads.js";

interface Results {
  threads: number | undefined;
  warnings: string[];
  values: Record<string, number[]>;
}

function randomTensor(shape: number[], seed: number): tf.Tensor {
  const rng = createRng(seed);
  const values = Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => rng.uniform(-1, 1));
  return tf.tensor(values, shape);
}

/** conv2d and matMul large enough for XNNPACK to split, and one SGD step of a small conv net (loss, new weights). */
function compute(): Record<string, number[]> {
  return tf.tidy(() => {
    const x = randomTensor([2, 32, 32, 8], 1) as tf.Tensor4D;
    const conv = tf.conv2d(x, randomTensor([3, 3, 8, 16], 2) as tf.Tensor4D, 1, "same");
    const matMul = tf.matMul(randomTensor([256, 96], 3), randomTensor([96, 64], 4));
    const weights = {
      w1: tf.variable(randomTensor([3, 3, 8, 16], 5).mul(0.3)),
      w2: tf.variable(randomTensor([3, 3, 16, 16], 6).mul(0.2)),
      w3: tf.variable(randomTensor([2, 2, 8, 16], 7).mul(0.3)),
      w4: tf.variable(randomTensor([1, 1, 8, 3], 8).mul(0.5)),
    };
    const labels = tf.oneHot(
      tf.tensor1d(
        Array.from({ length: 2 * 32 * 32 }, (_, i) => (i * 7) % 3),
        "int32",
      ),
      3,
    );
    const loss = () => {
      const h1 = tf.relu(tf.conv2d(x, weights.w1 as tf.Tensor4D, 1, "same"));
      const h2 = tf.relu(tf.conv2d(tf.maxPool(h1, 2, 2, "valid"), weights.w2 as tf.Tensor4D, 1, "same"));
      const up = tf.conv2dTranspose(h2, weights.w3 as tf.Tensor4D, [2, 32, 32, 8], 2, "same");
      const logits = tf.conv2d(tf.relu(up), weights.w4 as tf.Tensor4D, 1, "valid");
      return tf.losses.softmaxCrossEntropy(labels, logits.reshape([-1, 3])) as tf.Scalar;
    };
    const { value, grads } = tf.variableGrads(loss);
    const out: Record<string, number[]> = {
      conv: Array.from(conv.dataSync()),
      matMul: Array.from(matMul.dataSync()),
      loss: Array.from(value.dataSync()),
    };
    for (const [name, w] of Object.entries(weights)) {
      const grad = grads[w.name];
      assert.ok(grad);
      out[name] = Array.from(w.sub(grad.mul(0.5)).dataSync());
      w.dispose();
    }
    return out;
  });
}

/** Runs this file as the child script with `threads`; extra Node flags (for example `--import`) go first. */
function runChild(threads: number, nodeFlags: string[] = []): Promise<{ code: number | null; results: Results }> {
  const file = fileURLToPath(import.meta.url);
  const child = spawn(process.execPath, ["--import", "tsx", ...nodeFlags, file], {
    env: { ...process.env, SEGKIT_THREADS_CHILD: String(threads) },
    stdio: ["ignore", "pipe", "inherit"],
  });
  let stdout = "";
  child.stdout.on("data", (chunk: Buffer) => {
    stdout += chunk.toString();
  });
  // no process.exit in the child: it must end by itself, so a lingering worker shows up as this timeout
  const timer = setTimeout(() => child.kill(), 15_000);
  return new Promise((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (code) => {
      clearTimeout(timer);
      try {
        resolve({ code, results: JSON.parse(stdout) as Results });
      } catch {
        reject(new Error(`child (threads ${threads}) exited with ${code} and printed: ${stdout.slice(0, 500)}`));
      }
    });
  });
}

function assertClose(actual: number[] | undefined, expected: number[] | undefined, what: string): void {
  assert.ok(actual && expected && actual.length === expected.length && actual.length > 0, what);
  const scale = Math.max(...expected.map(Math.abs), 1e-30);
  const maxDiff = Math.max(...actual.map((v, i) => Math.abs(v - (expected[i] ?? Number.NaN))));
  assert.ok(maxDiff / scale < 1e-5, `${what}: relative difference ${maxDiff / scale}`);
}

if (process.env.SEGKIT_THREADS_CHILD) {
  const warnings: string[] = [];
  console.warn = (...args: unknown[]) => warnings.push(args.join(" "));
  await initBackend({ backend: "wasm", threads: Number(process.env.SEGKIT_THREADS_CHILD) });
  const values = compute();
  process.stdout.write(JSON.stringify({ threads: wasmThreads(), warnings, values } satisfies Results));
} else {
  const { describe, it } = await import("node:test");

  describe("threaded wasm build", () => {
    it("defaults to the logical cores and runs the threads asked for", async () => {
      assert.equal(DEFAULT_INIT_BACKEND_OPTIONS.threads, defaultWasmThreads());
      assert.equal(await initBackend({ threads: 2 }), "wasm");
      assert.equal(wasmThreads(), 2);
    });

    it("computes what the single-threaded build does, and its process exits by itself", async () => {
      const [single, threaded] = await Promise.all([runChild(1), runChild(2)]);
      assert.equal(single.results.threads, 1);
      assert.equal(threaded.results.threads, 2);
      assert.equal(threaded.code, 0, "the threaded child did not exit by itself");
      assert.equal(single.code, 0);
      assert.deepEqual(threaded.results.warnings, []);
      await initBackend({ threads: 2 });
      const here = compute(); // threaded, in this process
      for (const [name, expected] of Object.entries(single.results.values)) {
        assertClose(threaded.results.values[name], expected, `${name} (threaded child)`);
        assertClose(here[name], expected, `${name} (threaded, test process)`);
      }
    });

    it("falls back to the single-threaded build with a one-line warning when its workers cannot start", async () => {
      const failInWorkers = `data:text/javascript,${encodeURIComponent(
        'import { isMainThread } from "node:worker_threads"; if (!isMainThread) throw new Error("no workers here");',
      )}`;
      const { code, results } = await runChild(2, ["--import", failInWorkers]);
      assert.equal(code, 0);
      assert.equal(results.threads, 1);
      assert.equal(results.warnings.length, 1);
      assert.match(results.warnings[0] ?? "", /threaded wasm build did not start.*one thread/);
      assert.ok(results.values.loss?.every(Number.isFinite));
    });
  });
}
