/**
 * Instance maps: one PNG per image whose pixel value names the instance there (0: none), the form instance tools
 * exchange besides COCO JSON. Two encodings:
 * - `16bit` (default): a 16-bit grayscale PNG, value k + 1 for instance k (at most 65535 instances);
 * - `rgb`: an 8-bit RGB PNG with id = R + 256 G + 256^2 B, as COCO panoptic stores segment ids; id k + 1.
 * Where instances overlap, the later one wins: a model's instances come best first, so pass them reversed to keep
 * the best on top.
 */
import { decode as decodePngRaw, encode as encodePngRaw } from "fast-png";
import { SegkitError } from "../core/errors.js";
import type { Instances } from "../masks/instances.js";
import { type Rle, rleEncodeLabels, rlePaint } from "../masks/rle.js";
import { writeFileAtomic } from "./fs.js";
import { type ImageSource, MAX_INPUT_PIXELS, readBytes, sourceName } from "./image.js";
import { pngSize } from "./png-rows.js";

export type InstanceMapEncoding = "16bit" | "rgb";

/** An instance map's pixels: `ids[y * width + x]` is the instance id there (0: none). */
export interface InstanceMap {
  width: number;
  height: number;
  ids: Uint32Array;
}

/** The map of `inst`: pixel = index + 1 of the last instance covering it. */
export function instanceMap(inst: Instances): InstanceMap {
  const map = { width: inst.width, height: inst.height, data: new Uint32Array(inst.width * inst.height) };
  for (const [k, rle] of inst.masks.entries()) rlePaint(map, rle, k + 1);
  return { width: map.width, height: map.height, ids: map.data };
}

/** The PNG bytes of `inst`'s map in `encoding`. */
export function encodeInstanceMap(inst: Instances, encoding: InstanceMapEncoding = "16bit"): Uint8Array {
  return encodeIdMap(instanceMap(inst), encoding);
}

/**
 * The PNG bytes of an id map in `encoding` (a panoptic segmentation's ids: `rgb`, as COCO panoptic PNGs store them).
 * An id above 65535 does not fit `16bit`.
 */
export function encodeIdMap(map: InstanceMap, encoding: InstanceMapEncoding = "16bit"): Uint8Array {
  const { width, height, ids } = map;
  if (encoding === "16bit") {
    if (ids.some((id) => id > 0xffff)) {
      throw new SegkitError("ids above 65535 do not fit a 16-bit map", { hint: "use the rgb encoding" });
    }
    return encodePngRaw({ width, height, data: Uint16Array.from(ids), depth: 16, channels: 1 });
  }
  if (ids.some((id) => id > 0xffffff)) throw new SegkitError("ids above 256^3 - 1 do not fit an RGB map");
  const rgb = new Uint8Array(ids.length * 3);
  for (const [p, id] of ids.entries()) {
    rgb[p * 3] = id & 255;
    rgb[p * 3 + 1] = (id >>> 8) & 255;
    rgb[p * 3 + 2] = (id >>> 16) & 255;
  }
  return encodePngRaw({ width, height, data: rgb, depth: 8, channels: 3 });
}

/** Writes `inst`'s map to `path` (temp file, then rename). */
export async function writeInstanceMap(
  path: string,
  inst: Instances,
  encoding: InstanceMapEncoding = "16bit",
): Promise<void> {
  await writeFileAtomic(path, encodeInstanceMap(inst, encoding));
}

/** Reads an instance map PNG: 8- or 16-bit gray (the value is the id) or 8-bit RGB(A) (R + 256 G + 256^2 B). */
export async function readInstanceMap(src: ImageSource): Promise<InstanceMap> {
  const name = sourceName(src);
  const bytes = await readBytes(src);
  const stated = pngSize(bytes);
  if (stated && stated.width * stated.height > MAX_INPUT_PIXELS) {
    throw new SegkitError(`the map is ${stated.width}x${stated.height}, more than ${MAX_INPUT_PIXELS} pixels`, {
      file: name,
    });
  }
  let png: ReturnType<typeof decodePngRaw>;
  try {
    png = decodePngRaw(bytes);
  } catch (err) {
    throw new SegkitError(`not a PNG instance map (${(err as Error).message})`, { file: name, cause: err });
  }
  const { width, height, channels, depth, data, palette } = png;
  const n = width * height;
  const ids = new Uint32Array(n);
  if ((channels === 1 || channels === 2) && !palette && (depth === 8 || depth === 16)) {
    for (let p = 0; p < n; p++) ids[p] = data[p * channels] as number;
  } else if ((channels === 3 || channels === 4) && depth === 8) {
    for (let p = 0; p < n; p++) {
      const i = p * channels;
      ids[p] = (data[i] as number) + 256 * (data[i + 1] as number) + 65536 * (data[i + 2] as number);
    }
  } else {
    throw new SegkitError(
      `an instance map is 8/16-bit gray or 8-bit RGB; this PNG has ${channels} channels of ${depth} bits${palette ? " and a palette" : ""}`,
      { file: name },
    );
  }
  return { width, height, ids };
}

/** The mask of every id present in `map` (ascending ids, 0 left out). */
export function instanceMapMasks(map: InstanceMap): { ids: number[]; masks: Rle[] } {
  const present = [...new Set(map.ids)].filter((id) => id !== 0).sort((a, b) => a - b);
  const index = new Map(present.map((id, k) => [id, k]));
  const labels = Int32Array.from(map.ids, (id) => index.get(id) ?? -1);
  return { ids: present, masks: rleEncodeLabels(labels, map.width, map.height, present.length) };
}
