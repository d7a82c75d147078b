import assert from "node:assert/strict";
import { mkdtemp, readdir, readFile, rm, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { createImage } from "../core/image.js";
import { createEmbeddingCache, createImageHasher, imageHash } from "./embedding-cache.js";
import { SAM_PREPROCESS, type SamEmbeddings, type SamModel } from "./model.js";

// The cache reads only the model's encoder file, layout, input form and preprocessing (its identity).
let temp: string;
let model: SamModel;
const embeddings = (v: number): SamEmbeddings => ({
  image_embeddings: { data: Float32Array.of(v, v + 1, v + 2), dims: [1, 3] },
  extra: { data: Float32Array.of(-v), dims: [1] },
});

before(async () => {
  temp = await mkdtemp(join(tmpdir(), "segkit-emb-"));
  await writeFile(join(temp, "encoder.onnx"), "weights");
  model = {
    dir: temp,
    layout: "split",
    encoderInput: "nchw",
    files: { encoder: join(temp, "encoder.onnx"), decoder: join(temp, "decoder.onnx") },
    preprocess: SAM_PREPROCESS,
  } as unknown as SamModel;
});
after(() => rm(temp, { recursive: true, force: true }));

describe("embedding cache", () => {
  test("imageHash depends on the size and the pixels", () => {
    const a = createImage(2, 1, Uint8Array.of(1, 2, 3, 4, 5, 6));
    assert.match(imageHash(a), /^[0-9a-f]{64}$/);
    assert.notEqual(imageHash(a), imageHash(createImage(1, 2, a.data)));
    assert.notEqual(imageHash(a), imageHash(createImage(2, 1, Uint8Array.of(1, 2, 3, 4, 5, 7))));
  });

  test("createImageHasher: the last image's hash again for the same size and bytes, never for changed pixels", () => {
    const calls: string[] = [];
    const hash = createImageHasher((img) => {
      calls.push(imageHash(img));
      return calls.at(-1) as string;
    });
    const data = Uint8Array.of(1, 2, 3, 4, 5, 6);
    const a = createImage(2, 1, data);
    const first = hash(a);
    assert.equal(first, imageHash(a));
    assert.equal(hash(a), first); // the same image again: compared, not hashed
    assert.equal(hash(createImage(2, 1, Uint8Array.of(1, 2, 3, 4, 5, 6))), first); // equal bytes in another array
    assert.equal(calls.length, 1);
    data[5] = 7; // changed in place: the same array, another image
    assert.equal(hash(a), imageHash(createImage(2, 1, Uint8Array.of(1, 2, 3, 4, 5, 7))));
    assert.notEqual(hash(a), first);
    assert.equal(calls.length, 2);
    assert.equal(hash(createImage(1, 2, data)), imageHash(createImage(1, 2, data))); // same bytes, other size
    assert.equal(calls.length, 3);
    // a view into a larger buffer: only its bytes count
    const big = Uint8Array.of(9, 9, 1, 2, 3, 4, 5, 7, 9);
    assert.equal(hash(createImage(2, 1, big.subarray(2, 8))), imageHash(createImage(2, 1, data)));
    assert.equal(calls.length, 4);
    assert.equal(hash(createImage(2, 1, data)), imageHash(createImage(2, 1, data)));
    assert.equal(calls.length, 4);
  });

  test("memory: least recently used dropped first", async () => {
    const cache = createEmbeddingCache(model, { memoryCache: 2 });
    await cache.put("a", embeddings(1));
    await cache.put("b", embeddings(2));
    assert.equal((await cache.get("a"))?.source, "memory"); // a is now the most recent
    await cache.put("c", embeddings(3)); // drops b
    assert.equal(await cache.get("b"), undefined);
    assert.deepEqual((await cache.get("a"))?.embeddings, embeddings(1));
    cache.clear();
    assert.equal(await cache.get("a"), undefined);
  });

  test("disk: one SKEMB001 file per image, read back by a new cache; a changed encoder or a cut file is a miss", async () => {
    const cacheDir = join(temp, "cache");
    await createEmbeddingCache(model, { memoryCache: 1, cacheDir }).put("a", embeddings(5));
    const [file, ...rest] = (await readdir(cacheDir)).filter((f) => f.endsWith(".emb"));
    assert.ok(file);
    assert.deepEqual(rest, []);
    const bytes = await readFile(join(cacheDir, file));
    assert.equal(bytes.toString("latin1", 0, 8), "SKEMB001");
    assert.equal((12 + bytes.readUInt32LE(8)) % 4, 0, "float32 data 4-byte aligned");

    const hit = await createEmbeddingCache(model, { memoryCache: 1, cacheDir }).get("a");
    assert.equal(hit?.source, "disk");
    assert.deepEqual(hit?.embeddings, embeddings(5));
    assert.equal(await createEmbeddingCache(model, { memoryCache: 1, cacheDir }).get("b"), undefined);

    await writeFile(join(cacheDir, file), bytes.subarray(0, bytes.length - 4));
    assert.equal(await createEmbeddingCache(model, { memoryCache: 1, cacheDir }).get("a"), undefined);
    await writeFile(join(cacheDir, file), bytes);
    await utimes(model.files.encoder, new Date(), new Date(Date.now() + 60_000)); // the encoder file replaced
    assert.equal(await createEmbeddingCache(model, { memoryCache: 1, cacheDir }).get("a"), undefined);
  });
});
