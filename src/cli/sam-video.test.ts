import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { readMask } from "../io/mask.js";
import { rleArea } from "../masks/rle.js";
import { runCli } from "../test-utils/cli.js";

const SAM = join(import.meta.dirname, "..", "sam", "fixtures");
const MODEL = join(SAM, "models", "sam2-ailia");
const CLIP = join(SAM, "sam2", "clip");
const REFS = JSON.parse(readFileSync(join(SAM, "sam2", "video-refs.json"), "utf8"));

describe("segkit sam video", () => {
  const dir = mkdtempSync(join(tmpdir(), "segkit-sam-video-"));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("--prompts: a point, then forward; masks, overlays and result.json as the official predictor's", async () => {
    // (one object: the two-object and backward cases are compared frame by frame in src/sam/video.test.ts)
    const steps = REFS.scenarios.point as { step: Record<string, unknown>; frames: unknown[] }[];
    const prompts = join(dir, "steps.json");
    writeFileSync(prompts, JSON.stringify(steps.map((s) => s.step)));
    const out = join(dir, "two");
    const r = await runCli(["sam", "video", "--model", MODEL, "--frames", CLIP, "--prompts", prompts, "--out", out]);
    assert.equal(r.code, 0, r.err);
    assert.deepEqual(r.outLines, [`tracked 1 object(s) over 8 of 8 frames; wrote ${join(out, "result.json")}`]);
    const result = JSON.parse(readFileSync(join(out, "result.json"), "utf8"));
    const last = steps.at(-1)?.frames as { objects: { id: number; mask: Parameters<typeof rleArea>[0] }[] }[];
    assert.equal(result.frames.length, 8);
    for (const [i, f] of result.frames.entries()) {
      assert.equal(f.frame, `0000${i}.png`);
      for (const [j, o] of f.objects.entries()) {
        const want = last[i]?.objects[j];
        assert.equal(o.id, want?.id);
        // areas within 0.1% of the reference (masks are compared pixel by pixel in src/sam/video.test.ts)
        const area = rleArea(want?.mask ?? { size: [0, 0], counts: [0] });
        assert.ok(
          Math.abs(o.area - area) <= Math.max(1, area / 1000),
          `frame ${i} object ${o.id}: ${o.area} vs ${area}`,
        );
        const png = await readMask(join(out, o.mask), { threshold: 128 });
        assert.equal(
          png.data.reduce((a: number, v: number) => a + v, 0),
          o.area,
        );
      }
    }
    const overlay = readFileSync(join(out, "overlay", "00003.png"));
    assert.ok(overlay.length > 0);
  });

  it("bad input is one line: no prompt, a malformed steps file, frames that are not there", async () => {
    const base = ["sam", "video", "--model", MODEL, "--out", join(dir, "bad")];
    const none = await runCli([...base, "--frames", CLIP]);
    assert.equal(none.code, 1);
    assert.match(none.err, /give --point or --box \(with --frame and --object\), or --prompts steps.json/);
    const steps = join(dir, "bad.json");
    writeFileSync(steps, JSON.stringify([{ frame: 0, object: 1, points: [[1, 2]], labels: [1, 0] }]));
    const mismatch = await runCli([...base, "--frames", CLIP, "--prompts", steps]);
    assert.deepEqual(mismatch.errLines, [`segkit: ${steps}: step 0: 1 points but 2 labels`]);
    writeFileSync(steps, JSON.stringify([{ propagate: "sideways" }]));
    const sideways = await runCli([...base, "--frames", CLIP, "--prompts", steps]);
    assert.equal(sideways.code, 1);
    assert.match(sideways.err, /bad.json: step 0/);
    const missing = await runCli([...base, "--frames", join(dir, "nowhere"), "--point", "1,1"]);
    assert.deepEqual(missing.errLines, [`segkit: ${join(dir, "nowhere")}: no such file or directory`]);
  });
});
