import assert from "node:assert/strict";
import { mkdir, mkdtemp, readdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { checkpointDir, removeCheckpoint, replaceCheckpoint, TRAIN_STATE_FILE } from "./checkpoint.js";

let dir = "";
before(async () => {
  dir = await mkdtemp(join(tmpdir(), "segkit-checkpoint-"));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

const write = (text: string) => async (fresh: string) => {
  await mkdir(fresh, { recursive: true });
  await writeFile(join(fresh, "model.json"), text);
  await writeFile(join(fresh, TRAIN_STATE_FILE), text);
};

describe("checkpoint layout", () => {
  it("swaps a new checkpoint in, leaving only NAME/", async () => {
    const run = join(dir, "swap");
    assert.equal(await checkpointDir(run, "last"), null);
    assert.equal(await replaceCheckpoint(run, "last", write("1")), join(run, "last"));
    assert.equal(await replaceCheckpoint(run, "last", write("2")), join(run, "last"));
    assert.deepEqual(await readdir(run), ["last"]);
    assert.equal(await readFile(join(run, "last", "model.json"), "utf8"), "2");
    assert.equal(await checkpointDir(run, "last"), join(run, "last"));
  });

  it("finds .NAME.old/ when a kill came between the two renames; a marker picks what counts as complete", async () => {
    const run = join(dir, "killed");
    await replaceCheckpoint(run, "best", write("1"));
    await rename(join(run, "best"), join(run, ".best.old"));
    assert.equal(await checkpointDir(run, "best"), join(run, ".best.old"));
    await rm(join(run, ".best.old", TRAIN_STATE_FILE));
    assert.equal(await checkpointDir(run, "best"), null);
    assert.equal(await checkpointDir(run, "best", "model.json"), join(run, ".best.old"));
  });

  it("removes NAME/ and what a swap left behind, nothing else", async () => {
    const run = join(dir, "remove");
    await replaceCheckpoint(run, "best", write("1"));
    await replaceCheckpoint(run, "last", write("1"));
    await mkdir(join(run, ".best.new"));
    await mkdir(join(run, ".best.old"));
    await removeCheckpoint(run, "best");
    assert.deepEqual(await readdir(run), ["last"]);
  });
});
