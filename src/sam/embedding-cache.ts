/**
 * SAM's embedding cache, which lets `SamPredictor.setImage` skip the encoder for an image it has seen: in memory, the
 * most recently used images (by the SHA-256 of their RGB pixels and size, `imageHash`); with `cacheDir`, also on
 * disk, one file per image and model, `<sha256(image hash, model identity)>.emb`, written atomically. The model
 * identity is the encoder file's resolved path, size and modification time plus the layout, input form and
 * preprocessing: replacing the encoder file invalidates its entries. The file: magic `SKEMB001`, a uint32 LE JSON
 * header length, the JSON `{ model, image, tensors: [{ name, dims }] }` padded with spaces to a multiple of 4 bytes,
 * then each tensor's float32 values (little-endian) in header order. An unreadable or foreign file counts as a miss
 * and is rewritten.
 */
import { createHash } from "node:crypto";
import { readFile, realpath, stat } from "node:fs/promises";
import { join } from "node:path";
import type { RgbImage } from "../core/image.js";
import { writeFileAtomic } from "../io/fs.js";
import type { SamEmbeddings, SamModel, SamTensor } from "./model.js";

const MAGIC = "SKEMB001";

export interface EmbeddingCacheOptions {
  /** How many images' embeddings stay in memory (least recently used dropped first); an integer >= 1. */
  memoryCache: number;
  /** Directory of the on-disk cache (created when needed); no disk cache when absent. */
  cacheDir?: string;
}

export interface EmbeddingCache {
  /** The embeddings of the image with `hash` (`imageHash`) from memory, else from disk; undefined on a miss. */
  get(hash: string): Promise<{ embeddings: SamEmbeddings; source: "memory" | "disk" } | undefined>;
  /** Keeps `embeddings` as the most recent in memory and, with a cache directory, writes its file. */
  put(hash: string, embeddings: SamEmbeddings): Promise<void>;
  /** Empties the memory cache (the disk cache stays). */
  clear(): void;
}

/** The cache of `model`'s embeddings (the model's identity is read on the first disk access). */
export function createEmbeddingCache(model: SamModel, options: EmbeddingCacheOptions): EmbeddingCache {
  const { memoryCache, cacheDir } = options;
  const memory = new Map<string, SamEmbeddings>();
  let identity: string | undefined;
  const remember = (hash: string, e: SamEmbeddings) => {
    memory.delete(hash);
    memory.set(hash, e);
    for (const key of memory.keys()) {
      if (memory.size <= memoryCache) break;
      memory.delete(key);
    }
  };
  const diskFile = async (dir: string, hash: string) => {
    identity ??= await modelIdentity(model);
    const key = createHash("sha256").update(`${hash}\n${identity}`).digest("hex");
    return { file: join(dir, `${key}.emb`), identity };
  };
  return {
    async get(hash) {
      const inMemory = memory.get(hash);
      if (inMemory) {
        remember(hash, inMemory);
        return { embeddings: inMemory, source: "memory" };
      }
      if (!cacheDir) return undefined;
      const { file, identity: id } = await diskFile(cacheDir, hash);
      const onDisk = await readEmbeddings(file, id, hash);
      if (!onDisk) return undefined;
      remember(hash, onDisk);
      return { embeddings: onDisk, source: "disk" };
    },
    async put(hash, embeddings) {
      if (cacheDir) {
        const { file, identity: id } = await diskFile(cacheDir, hash);
        await writeFileAtomic(file, encodeEmbeddings(embeddings, id, hash));
      }
      remember(hash, embeddings);
    },
    clear: () => memory.clear(),
  };
}

/** SHA-256 of `WxH\n` and the RGB bytes. */
export function imageHash(img: RgbImage): string {
  return createHash("sha256").update(`${img.width}x${img.height}\n`).update(img.data).digest("hex");
}

/**
 * `hash` (`imageHash` by default) that remembers the last image it hashed: a call with the same size and
 * byte-identical pixels returns the remembered hash after one byte comparison against a copy of those pixels
 * (memcmp, about 10x cheaper than SHA-256), so `setImage` on the current image again does not re-hash it. A copy
 * and not the array's identity: a caller may change the pixels in place between calls (a reused buffer), and a
 * changed image must never get the old image's embeddings.
 */
export function createImageHasher(hash: (img: RgbImage) => string = imageHash): (img: RgbImage) => string {
  let last: { width: number; height: number; pixels: Buffer; hash: string } | undefined;
  return (img) => {
    const pixels = Buffer.from(img.data.buffer, img.data.byteOffset, img.data.byteLength);
    if (last && last.width === img.width && last.height === img.height && last.pixels.equals(pixels)) {
      return last.hash;
    }
    last = undefined; // (a throwing `hash` leaves nothing stale behind)
    const h = hash(img);
    last = { width: img.width, height: img.height, pixels: Buffer.from(pixels), hash: h };
    return h;
  };
}

/** Identity of the encoder for the disk cache: resolved path, size, mtime, layout, input form and preprocessing. */
async function modelIdentity(m: SamModel): Promise<string> {
  const file = await realpath(m.files.encoder);
  const s = await stat(file);
  return JSON.stringify([file, s.size, s.mtimeMs, m.layout, m.encoderInput, m.preprocess]);
}

/** The disk cache file of `embeddings` (format in the module comment). */
function encodeEmbeddings(embeddings: SamEmbeddings, model: string, image: string): Uint8Array {
  const names = Object.keys(embeddings).sort();
  const tensors = names.map((name) => ({ name, dims: (embeddings[name] as SamTensor).dims }));
  const raw = JSON.stringify({ model, image, tensors });
  // MAGIC and the length take 12 bytes: padding the JSON to a multiple of 4 aligns the float32 data
  const json = raw + " ".repeat((4 - (Buffer.byteLength(raw, "utf8") % 4)) % 4);
  const head = Buffer.from(`${MAGIC}----${json}`, "utf8");
  head.writeUInt32LE(Buffer.byteLength(json, "utf8"), MAGIC.length);
  const parts: Uint8Array[] = [head];
  for (const name of names) {
    const d = (embeddings[name] as SamTensor).data;
    parts.push(Buffer.from(d.buffer, d.byteOffset, d.byteLength));
  }
  return Buffer.concat(parts);
}

/** The cached embeddings in `file` when it holds this model's embeddings of this image; otherwise undefined. */
async function readEmbeddings(file: string, model: string, image: string): Promise<SamEmbeddings | undefined> {
  let bytes: Buffer;
  try {
    bytes = await readFile(file);
  } catch {
    return undefined;
  }
  try {
    if (bytes.toString("latin1", 0, MAGIC.length) !== MAGIC) return undefined;
    const len = bytes.readUInt32LE(MAGIC.length);
    let offset = MAGIC.length + 4 + len;
    const head = JSON.parse(bytes.toString("utf8", MAGIC.length + 4, offset)) as {
      model: string;
      image: string;
      tensors: { name: string; dims: number[] }[];
    };
    if (head.model !== model || head.image !== image) return undefined;
    const out: Record<string, SamTensor> = {};
    for (const { name, dims } of head.tensors) {
      const count = dims.reduce((a, b) => a * b, 1);
      if (offset + 4 * count > bytes.length) return undefined;
      // a copy: readFile's buffer may not be 4-byte aligned
      out[name] = {
        data: new Float32Array(bytes.buffer.slice(bytes.byteOffset + offset, bytes.byteOffset + offset + 4 * count)),
        dims,
      };
      offset += 4 * count;
    }
    return offset === bytes.length ? out : undefined;
  } catch {
    return undefined;
  }
}
