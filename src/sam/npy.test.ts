import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { decodeNpy, encodeNpy } from "./npy.js";

// Reference bytes from numpy 1.x: np.save(f, np.arange(6, dtype=np.float32).reshape(2, 3)) and
// np.save(f, np.array([1.5, -2.25], dtype=">f8")).
const HEADER_2x3 = `{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }${" ".repeat(58)}\n`;
const BIG_ENDIAN_F8 =
  "934e554d5059010076007b276465736372273a20273e6638272c2027666f727472616e5f6f72646572273a2046616c73652c202773686170" +
  "65273a2028322c292c207d202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020" +
  "2020202020202020202020202020200a3ff8000000000000c002000000000000";

describe("npy", () => {
  test("encodes exactly what np.save writes", () => {
    const bytes = encodeNpy({ data: Float32Array.from([0, 1, 2, 3, 4, 5]), dims: [2, 3] });
    assert.equal(bytes.length, 128 + 24);
    assert.deepEqual(Array.from(bytes.subarray(0, 10)), [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0, 118, 0]);
    assert.equal(Buffer.from(bytes.subarray(10, 128)).toString("latin1"), HEADER_2x3);
    assert.deepEqual(Array.from(new Float32Array(bytes.slice(128).buffer)), [0, 1, 2, 3, 4, 5]);
    const one = encodeNpy({ data: new Float32Array(3), dims: [3] });
    assert.match(Buffer.from(one).toString("latin1", 10, 128), /'shape': \(3,\), \}/);
  });

  test("round trips and reads numpy's float64 big-endian", () => {
    const data = Float32Array.from({ length: 2 * 256 * 256 }, (_, i) => Math.sin(i) * 10);
    const back = decodeNpy(encodeNpy({ data, dims: [2, 256, 256] }));
    assert.deepEqual(back.dims, [2, 256, 256]);
    assert.deepEqual(back.data, data);
    const f8 = decodeNpy(Buffer.from(BIG_ENDIAN_F8, "hex"));
    assert.deepEqual(f8.dims, [2]);
    assert.deepEqual(Array.from(f8.data), [1.5, -2.25]);
  });

  test("bad files are errors naming the file", () => {
    assert.throws(() => decodeNpy(new Uint8Array(20), "x.npy"), /no \\x93NUMPY magic/);
    const int = Buffer.from(encodeNpy({ data: new Float32Array(2), dims: [2] }));
    int.write("<i4", int.indexOf("<f4"), "latin1");
    assert.throws(
      () => decodeNpy(int, "x.npy"),
      (e: Error & { file?: string }) => {
        assert.equal(e.file, "x.npy");
        assert.match(e.message, /dtype <i4 is not supported/);
        return true;
      },
    );
    const cut = encodeNpy({ data: new Float32Array(4), dims: [4] }).subarray(0, 130);
    assert.throws(() => decodeNpy(cut), /truncated data/);
    assert.throws(() => encodeNpy({ data: new Float32Array(3), dims: [2, 2] }), /hold 4 values/);
  });
});
