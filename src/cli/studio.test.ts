import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { watch } from "node:fs";
import { readdir, readFile, rm, writeFile } from "node:fs/promises";
import { request } from "node:http";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { initBackend, openCoco, openProjectStore } from "../index.js";
import { runCli } from "../test-utils/cli.js";
import { makeImagesDir, rectRle } from "../test-utils/studio.js";

const MAIN = fileURLToPath(new URL("./main.ts", import.meta.url));

let root: string;
let images: string;
let kills: string;
let killsRoot: string;
before(async () => {
  ({ root, images } = await makeImagesDir({ "a.png": [120, 90], "b.png": [30, 20] }));
  const many = Object.fromEntries(
    Array.from({ length: 12 }, (_, i) => [`k${String(i).padStart(2, "0")}.png`, [120, 90]]),
  );
  ({ root: killsRoot, images: kills } = await makeImagesDir(many as Record<string, [number, number]>));
});
after(async () => {
  await rm(root, { recursive: true, force: true });
  await rm(killsRoot, { recursive: true, force: true });
});

interface Child {
  child: ChildProcess;
  url: string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>;
}

/** `segkit studio ARGS` in a child process (tsx), resolved once it printed its URL. */
function startStudio(args: string[]): Promise<Child> {
  const script = `import { main } from ${JSON.stringify(MAIN)}; process.exitCode = await main(process.argv.slice(1));`;
  const child = spawn(
    process.execPath,
    ["--import", "tsx", "--input-type=module", "-e", script, "--", "studio", ...args],
    {
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  let stdout = "";
  let stderr = "";
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>(
    (resolve) => child.on("exit", (code, signal) => resolve({ code, signal, stdout, stderr })),
  );
  return new Promise((resolve, reject) => {
    child.stderr.on("data", (c: Buffer) => {
      stderr += c.toString();
    });
    child.stdout.on("data", (c: Buffer) => {
      stdout += c.toString();
      const url = /open (http:\/\/\S+)/.exec(stdout)?.[1];
      if (url) resolve({ child, url, exited });
    });
    void exited.then((e) => reject(new Error(`studio exited (${e.code}) before printing its URL: ${e.stderr}`)));
  });
}

/** PUT of one image's annotations; `onSent` runs once the body is on its way. */
function put(
  url: string,
  id: string,
  body: unknown,
  onSent?: () => void,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: hostname,
        port,
        method: "PUT",
        path: `/api/images/${encodeURIComponent(id)}/annotations`,
        headers: { "Content-Type": "application/json" },
      },
      (res) => {
        let text = "";
        res.on("data", (c: Buffer) => {
          text += c.toString();
        });
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) }));
      },
    );
    req.on("error", reject);
    req.on("finish", () => onSent?.());
    req.end(JSON.stringify(body));
  });
}

/** The instances of change `k`: k rectangles of varying size, so each revision's file differs. */
const instancesOf = (k: number) =>
  Array.from({ length: 1 + (k % 25) }, (_, j) => ({
    id: `r${k}-${j}`,
    classId: 1 + (j % 2),
    rle: rectRle(120, 90, j % 100, (j * 3) % 80, (j % 100) + 1 + (k % 20), 90),
    source: "manual",
  }));

describe("segkit studio", () => {
  test("refuses --classes with --classes-file, a missing images directory and --prelabel-points 0, with one line", async () => {
    const both = await runCli(["studio", images, "--classes", "a", "--classes-file", "f.txt", "--port", "0"]);
    assert.equal(both.code, 1);
    assert.match(both.err, /give --classes or --classes-file, not both/);
    const missing = await runCli(["studio", join(root, "nope"), "--port", "0"]);
    assert.equal(missing.code, 1);
    assert.match(missing.err, /nope: images directory not found/);
    const points = await runCli(["studio", images, "--prelabel-points", "0", "--port", "0"]);
    assert.equal(points.code, 1);
    assert.match(points.err, /--prelabel-points must be an integer >= 1/);
  });

  test("serves until SIGTERM, then finishes and exits 0; segkit train --format coco trains on the project", async () => {
    const classes = join(root, "classes.txt");
    await writeFile(classes, "cat\ndog\n");
    const out = join(root, "term");
    const s = await startStudio([images, "--port", "0", "--classes-file", classes, "--out", out]);
    const a = [{ id: "c", classId: 1, rle: rectRle(120, 90, 10, 10, 60, 50), source: "sam" }];
    const b = [{ id: "d", classId: 2, rle: rectRle(30, 20, 5, 5, 20, 15), source: "manual" }];
    assert.deepEqual(await put(s.url, "a.png", { baseRevision: 0, state: "done", instances: a }), {
      status: 200,
      body: { revision: 1 },
    });
    assert.deepEqual(await put(s.url, "b.png", { baseRevision: 0, state: "done", instances: b }), {
      status: 200,
      body: { revision: 1 },
    });
    s.child.kill("SIGTERM");
    const e = await s.exited;
    assert.equal(e.code, 0, e.stderr);
    assert.match(e.stdout, /segkit studio: 2 images in .*photos, no model \(manual tools only\)/);
    assert.match(e.stdout, /stopped \(SIGTERM\); 2 changes saved/);
    const json = JSON.parse(await readFile(join(out, "annotations.json"), "utf8"));
    assert.deepEqual(json.categories, [
      { id: 1, name: "cat" },
      { id: 2, name: "dog" },
    ]);

    await initBackend();
    const config = join(root, "tiny.json");
    await writeFile(
      config,
      JSON.stringify({ model: { arch: "unet", options: { baseFilters: 4, depth: 2 } }, batchSize: 1, augment: false }),
    );
    const run = join(root, "run");
    const args = [
      "--format",
      "coco",
      out,
      "--images",
      images,
      "--size",
      "32",
      "--epochs",
      "1",
      "--val-fraction",
      "0.5",
    ];
    const trained = await runCli(["train", ...args, "--config", config, "--out", run]);
    assert.equal(trained.code, 0, trained.err);
    // trained on the project: 1 image of 2 validated, the classes background + the studio's
    assert.match(
      trained.out,
      /best epoch 1 of 1: val mIoU [\d.]+ \(background [\d.]+, cat [\d.]+, dog (n\/a|[\d.]+)\)/,
    );
    const data = JSON.parse(await readFile(join(run, "data.json"), "utf8"));
    assert.deepEqual(data.dataset, { format: "coco", images });

    // the trained model offers pre-labels: what it predicts for b.png, as instances of the project's classes
    const again = await startStudio([images, "--port", "0", "--out", out, "--prelabel-model", run]);
    const { hostname, port } = new URL(again.url);
    const pre = await fetch(`http://${hostname}:${port}/api/images/b.png/prelabel`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ baseRevision: 1, from: "model" }),
    });
    const answer = (await pre.json()) as { revision: number; added: number };
    assert.equal(pre.status, 200, JSON.stringify(answer));
    assert.equal(answer.revision, 2);
    const saved = (await (await fetch(`http://${hostname}:${port}/api/images/b.png/annotations`)).json()) as {
      instances: { classId: number; source: string }[];
    };
    assert.equal(saved.instances.length, 1 + answer.added);
    assert.deepEqual(saved.instances[0], { ...b[0] });
    for (const inst of saved.instances.slice(1)) {
      assert.equal(inst.source, "prelabel");
      assert.ok(inst.classId === 1 || inst.classId === 2);
    }
    again.child.kill("SIGTERM");
    assert.equal((await again.exited).code, 0);
  });

  test("killed (SIGKILL) during writes, annotations.json is a committed state: acknowledged changes in, at most the ones under way more", async () => {
    // 6 writers, each changing its own 2 images one change at a time: up to 6 changes are queued or being written
    const ids = Array.from({ length: 12 }, (_, i) => `k${String(i).padStart(2, "0")}.png`);
    const content = (image: number, revision: number) => instancesOf(7 * revision + image);
    for (let round = 0; round < 4; round++) {
      const out = join(root, `kill-${round}`);
      const s = await startStudio([kills, "--port", "0", "--classes", "cat,dog", "--out", out]);
      const killAfter = 5 + Math.floor(Math.random() * 60);
      const acked = ids.map(() => 0);
      let total = 0;
      let killed = false;
      const kill = () => {
        if (killed) return;
        killed = true;
        s.child.kill("SIGKILL");
      };
      // odd rounds: killed right after an acknowledgement; even rounds: when the next write's temporary file
      // appears (an event of the file system), so that the kill lands between its creation and the rename
      let armed = false;
      const watcher = watch(out, (_event, name) => {
        if (armed && name?.endsWith(".tmp")) kill();
      });
      const writer = async (w: number) => {
        for (let j = 0; !killed; j++) {
          const image = 2 * w + (j % 2);
          const revision = (acked[image] as number) + 1;
          const body = { baseRevision: revision - 1, state: "in-progress", instances: content(image, revision) };
          const r = await put(s.url, ids[image] as string, body).catch(() => undefined);
          if (!r) return; // the server is gone
          assert.deepEqual(r, { status: 200, body: { revision } });
          acked[image] = revision;
          if (++total === killAfter) {
            if (round % 2 === 1) kill();
            else armed = true;
          }
        }
      };
      try {
        await Promise.all(Array.from({ length: 6 }, (_, w) => writer(w)));
      } finally {
        watcher.close();
        s.child.kill("SIGKILL");
      }
      const e = await s.exited;
      assert.equal(e.signal, "SIGKILL");
      // the file parses; each image holds its acknowledged change or the one under way, with exactly its instances
      const json = JSON.parse(await readFile(join(out, "annotations.json"), "utf8"));
      let sum = 0;
      const byFile = new Map<string, number>(
        json.images.map((i: { id: number; file_name: string }) => [i.file_name, i.id]),
      );
      for (const [image, id] of ids.entries()) {
        const revision = (json.segkit.images[id]?.revision ?? 0) as number;
        const a = acked[image] as number;
        assert.ok(revision === a || revision === a + 1, `${id}: revision ${revision}, acknowledged ${a}`);
        sum += revision;
        const anns = json.annotations.filter((x: { image_id: number }) => x.image_id === byFile.get(id));
        const expected = revision ? content(image, revision) : [];
        assert.deepEqual(
          anns.map((x: { segmentation: unknown; category_id: number }) => [x.category_id, x.segmentation]),
          expected.map((i) => [i.classId, i.rle]),
        );
      }
      assert.equal(json.segkit.revision, sum);
      assert.ok(sum >= killAfter);
      // and it opens again: the store continues from it, the coco reader reads it
      const store = await openProjectStore({ imagesDir: kills, outDir: out });
      assert.equal(store.revision, sum);
      assert.deepEqual(await readdir(out), ["annotations.json"], "the temporary file of a cut write is removed");
      const ds = await openCoco(out, { images: kills, ignoreIndex: 255, strict: true });
      assert.equal(ds.length, json.images.length);
    }
  });
});
