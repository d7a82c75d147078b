#!/usr/bin/env python3
"""Reference values for src/masks/rle.ts and polygon.ts, written to src/masks/fixtures/rle-reference.json.

The reference is pycocotools' C core, `common/maskApi.c` of cocodataset/cocoapi (the file pycocotools' `_mask.pyx`
compiles and wraps). Debian ships no python3-pycocotools, so this script compiles that one file with gcc and calls
it through ctypes, the way `_mask.pyx` does; segkit's repository does not carry a copy of it:
    python3 scripts/make_rle_fixtures.py /path/to/cocoapi/common/maskApi.c

Pure Python otherwise (no numpy); masks come from a seeded `random.Random`, so a rerun writes the same file.
What each `_mask.pyx` call maps to here:
- `encode(mask)`: `rleEncode` then `rleToString` -> `counts` (numbers) and `string` per mask;
- `area`, `toBbox`: `rleArea`, `rleToBbox`;
- `merge(rles, intersect)`: `rleMerge` -> string;
- `iou(dt, gt, iscrowd)`: `rleIou`, stored as `iou[d][g]` (pycocotools' (m, n) result);
- `frPyObjects(polygons, h, w)` + `merge` (COCO's `annToRLE`): `rleFrPoly` per polygon, then `rleMerge`.
Masks are stored row-major, 8 pixels a byte, most significant bit first, base64 (`bits`).
"""
import base64
import ctypes
import json
import math
import os
import random
import subprocess
import sys
import tempfile

OUT = os.path.join(os.path.dirname(__file__), "..", "src", "masks", "fixtures", "rle-reference.json")

# maskApi.h's declarations, restated for the one file compiled here (string.h for the memcpy in rleInvert)
HEADER = """
#include <string.h>
typedef unsigned int uint; typedef unsigned long siz; typedef unsigned char byte; typedef double* BB;
typedef struct { siz h, w, m; uint *cnts; } RLE;
void rleInit(RLE *R, siz h, siz w, siz m, uint *cnts); void rleFree(RLE *R);
void rlesInit(RLE **R, siz n); void rlesFree(RLE **R, siz n);
void rleEncode(RLE *R, const byte *M, siz h, siz w, siz n); void rleDecode(const RLE *R, byte *mask, siz n);
void rleMerge(const RLE *R, RLE *M, siz n, int intersect); void rleArea(const RLE *R, siz n, uint *a);
void rleInvert(const RLE *R, RLE *M, siz n);
void rleIou(RLE *dt, RLE *gt, siz m, siz n, byte *iscrowd, double *o); void rleNms(RLE *dt, siz n, uint *keep, double thr);
void bbIou(BB dt, BB gt, siz m, siz n, byte *iscrowd, double *o); void bbNms(BB dt, siz n, uint *keep, double thr);
void rleToBbox(const RLE *R, BB bb, siz n); void rleFrBbox(RLE *R, const BB bb, siz h, siz w, siz n);
void rleFrPoly(RLE *R, const double *xy, siz k, siz h, siz w);
char* rleToString(const RLE *R); void rleFrString(RLE *R, char *s, siz h, siz w);
"""


class RLE(ctypes.Structure):
    _fields_ = [("h", ctypes.c_ulong), ("w", ctypes.c_ulong), ("m", ctypes.c_ulong), ("cnts", ctypes.POINTER(ctypes.c_uint))]


def load(mask_api_c):
    tmp = tempfile.mkdtemp()
    with open(os.path.join(tmp, "maskApi.h"), "w") as f:
        f.write(HEADER)
    so = os.path.join(tmp, "maskApi.so")
    subprocess.run(["gcc", "-O1", "-shared", "-fPIC", "-I", tmp, "-o", so, mask_api_c, "-lm"], check=True)
    lib = ctypes.CDLL(so)
    lib.rleToString.restype = ctypes.c_void_p
    return lib


def c_rle(h, w, counts):
    arr = (ctypes.c_uint * max(1, len(counts)))(*counts)
    return RLE(h, w, len(counts), ctypes.cast(arr, ctypes.POINTER(ctypes.c_uint))), arr


class Ref:
    def __init__(self, lib):
        self.lib = lib
        self.libc = ctypes.CDLL(None)

    def encode(self, rows, h, w):
        col_major = bytes(rows[y][x] for x in range(w) for y in range(h))
        buf = ctypes.create_string_buffer(col_major, max(1, h * w))
        r = RLE()
        self.lib.rleEncode(ctypes.byref(r), buf, ctypes.c_ulong(h), ctypes.c_ulong(w), ctypes.c_ulong(1))
        return [r.cnts[i] for i in range(r.m)]

    def to_string(self, h, w, counts):
        r, _keep = c_rle(h, w, counts)
        p = self.lib.rleToString(ctypes.byref(r))
        s = ctypes.string_at(p).decode("ascii")
        self.libc.free(ctypes.c_void_p(p))
        return s

    def fr_string(self, h, w, s):
        r = RLE()
        self.lib.rleFrString(ctypes.byref(r), ctypes.c_char_p(s.encode("ascii")), ctypes.c_ulong(h), ctypes.c_ulong(w))
        return [r.cnts[i] for i in range(r.m)]

    def area(self, h, w, counts):
        r, _keep = c_rle(h, w, counts)
        a = ctypes.c_uint(0)
        self.lib.rleArea(ctypes.byref(r), ctypes.c_ulong(1), ctypes.byref(a))
        return a.value

    def bbox(self, h, w, counts):
        r, _keep = c_rle(h, w, counts)
        bb = (ctypes.c_double * 4)()
        self.lib.rleToBbox(ctypes.byref(r), bb, ctypes.c_ulong(1))
        return list(bb)

    def merge(self, h, w, list_of_counts, intersect):
        rs = (RLE * len(list_of_counts))()
        keep = []
        for i, c in enumerate(list_of_counts):
            rs[i], arr = c_rle(h, w, c)
            keep.append(arr)
        out = RLE()
        self.lib.rleMerge(rs, ctypes.byref(out), ctypes.c_ulong(len(list_of_counts)), ctypes.c_int(1 if intersect else 0))
        return [out.cnts[i] for i in range(out.m)]

    def iou(self, h, w, dts, gts, iscrowd):
        m, n = len(dts), len(gts)
        dr, gr, keep = (RLE * m)(), (RLE * n)(), []
        for i, c in enumerate(dts):
            dr[i], arr = c_rle(h, w, c)
            keep.append(arr)
        for i, c in enumerate(gts):
            gr[i], arr = c_rle(h, w, c)
            keep.append(arr)
        crowd = (ctypes.c_ubyte * n)(*iscrowd)
        o = (ctypes.c_double * (m * n))()
        self.lib.rleIou(dr, gr, ctypes.c_ulong(m), ctypes.c_ulong(n), crowd, o)
        return [[o[g * m + d] for g in range(n)] for d in range(m)]

    def fr_poly(self, xy, h, w):
        arr = (ctypes.c_double * len(xy))(*xy)
        r = RLE()
        self.lib.rleFrPoly(ctypes.byref(r), arr, ctypes.c_ulong(len(xy) // 2), ctypes.c_ulong(h), ctypes.c_ulong(w))
        return [r.cnts[i] for i in range(r.m)]


def pack(rows, h, w):
    flat = [rows[y][x] for y in range(h) for x in range(w)]
    out = bytearray((len(flat) + 7) // 8)
    for i, v in enumerate(flat):
        if v:
            out[i // 8] |= 0x80 >> (i % 8)
    return base64.b64encode(bytes(out)).decode("ascii")


def blobs(rng, h, w, n):
    """Union of n random discs and rectangles: long runs (multi-group counts) and negative differences."""
    rows = [[0] * w for _ in range(h)]
    for _ in range(n):
        cx, cy, r = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(2, max(3, min(h, w) / 3))
        rect = rng.random() < 0.4
        for y in range(h):
            for x in range(w):
                inside = (abs(x - cx) < r and abs(y - cy) < r * 0.6) if rect else (x - cx) ** 2 + (y - cy) ** 2 < r * r
                if inside:
                    rows[y][x] = 1
    return rows


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    ref = Ref(load(sys.argv[1]))
    rng = random.Random(7)

    def const(h, w, v):
        return [[v] * w for _ in range(h)]

    def one(h, w, x, y):
        rows = const(h, w, 0)
        rows[y][x] = 1
        return rows

    def noise(h, w, p):
        return [[1 if rng.random() < p else 0 for _ in range(w)] for _ in range(h)]

    hand = [[0, 1, 1, 0], [0, 1, 0, 0], [1, 1, 0, 0]]  # the 3x4 case worked by hand in rle.test.ts
    cases = [
        ("hand 3x4", hand),
        ("empty 3x4", const(3, 4, 0)),
        ("full 3x4", const(3, 4, 1)),
        ("empty 1x1", const(1, 1, 0)),
        ("full 1x1", const(1, 1, 1)),
        ("zero rows 0x5", []),
        ("one pixel first 3x4", one(3, 4, 0, 0)),
        ("one pixel last 5x7", one(5, 7, 6, 4)),
        ("one pixel middle 9x11", one(9, 11, 5, 4)),
        ("noise 7x13", noise(7, 13, 0.5)),
        ("noise 13x7", noise(13, 7, 0.3)),
        ("noise 1x31", noise(1, 31, 0.5)),
        ("noise 31x1", noise(31, 1, 0.5)),
        ("sparse 17x19", noise(17, 19, 0.05)),
        ("dense 17x19", noise(17, 19, 0.95)),
        ("full 64x50", const(64, 50, 1)),
        ("big disc 211x317", blobs(random.Random(3), 211, 317, 1)),
    ]
    widths = {"zero rows 0x5": 5}
    blob_group = [(f"blobs 40x37 #{i}", blobs(rng, 40, 37, 1 + i % 4)) for i in range(8)]
    cases += blob_group

    masks = []
    for name, rows in cases:
        h = len(rows)
        w = widths.get(name, len(rows[0]) if rows else 0)
        counts = ref.encode(rows, h, w)
        s = ref.to_string(h, w, counts)
        assert ref.fr_string(h, w, s) == counts, name
        masks.append({
            "name": name, "size": [h, w], "bits": pack(rows, h, w), "counts": counts, "string": s,
            "area": ref.area(h, w, counts), "bbox": ref.bbox(h, w, counts),
        })

    # merges and IoUs within the 40x37 blob group (and the noise pair of one size)
    group = [m for m in masks if m["name"].startswith("blobs 40x37")]
    merges = []
    for idx in ([0, 1], [2, 3], [4, 5, 6], [1, 7], [0, 0]):
        for intersect in (False, True):
            c = ref.merge(40, 37, [group[i]["counts"] for i in idx], intersect)
            merges.append({"masks": [group[i]["name"] for i in idx], "intersect": intersect,
                           "string": ref.to_string(40, 37, c)})
    dts, gts = group[:5], group[3:]
    iscrowd = [0, 1, 0, 1, 0]
    iou = {"dt": [m["name"] for m in dts], "gt": [m["name"] for m in gts], "iscrowd": iscrowd,
           "iou": ref.iou(40, 37, [m["counts"] for m in dts], [m["counts"] for m in gts], iscrowd)}

    # polygons as COCO writes them (flat x, y lists), rasterised by frPyObjects and unioned as annToRLE does
    def star(cx, cy, r1, r2, n, phase):
        pts = []
        for i in range(2 * n):
            r, a = (r1 if i % 2 == 0 else r2), phase + math.pi * i / n
            pts += [round(cx + r * math.cos(a), 3), round(cy + r * math.sin(a), 3)]
        return pts

    polygons = [
        ("rectangle", 6, 8, [[1, 1, 1, 4, 5, 4, 5, 1]]),
        ("rectangle clockwise", 6, 8, [[1, 1, 5, 1, 5, 4, 1, 4]]),
        ("fractional rectangle", 6, 8, [[0.6, 1.3, 6.2, 1.3, 6.2, 4.49, 0.6, 4.49]]),
        ("triangle", 10, 12, [[0.5, 0.5, 11, 4, 3, 9.5]]),
        ("bbox as polygon", 7, 7, [[2, 3, 2, 7, 7, 7, 7, 3]]),
        ("outside the image", 8, 9, [[-3.2, -1, 12.4, 2, 5, 11.7]]),
        ("star", 30, 40, [star(20, 15, 14, 5, 5, 0.3)]),
        ("two parts", 20, 25, [[1, 1, 10, 1, 10, 8, 1, 8], star(16, 12, 8, 3, 4, 0.1)]),
        ("self-intersecting", 12, 12, [[1, 1, 10, 10, 10, 1, 1, 10]]),
    ]
    rng_poly = random.Random(11)
    for i in range(4):
        n = rng_poly.randint(3, 9)
        pts = []
        for _ in range(n):
            pts += [round(rng_poly.uniform(-2, 34), 2), round(rng_poly.uniform(-2, 26), 2)]
        polygons.append((f"random #{i}", 24, 32, [pts]))
    polys = []
    for name, h, w, ps in polygons:
        each = [ref.fr_poly(p, h, w) for p in ps]
        merged = ref.merge(h, w, each, False)
        polys.append({"name": name, "size": [h, w], "polygons": ps, "strings": [ref.to_string(h, w, c) for c in each],
                      "merged": ref.to_string(h, w, merged)})

    doc = {
        "source": "cocodataset/cocoapi common/maskApi.c via ctypes; scripts/make_rle_fixtures.py",
        "masks": masks, "merges": merges, "iou": iou, "polygons": polys,
    }
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT + ".tmp", "w") as f:
        json.dump(doc, f, separators=(",", ":"))
        f.write("\n")
    os.replace(OUT + ".tmp", OUT)
    print(f"wrote {OUT}: {len(masks)} masks, {len(merges)} merges, {len(polys)} polygon cases")


if __name__ == "__main__":
    main()
