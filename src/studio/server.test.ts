import assert from "node:assert/strict";
import { mkdir, readFile, rename, rm, symlink, writeFile } from "node:fs/promises";
import { request } from "node:http";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import type { Mask } from "../core/image.js";
import { openCoco } from "../data/coco.js";
import { exportDataset } from "../export/dataset.js";
import type { Predictor } from "../infer/predict.js";
import { rleDecode, rleEncode, rleFromString, rleToString } from "../masks/rle.js";
import { pruneOnnx } from "../onnx/prune.js";
import { loadSamModel, type SamModel } from "../sam/model.js";
import { createSamPredictor } from "../sam/predictor.js";
import { decodeEmbeddingWire, LOW_RES_WIRE_TYPE } from "../sam/wire.js";
import { makeImagesDir, rectRle } from "../test-utils/studio.js";
import { lowResMasks } from "../web/index.js";
import { createEncoderQueue, type EmbeddingStatus } from "./encoder-queue.js";
import { accessToken, isLoopback, type StudioServer, startStudioServer } from "./server.js";
import { openProjectStore, type ProjectStore } from "./store.js";

const FIXTURE_MODEL = join(import.meta.dirname, "..", "sam", "fixtures", "models", "split");

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
  json: () => Record<string, unknown>;
}

/** One raw HTTP request: the path goes out exactly as written (fetch would normalise `..` and `%2e%2e`). */
function raw(
  base: string,
  path: string,
  options: { method?: string; headers?: Record<string, string>; body?: string | Buffer } = {},
): Promise<Reply> {
  const { hostname, port } = new URL(base);
  return new Promise((resolve, reject) => {
    const req = request(
      { host: hostname, port, path, method: options.method ?? "GET", headers: options.headers },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => {
          const body = Buffer.concat(chunks);
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body,
            json: () => JSON.parse(body.toString("utf8")),
          });
        });
      },
    );
    req.on("error", reject);
    req.end(options.body);
  });
}

const json = (body: unknown) => ({
  headers: { "Content-Type": "application/json" },
  body: JSON.stringify(body),
});

let root: string;
let images: string;
let appDir: string;
const SECRET = "top secret, never served";

before(async () => {
  ({ root, images } = await makeImagesDir({
    "a.png": [8, 6],
    "b.png": [7, 5],
    "sub/c.png": [6, 4],
    "swap.png": [4, 4],
  }));
  appDir = join(root, "app");
  await mkdir(appDir);
  await writeFile(join(appDir, "index.html"), "<!doctype html><title>studio</title>");
  await writeFile(join(appDir, "app.js"), "console.log('app')");
  await writeFile(join(appDir, "style.css"), "body{}");
  await writeFile(join(appDir, "server.js"), SECRET);
  await writeFile(join(root, "secret.txt"), SECRET);
  await mkdir(join(root, "outside"));
  await writeFile(join(root, "outside", "x.png"), await readFile(join(images, "a.png")));
  await symlink(join(root, "outside", "x.png"), join(images, "link.png"));
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

async function withServer<T>(
  out: string,
  fn: (s: StudioServer, store: ProjectStore) => Promise<T>,
  options: Partial<Parameters<typeof startStudioServer>[0]> = {},
): Promise<T> {
  const store = await openProjectStore({ imagesDir: images, outDir: join(root, out), classes: ["cat", "dog"] });
  const server = await startStudioServer({ store, appDir, ...options });
  try {
    return await fn(server, store);
  } finally {
    await server.close();
  }
}

describe("studio server", () => {
  test("API round trip: project, images, put / get annotations, status; annotations.json is COCO the reader and export take", async () => {
    await withServer("rt", async (s, store) => {
      const project = (await raw(s.url, "/api/project")).json();
      assert.deepEqual(project, {
        name: "photos",
        imagesDir: images,
        outDir: join(root, "rt"),
        mode: "instance",
        classes: [
          { id: 1, name: "cat", color: "#800000" },
          { id: 2, name: "dog", color: "#008000" },
        ],
        model: null,
        prelabel: { amg: false, model: false },
      });
      const list = (await raw(s.url, "/api/images")).json();
      assert.deepEqual(list.images, [
        { id: "a.png", file: "a.png", width: 8, height: 6, state: "new", instances: 0, embedding: "none" },
        { id: "b.png", file: "b.png", width: 7, height: 5, state: "new", instances: 0, embedding: "none" },
        { id: "sub/c.png", file: "sub/c.png", width: 6, height: 4, state: "new", instances: 0, embedding: "none" },
        { id: "swap.png", file: "swap.png", width: 4, height: 4, state: "new", instances: 0, embedding: "none" },
      ]);
      const instances = [
        { id: "k1", classId: 2, rle: rectRle(6, 4, 0, 0, 3, 2), source: "sam", score: 0.75 },
        { id: "k2", classId: 1, rle: rectRle(6, 4, 2, 1, 6, 4), source: "manual" },
      ];
      const put = await raw(s.url, "/api/images/sub%2Fc.png/annotations", {
        method: "PUT",
        ...json({ baseRevision: 0, state: "done", instances }),
      });
      assert.equal(put.status, 200, put.body.toString());
      assert.deepEqual(put.json(), { revision: 1 });
      const back = (await raw(s.url, "/api/images/sub%2Fc.png/annotations")).json();
      assert.deepEqual(back, { revision: 1, state: "done", instances });
      assert.deepEqual((await raw(s.url, "/api/status")).json(), {
        encoder: { done: 0, total: 0, current: null, failed: 0 },
        revision: 1,
      });
      const listed = (await raw(s.url, "/api/images")).json().images as { state: string; instances: number }[];
      assert.deepEqual([listed[2]?.state, listed[2]?.instances], ["done", 2]);

      // the file: COCO with compressed RLE, file_name relative to the images directory
      const file = JSON.parse(await readFile(store.file, "utf8"));
      assert.deepEqual(file.images, [{ id: 1, file_name: "sub/c.png", width: 6, height: 4 }]);
      assert.deepEqual(
        file.annotations.map((a: { category_id: number; segmentation: unknown; area: number }) => [
          a.category_id,
          a.segmentation,
          a.area,
        ]),
        [
          [2, instances[0]?.rle, 6],
          [1, instances[1]?.rle, 12],
        ],
      );
      const ds = await openCoco(store.outDir, { images, ignoreIndex: 255, strict: true });
      const mask = await ds.getMask?.(0);
      assert.deepEqual(
        Array.from(mask?.data ?? []),
        [2, 2, 2, 0, 0, 0, 2, 2, 1, 1, 1, 1, 0, 0, 1, 1, 1, 1, 0, 0, 1, 1, 1, 1],
      );
      const png = await exportDataset(ds, join(root, "rt-png"), { to: "png" });
      assert.equal(png.samples, 1);

      // export through the API, each format into <out>/export/<format>/
      for (const [format, expected] of [
        ["png", ["classes.json", "images/sub__c.png", "masks/sub__c.png"]],
        ["yolo", ["data.yaml", "images/sub__c.png", "labels/sub__c.txt"]],
        ["coco", ["annotations.json", "sub/c.png"]],
      ] as const) {
        const r = await raw(s.url, "/api/export", { method: "POST", ...json({ format }) });
        assert.equal(r.status, 200, r.body.toString());
        assert.deepEqual(r.json(), { dir: join(store.outDir, "export", format), files: expected });
      }
      const yolo = await readFile(join(store.outDir, "export", "yolo", "labels", "sub__c.txt"), "utf8");
      assert.deepEqual(
        yolo
          .trim()
          .split("\n")
          .map((l) => l.split(" ")[0]),
        ["0", "1"],
      );
    });
  });

  test("a stale revision is a 409 with the current revision; the saved change stays", async () => {
    await withServer("conflict", async (s) => {
      const body = (baseRevision: number, n: number) =>
        json({
          baseRevision,
          state: "in-progress",
          instances: [{ id: "i", classId: 1, rle: rectRle(8, 6, 0, 0, n, 1), source: "manual" }],
        });
      assert.equal((await raw(s.url, "/api/images/a.png/annotations", { method: "PUT", ...body(0, 1) })).status, 200);
      assert.equal((await raw(s.url, "/api/images/a.png/annotations", { method: "PUT", ...body(1, 2) })).status, 200);
      const stale = await raw(s.url, "/api/images/a.png/annotations", { method: "PUT", ...body(1, 3) });
      assert.equal(stale.status, 409);
      assert.equal(stale.json().revision, 2);
      assert.match(String(stale.json().error), /revision 2, the change was made on 1/);
      const now = (await raw(s.url, "/api/images/a.png/annotations")).json() as { instances: { rle: unknown }[] };
      assert.deepEqual(now.instances[0]?.rle, rectRle(8, 6, 0, 0, 2, 1));
    });
  });

  test("every response carries COOP, COEP and CORP; the app and onnxruntime-web files are served", async () => {
    await withServer("headers", async (s) => {
      for (const path of ["/", "/app.js", "/style.css", "/api/project", "/nothing", "/vendor/ort/ort.wasm.min.mjs"]) {
        const r = await raw(s.url, path);
        assert.equal(r.headers["cross-origin-opener-policy"], "same-origin", path);
        assert.equal(r.headers["cross-origin-embedder-policy"], "require-corp", path);
        assert.equal(r.headers["cross-origin-resource-policy"], "same-origin", path);
      }
      const index = await raw(s.url, "/");
      assert.equal(index.status, 200);
      assert.equal(index.headers["content-type"], "text/html; charset=utf-8");
      assert.equal(index.body.toString(), "<!doctype html><title>studio</title>");
      assert.equal((await raw(s.url, "/app.js")).headers["content-type"], "text/javascript; charset=utf-8");
      const wasm = await raw(s.url, "/vendor/ort/ort-wasm-simd-threaded.wasm");
      assert.equal(wasm.status, 200);
      assert.equal(wasm.headers["content-type"], "application/wasm");
      assert.deepEqual([...wasm.body.subarray(0, 4)], [0, 0x61, 0x73, 0x6d]);
      const img = await raw(s.url, "/api/images/a.png/file");
      assert.equal(img.headers["content-type"], "image/png");
      assert.deepEqual(img.body, await readFile(join(images, "a.png")));
    });
    // the app from a loader (tests bundle it from src)
    await withServer(
      "loader",
      async (s) => {
        assert.equal((await raw(s.url, "/app.js")).body.toString(), "bundled app.js");
        assert.equal((await raw(s.url, "/style.css")).body.toString(), "body{}");
      },
      { appFile: async (name) => (name === "app.js" ? "bundled app.js" : undefined) },
    );
  });

  test("path traversal: .., %2e%2e, encoded slashes, absolute paths and links outside are refused", async () => {
    await withServer("traversal", async (s) => {
      const attempts = [
        "/../secret.txt",
        "/../../../../etc/passwd",
        "/%2e%2e/secret.txt",
        "/%2E%2E/%2e%2e/secret.txt",
        "/..%2fsecret.txt",
        "/..%2Fsecret.txt",
        "/..%5csecret.txt",
        "/server.js",
        "/app.js/../server.js",
        "/app.js%2f..%2fserver.js",
        "//etc/passwd",
        `/${join(root, "secret.txt")}`,
        `/${encodeURIComponent(join(root, "secret.txt"))}`,
        "/api/images/..%2Fsecret.txt/file",
        "/api/images/%2e%2e%2fsecret.txt/file",
        "/api/images/..%2F..%2F..%2Fetc%2Fpasswd/file",
        `/api/images/${encodeURIComponent(join(root, "secret.txt"))}/file`,
        "/api/images/sub%2F..%2F..%2Fsecret.txt/file",
        "/api/images/sub/../../secret.txt/file",
        "/api/images/link.png/file",
        "/api/images/a.png/../../../secret.txt",
        "/vendor/ort/..%2F..%2F..%2F..%2Fpackage.json",
        "/vendor/ort/../../package.json",
        "/vendor/ort/%2e%2e%2fpackage.json",
        "/vendor/ort/ort.node.min.js",
        "/model/..%2F..%2Fsecret.txt",
        "/api/images/a.png%00/file",
      ];
      for (const path of attempts) {
        const r = await raw(s.url, path);
        assert.equal(r.status, 404, path);
        assert.ok(!r.body.toString().includes(SECRET), path);
        assert.ok(!r.body.toString().includes("root:"), path);
      }
      // an image replaced by a link to outside after the start is no longer served
      assert.equal((await raw(s.url, "/api/images/swap.png/file")).status, 200);
      await rename(join(images, "swap.png"), join(root, "swap-kept.png"));
      await symlink(join(root, "secret.txt"), join(images, "swap.png"));
      try {
        const r = await raw(s.url, "/api/images/swap.png/file");
        assert.equal(r.status, 404);
        assert.ok(!r.body.toString().includes(SECRET));
      } finally {
        await rm(join(images, "swap.png"));
        await rename(join(root, "swap-kept.png"), join(images, "swap.png"));
      }
    });
  });

  test("a token: required off loopback, checked on every request (query, header, then the cookie set)", async () => {
    assert.equal(accessToken("127.0.0.1"), undefined);
    assert.equal(accessToken("::1"), undefined);
    assert.match(accessToken("0.0.0.0") ?? "", /^[\w-]{24}$/);
    assert.notEqual(accessToken("192.168.1.5"), accessToken("192.168.1.5"));
    assert.equal(accessToken("0.0.0.0", "given"), "given");
    assert.deepEqual(
      ["127.0.0.1", "127.1.2.3", "localhost", "::1", "[::1]", "0.0.0.0", "::", "10.0.0.1", "127.0.0.1.evil.com"].map(
        isLoopback,
      ),
      [true, true, true, true, true, false, false, false, false],
    );
    await withServer(
      "token",
      async (s) => {
        assert.equal(s.url, `http://127.0.0.1:${s.port}/?token=s3cret-t0ken`);
        for (const path of [
          "/",
          "/api/project",
          "/api/images/a.png/file",
          "/vendor/ort/ort.wasm.min.mjs",
          "/nothing",
        ]) {
          const r = await raw(s.url, path);
          assert.equal(r.status, 401, path);
          assert.ok(!r.body.toString().includes("studio</title>"));
        }
        assert.equal((await raw(s.url, "/api/project?token=wrong")).status, 401);
        assert.equal((await raw(s.url, "/api/project?token=s3cret-t0ke")).status, 401);
        assert.equal((await raw(s.url, "/api/project", { headers: { "X-Segkit-Token": "nope" } })).status, 401);
        assert.equal((await raw(s.url, "/api/project", { headers: { Cookie: "segkit_token=nope" } })).status, 401);
        assert.equal((await raw(s.url, "/api/project", { headers: { Cookie: "segkit_token=%E0%A4%A" } })).status, 401);
        const put = await raw(s.url, "/api/images/a.png/annotations", {
          method: "PUT",
          ...json({ baseRevision: 0, state: "done", instances: [] }),
        });
        assert.equal(put.status, 401);
        const page = await raw(s.url, "/?token=s3cret-t0ken");
        assert.equal(page.status, 200);
        const cookie = String(page.headers["set-cookie"]);
        assert.match(cookie, /^segkit_token=s3cret-t0ken; Path=\/; HttpOnly; SameSite=Strict$/);
        const header = { "X-Segkit-Token": "s3cret-t0ken" };
        assert.equal((await raw(s.url, "/api/project", { headers: header })).status, 200);
        assert.equal((await raw(s.url, "/app.js", { headers: { Cookie: "segkit_token=s3cret-t0ken" } })).status, 200);
        const ok = await raw(s.url, "/api/images/a.png/annotations", {
          method: "PUT",
          headers: { ...header, "Content-Type": "application/json" },
          body: JSON.stringify({ baseRevision: 0, state: "done", instances: [] }),
        });
        assert.equal(ok.status, 200);
      },
      { token: "s3cret-t0ken" },
    );
  });

  test("without a token the Host must be loopback (DNS rebinding)", async () => {
    await withServer("host", async (s) => {
      assert.equal((await raw(s.url, "/api/project", { headers: { Host: `localhost:${s.port}` } })).status, 200);
      const r = await raw(s.url, "/api/project", { headers: { Host: `evil.example:${s.port}` } });
      assert.equal(r.status, 403);
      assert.match(String(r.json().error), /Host/);
    });
  });

  test("bad requests get a 4xx with a message, and the server keeps serving", async () => {
    await withServer(
      "bad",
      async (s, store) => {
        const put = (
          path: string,
          body: string | Buffer,
          headers: Record<string, string> = { "Content-Type": "application/json" },
        ) => raw(s.url, path, { method: "PUT", headers, body });
        const inst = { id: "i", classId: 1, rle: rectRle(8, 6, 0, 0, 1, 1), source: "sam" };
        const big = JSON.stringify({ baseRevision: 0, state: "done", instances: [inst], pad: "x".repeat(3000) });
        const cases: [Promise<Reply>, number, RegExp][] = [
          [put("/api/images/a.png/annotations", big), 413, /more than the 2000/],
          [
            put("/api/images/a.png/annotations", big, {
              "Content-Type": "application/json",
              "Transfer-Encoding": "chunked",
            }),
            413,
            /more than the 2000/,
          ],
          [put("/api/images/a.png/annotations", "{}", { "Content-Type": "text/plain" }), 415, /application\/json/],
          [put("/api/images/a.png/annotations", "{not json"), 400, /not JSON/],
          [
            put(
              "/api/images/a.png/annotations",
              JSON.stringify({
                baseRevision: 0,
                state: "done",
                instances: [{ ...inst, rle: rectRle(6, 8, 0, 0, 1, 1) }],
              }),
            ),
            400,
            /RLE size \[8, 6\] is not the image's \[6, 8\]/,
          ],
          [
            put(
              "/api/images/a.png/annotations",
              JSON.stringify({ baseRevision: 0, state: "done", instances: [{ ...inst, classId: 9 }] }),
            ),
            400,
            /class 9 does not exist/,
          ],
          [put("/api/images/a.png/annotations", JSON.stringify({ baseRevision: "x" })), 400, /baseRevision/],
          [
            put("/api/images/nope.png/annotations", JSON.stringify({ baseRevision: 0, state: "done", instances: [] })),
            404,
            /no image/,
          ],
          [raw(s.url, "/api/images/a.png/annotations", { method: "DELETE" }), 405, /DELETE/],
          [raw(s.url, "/api/project", { method: "POST", ...json({}) }), 405, /POST/],
          [raw(s.url, "/api/images/%zz/file"), 400, /percent-encoding/],
          [raw(s.url, "/api/images/a.png/embedding"), 409, /--model/],
          [raw(s.url, "/api/images/a.png/decode", { method: "POST", ...json({ points: [] }) }), 409, /--model/],
          [raw(s.url, "/model/decoder.onnx"), 409, /--model/],
          [
            raw(s.url, "/api/images/a.png/prelabel", { method: "POST", ...json({ baseRevision: 0, classId: 1 }) }),
            409,
            /--model/,
          ],
          [raw(s.url, "/api/export", { method: "POST", ...json({ format: "tiff" }) }), 400, /format/],
          [raw(s.url, "/api/whatever"), 404, /not found/],
        ];
        for (const [reply, status, message] of cases) {
          const r = await reply;
          assert.equal(r.status, status, r.body.toString());
          assert.match(String(r.json().error), message);
        }
        assert.equal(store.revision, 0);
        assert.equal((await raw(s.url, "/api/project")).status, 200);
      },
      { maxBodyBytes: 2000 },
    );
  });

  test("embeddings: 202 while queued (the asked image first), then 200 in the wire format; decode on the server; restart reads the cache", async () => {
    const model = await loadSamModel(FIXTURE_MODEL, { threads: 1 });
    try {
      // the encoder waits for the test's go, so that "queued" is seen
      let go: () => void = () => undefined;
      const gate = new Promise<void>((r) => {
        go = r;
      });
      let encodes = 0;
      const gated: SamModel = {
        ...model,
        encode: async (x) => {
          encodes++;
          await gate;
          return model.encode(x);
        },
      };
      const store = await openProjectStore({ imagesDir: images, outDir: join(root, "emb"), classes: ["cat", "dog"] });
      const events: string[] = [];
      const onChange = (id: string, st: EmbeddingStatus) => events.push(`${id} ${st}`);
      const cacheDir = join(store.outDir, "embeddings");
      const encoder = await createEncoderQueue({ model: gated, cacheDir, images: store.images, onChange });
      // segment-everything settings for requests that give none (the request's own win)
      const prelabelAmg = { pointsPerSide: 2, predIouThresh: 0, stabilityScoreThresh: 0 };
      const server = await startStudioServer({ store, encoder, appDir, prelabelAmg });
      try {
        const project = (await raw(server.url, "/api/project")).json();
        assert.deepEqual(project.prelabel, { amg: true, model: false });
        assert.deepEqual(project.model, {
          layout: "split",
          acceptsBox: true,
          acceptsMaskInput: true,
          decoderUrl: "/model/decoder.onnx",
        });
        const decoder = await raw(server.url, "/model/decoder.onnx");
        // the graph without the full-size masks segkit/web does not fetch
        const graph = await readFile(join(FIXTURE_MODEL, "decoder.onnx"));
        assert.ok(decoder.body.length < graph.length);
        assert.deepEqual(decoder.body, Buffer.from(pruneOnnx(graph, ["iou_predictions", "low_res_masks"]) ?? []));
        const wait = await raw(server.url, "/api/images/sub%2Fc.png/embedding?status");
        assert.equal(wait.status, 202);
        assert.deepEqual(wait.json(), { status: "queued", position: 1 });
        const first = await raw(server.url, "/api/images/a.png/embedding");
        assert.deepEqual([first.status, first.json()], [202, { status: "running", position: 0 }]);
        const imgs = (await raw(server.url, "/api/images")).json().images as { embedding: string }[];
        assert.deepEqual(
          imgs.map((i) => i.embedding),
          ["running", "queued", "queued", "queued"],
        );
        go();
        await encoder.idle();
        assert.deepEqual(
          events.filter((e) => e.endsWith("running")),
          ["a.png running", "sub/c.png running", "b.png running", "swap.png running"],
        );
        assert.deepEqual((await raw(server.url, "/api/status")).json(), {
          encoder: { done: 4, total: 4, current: null, failed: 0 },
          revision: 0,
        });
        // `?status` says ready without the bytes
        const status = await raw(server.url, "/api/images/sub%2Fc.png/embedding?status");
        assert.deepEqual([status.status, status.json()], [200, { status: "ready" }]);
        const ready = await raw(server.url, "/api/images/sub%2Fc.png/embedding");
        assert.equal(ready.status, 200);
        assert.equal(ready.headers["content-type"], "application/x-segkit-embedding");
        const wire = decodeEmbeddingWire(new Uint8Array(ready.body));
        assert.equal(wire.layout, "split");
        assert.deepEqual(wire.originalSize, { height: 4, width: 6 });
        assert.deepEqual(wire.inputSize, { height: 683, width: 1024 });
        assert.deepEqual(wire.embeddings.image_embeddings?.dims, [1, 256, 64, 64]);

        // server-side decode: a foreground click in the fixture gives a disc (see predictor.test.ts); the low-res
        // logits come back and go in again as mask input
        const d = await raw(server.url, "/api/images/a.png/decode", {
          method: "POST",
          ...json({ points: [{ x: 4, y: 3, label: 1 }] }),
        });
        assert.equal(d.status, 200, d.body.toString());
        const out = d.json() as {
          scores: number[];
          masks: { size: [number, number]; counts: string }[];
          lowRes: string[];
        };
        assert.equal(out.scores.length, 3);
        assert.equal(out.masks.length, 3);
        assert.equal(out.lowRes.length, 3);
        const m = rleDecode(rleFromString(out.masks[0] as { size: [number, number]; counts: string }));
        assert.deepEqual([m.width, m.height, m.data[3 * 8 + 4]], [8, 6, 1]);
        assert.equal(Buffer.from(out.lowRes[0] as string, "base64").length, 256 * 256 * 4);
        // best first, as segkit/web answers: the Node predictor's candidates (in the graph's order, which here is
        // not best first) sorted by score, each with its own mask and low-res plane
        const node = await createSamPredictor(model);
        const ref = await node
          .setImage(join(images, "a.png"))
          .then(() => node.predict({ points: [{ x: 4, y: 3, label: 1 }] }))
          .finally(() => node.dispose());
        const order = [0, 1, 2].sort((i, j) => (ref.scores[j] as number) - (ref.scores[i] as number));
        assert.notDeepEqual(order, [0, 1, 2]);
        assert.deepEqual(
          out.scores,
          order.map((i) => ref.scores[i]),
        );
        assert.deepEqual(
          out.masks,
          order.map((i) => rleToString(rleEncode(ref.masks[i] as Mask))),
        );
        const plane = (i: number) => ref.lowResLogits.data.subarray(i * 256 * 256, (i + 1) * 256 * 256);
        assert.deepEqual(
          out.lowRes.map((b) => new Float32Array(new Uint8Array(Buffer.from(b, "base64")).buffer)),
          order.map(plane),
        );
        // what the app asks for: the low-res answer alone, binary; the page's masks from it are the JSON's masks
        const binary = await raw(server.url, "/api/images/a.png/decode", {
          method: "POST",
          headers: { ...json({}).headers, Accept: LOW_RES_WIRE_TYPE },
          body: JSON.stringify({ points: [{ x: 4, y: 3, label: 1 }] }),
        });
        assert.equal(binary.status, 200, binary.body.toString());
        assert.equal(binary.headers["content-type"], LOW_RES_WIRE_TYPE);
        assert.match(String(binary.headers["server-timing"]), /^decode;dur=\d+(\.\d)?$/);
        const answer = decodeEmbeddingWire(new Uint8Array(binary.body));
        assert.deepEqual(answer.originalSize, { height: 6, width: 8 });
        assert.deepEqual(Array.from(answer.embeddings.scores?.data ?? []), out.scores);
        assert.deepEqual(answer.embeddings.low_res_masks?.dims, [3, 256, 256]);
        const low = answer.embeddings.low_res_masks?.data ?? new Float32Array();
        assert.deepEqual(
          out.lowRes.map((b, k) =>
            [...new Float32Array(new Uint8Array(Buffer.from(b, "base64")).buffer)].every(
              (v, i) => v === low[k * 65536 + i],
            ),
          ),
          [true, true, true],
        );
        assert.deepEqual(
          lowResMasks(low, answer.originalSize),
          out.masks.map((r) => rleDecode(rleFromString(r)).data),
        );
        const again = await raw(server.url, "/api/images/a.png/decode", {
          method: "POST",
          ...json({ points: [{ x: 4, y: 3, label: 1 }], maskInput: out.lowRes[0], multimask: false }),
        });
        assert.equal(again.status, 200, again.body.toString());
        assert.equal((again.json().scores as number[]).length, 1);
        // the predictor holds a.png: the next decode on it neither reads nor hashes the file (garbage bytes now)
        const png = await readFile(join(images, "a.png"));
        await writeFile(join(images, "a.png"), "not a png");
        const held = await raw(server.url, "/api/images/a.png/decode", {
          method: "POST",
          ...json({ points: [{ x: 4, y: 3, label: 1 }], maskInput: out.lowRes[0], multimask: false }),
        });
        await writeFile(join(images, "a.png"), png);
        assert.equal(held.status, 200, held.body.toString());
        assert.deepEqual(held.json().scores, again.json().scores);
        const bad = [
          [{ maskInput: "AAAA" }, /maskInput must be 256x256/],
          [{ points: [{ x: 1, y: 1, label: 2 }] }, /points/],
          [{}, /empty prompt/],
          [{ points: Array.from({ length: 65 }, () => ({ x: 1, y: 1, label: 1 })) }, /points/],
        ] as const;
        for (const [body, message] of bad) {
          const r = await raw(server.url, "/api/images/a.png/decode", { method: "POST", ...json(body) });
          assert.equal(r.status, 400, r.body.toString());
          assert.match(String(r.json().error), message);
        }

        // pre-labels: segment-everything on the image, appended as "prelabel" suggestions in one revisioned change
        const amg = { classId: 2, ...prelabelAmg };
        const pre = await raw(server.url, "/api/images/b.png/prelabel", {
          method: "POST",
          ...json({ baseRevision: 0, classId: 2 }), // the server's settings
        });
        assert.equal(pre.status, 200, pre.body.toString());
        const { revision, added } = pre.json() as { revision: number; added: number };
        assert.equal(revision, 1);
        assert.ok(added >= 1);
        const labelled = (await raw(server.url, "/api/images/b.png/annotations")).json() as {
          state: string;
          instances: { id: string; classId: number; source: string; score: number; rle: { size: number[] } }[];
        };
        assert.equal(labelled.state, "in-progress");
        assert.equal(labelled.instances.length, added);
        for (const [k, inst] of labelled.instances.entries()) {
          assert.deepEqual(
            [inst.id, inst.classId, inst.source, inst.rle.size],
            [`prelabel-1-${k}`, 2, "prelabel", [5, 7]],
          );
          assert.equal(typeof inst.score, "number");
        }
        const stalePre = await raw(server.url, "/api/images/b.png/prelabel", {
          method: "POST",
          ...json({ baseRevision: 0, ...amg }),
        });
        assert.equal(stalePre.status, 409);
        const badClass = await raw(server.url, "/api/images/b.png/prelabel", {
          method: "POST",
          ...json({ ...amg, baseRevision: 1, classId: 7 }),
        });
        assert.deepEqual([badClass.status, badClass.json().error], [400, "class 7 does not exist"]);
      } finally {
        await server.close();
        await encoder.close();
      }
      // a restart on the same project reads the embeddings back from disk: no encoder run
      const before = encodes;
      const store2 = await openProjectStore({ imagesDir: images, outDir: join(root, "emb") });
      const encoder2 = await createEncoderQueue({ model: gated, cacheDir, images: store2.images });
      await encoder2.idle();
      assert.equal(encodes, before);
      assert.deepEqual(encoder2.progress(), { done: 4, total: 4, current: null, failed: 0 });
      await encoder2.close();
    } finally {
      await model.dispose();
    }
  });

  test("an image the encoder cannot read is marked failed, its embedding a 500 naming the problem", async () => {
    const dir = await makeImagesDir({ "ok.png": [6, 4], "cut.png": [6, 4] });
    try {
      const cut = join(dir.images, "cut.png");
      const bytes = await readFile(cut);
      await writeFile(cut, bytes.subarray(0, bytes.length - 20)); // the header (size) survives, the pixels do not
      const store = await openProjectStore({ imagesDir: dir.images });
      assert.deepEqual(
        store.images.map((i) => i.id),
        ["cut.png", "ok.png"],
      );
      const encoder = await createEncoderQueue({
        model: FIXTURE_MODEL,
        cacheDir: join(store.outDir, "emb"),
        images: store.images,
      });
      const server = await startStudioServer({ store, encoder, appDir });
      try {
        await encoder.idle();
        assert.deepEqual(encoder.progress(), { done: 1, total: 2, current: null, failed: 1 });
        const list = (await raw(server.url, "/api/images")).json().images as { embedding: string }[];
        assert.deepEqual(
          list.map((i) => i.embedding),
          ["failed", "ready"],
        );
        const r = await raw(server.url, "/api/images/cut.png/embedding");
        assert.equal(r.status, 500);
        assert.match(String(r.json().error), /the encoder failed on this image: .*cut\.png/);
        assert.equal((await raw(server.url, "/api/images/ok.png/embedding")).status, 200);
      } finally {
        await server.close();
        await encoder.close();
      }
    } finally {
      await rm(dir.root, { recursive: true, force: true });
    }
  });

  test("pre-labels from a trained model: each connected component of a class the project has, matched by name", async () => {
    // the model's 7x5 prediction of b.png, classes background, Dog (1), cat (2: two components), bird (3)
    const rows = ["2200022", "2200022", "0011000", "0011003", "0000003"];
    const data = Uint8Array.from(rows.join(""), (c) => Number(c));
    const model = {
      classes: ["background", "Dog", "cat", "bird"],
      backgroundClass: 0,
      predict: async (path: string) => {
        assert.equal(path, join(images, "b.png"));
        return { mask: { width: 7, height: 5, data } };
      },
    } as unknown as Predictor;
    await withServer(
      "model-prelabel",
      async (s) => {
        assert.deepEqual((await raw(s.url, "/api/project")).json().prelabel, { amg: false, model: true });
        const r = await raw(s.url, "/api/images/b.png/prelabel", {
          method: "POST",
          ...json({ baseRevision: 0, from: "model" }),
        });
        assert.equal(r.status, 200, r.body.toString());
        assert.deepEqual(r.json(), { revision: 1, added: 3 });
        const got = (await raw(s.url, "/api/images/b.png/annotations")).json() as {
          instances: { id: string; classId: number; rle: { size: [number, number]; counts: string }; source: string }[];
        };
        // project classes: cat 1, dog 2; "bird" is not in the project and is left out
        const painted = got.instances.map((i) => {
          const m = rleDecode(rleFromString(i.rle));
          return [i.id, i.classId, i.source, Array.from(m.data).join("")];
        });
        const flat = (r: string[]) => r.join("");
        assert.deepEqual(painted, [
          ["prelabel-1-0", 2, "prelabel", flat(["0000000", "0000000", "0011000", "0011000", "0000000"])],
          ["prelabel-1-1", 1, "prelabel", flat(["1100000", "1100000", "0000000", "0000000", "0000000"])],
          ["prelabel-1-2", 1, "prelabel", flat(["0000011", "0000011", "0000000", "0000000", "0000000"])],
        ]);
      },
      { prelabelModel: model },
    );
    await withServer("model-prelabel-none", async (s) => {
      const r = await raw(s.url, "/api/images/b.png/prelabel", {
        method: "POST",
        ...json({ baseRevision: 0, from: "model" }),
      });
      assert.deepEqual(
        [r.status, r.json().error],
        [409, "no pre-label model: start the studio with --prelabel-model DIR"],
      );
    });
  });

  test("a restart on the same project serves the saved annotations and continues the revisions", async () => {
    const instances = [{ id: "z", classId: 2, rle: rectRle(7, 5, 1, 1, 2, 2), source: "prelabel", score: 0.5 }];
    await withServer("restart", async (s) => {
      const r = await raw(s.url, "/api/images/b.png/annotations", {
        method: "PUT",
        ...json({ baseRevision: 0, state: "in-progress", instances }),
      });
      assert.equal(r.status, 200);
    });
    await withServer("restart", async (s) => {
      assert.deepEqual((await raw(s.url, "/api/images/b.png/annotations")).json(), {
        revision: 1,
        state: "in-progress",
        instances,
      });
      assert.equal((await raw(s.url, "/api/status")).json().revision, 1);
      const next = await raw(s.url, "/api/images/b.png/annotations", {
        method: "PUT",
        ...json({ baseRevision: 1, state: "done", instances: [] }),
      });
      assert.deepEqual(next.json(), { revision: 2 });
    });
  });
});
