// The batch driver behind `segkit predict DIR` and `segkit sam auto DIR`: grouping, skipping, the single-file rule,
// progress, and an abort that keeps what is finished.
import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { SegkitError } from "../core/errors.js";
import { createImage, type RgbImage } from "../core/image.js";
import { encodePng } from "../io/write.js";
import { type ImageJob, runImageFiles } from "./batch.js";

let root: string;
let input: string;
const image = (w: number, h: number) => createImage(w, h, new Uint8Array(w * h * 3).fill(w));

before(async () => {
  root = await mkdtemp(join(tmpdir(), "segkit-batch-"));
  input = join(root, "in");
  await mkdir(input);
  // a..e in name order: a 1 px wide, b broken, c.png and c.jpg colliding, d.txt not an image, e fine
  await writeFile(join(input, "a.png"), await encodePng(image(1, 4)));
  await writeFile(join(input, "b.png"), "not a png");
  await writeFile(join(input, "c.png"), await encodePng(image(3, 2)));
  await writeFile(join(input, "c.webp"), await encodePng(image(3, 2)));
  await writeFile(join(input, "d.txt"), "notes");
  await writeFile(join(input, "e.png"), await encodePng(image(5, 2)));
});
after(() => rm(root, { recursive: true, force: true }));

/** The run's groups as lists of `name:index:width`. */
function recorder() {
  const groups: string[][] = [];
  const run = async (jobs: ImageJob[]) => void groups.push(jobs.map((j) => `${j.name}:${j.index}:${j.image.width}`));
  return { groups, run };
}

describe("runImageFiles", () => {
  it("groups in file order, reports and skips bad files in order, counts progress over the listed images", async () => {
    const { groups, run } = recorder();
    const progress: number[] = [];
    const skipped: string[] = [];
    const s = await runImageFiles(input, join(root, "out"), "hint", run, {
      batchSize: 2,
      onProgress: (done, total) => void progress.push(done, total),
      onSkip: (k) => void skipped.push(`${k.path.slice(input.length + 1)}: ${k.reason.split(" (")[0]}`),
    });
    // listing skips d.txt and c.webp (its outputs would collide with c.png's); reading skips b.png
    assert.deepEqual(groups, [["a:0:1"], ["c:2:3", "e:3:5"]]);
    assert.deepEqual(skipped, ["d.txt: not an image file", "c.webp: its outputs", "b.png: not a supported image"]);
    assert.deepEqual(progress, [0, 4, 2, 4, 4, 4]);
    assert.deepEqual([s.processed, s.skipped.length, s.stopped, s.isDir], [3, 3, false, true]);
  });

  it("check refuses an image like a read error; a single file throws only with throwOnSingleFile", async () => {
    const { groups, run } = recorder();
    const check = (img: RgbImage) => {
      if (img.width < 2) throw new SegkitError(`image ${img.width}x${img.height} is too thin`);
    };
    const s = await runImageFiles(input, join(root, "out"), "hint", run, { check });
    assert.deepEqual(groups, [["c:2:3"], ["e:3:5"]]);
    assert.match(s.skipped.map((k) => k.reason).join("\n"), /image 1x4 is too thin/);

    const single = join(input, "a.png");
    const skippedOne = await runImageFiles(single, join(root, "out"), "hint", run, { check });
    assert.deepEqual([skippedOne.processed, skippedOne.skipped.length, skippedOne.isDir], [0, 1, false]);
    await assert.rejects(
      runImageFiles(single, join(root, "out"), "hint", run, { check, throwOnSingleFile: true }),
      /image 1x4 is too thin/,
    );
  });

  it("the output directory may not be the input directory", async () => {
    await assert.rejects(runImageFiles(input, input, "write elsewhere", recorder().run), (err: SegkitError) => {
      assert.equal(err.message, "the output directory is the input directory");
      assert.equal(err.hint, "write elsewhere");
      return true;
    });
  });

  it("an abort stops before the next group, or ends a failing run as stopped; finished images stay counted", async () => {
    const controller = new AbortController();
    const groups: string[] = [];
    const s = await runImageFiles(
      input,
      join(root, "out"),
      "hint",
      async (jobs) => {
        groups.push(jobs.map((j) => j.name).join());
        controller.abort(); // as Ctrl-C during the first image
      },
      { signal: controller.signal },
    );
    assert.deepEqual(groups, ["a"]);
    assert.deepEqual([s.processed, s.stopped], [1, true]);

    const second = new AbortController();
    const failing = await runImageFiles(
      input,
      join(root, "out"),
      "hint",
      async (jobs) => {
        if (jobs[0]?.name === "c") {
          second.abort();
          throw new Error("aborted inside the model call");
        }
      },
      { signal: second.signal },
    );
    assert.deepEqual([failing.processed, failing.stopped], [1, true]);
    // without an abort, the run's error is the caller's
    await assert.rejects(
      runImageFiles(input, join(root, "out"), "hint", async () => {
        throw new Error("model failed");
      }),
      /model failed/,
    );
  });
});
