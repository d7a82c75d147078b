import assert from "node:assert/strict";
import { describe, it } from "node:test";
import sharp from "sharp";
import { renderConfusionHeatmap } from "./heatmap.js";

describe("renderConfusionHeatmap", () => {
  it("draws one cell per pair, shaded by the row-normalised share, with labels", async () => {
    const png = await renderConfusionHeatmap(
      [
        [9, 1],
        [0, 0],
      ],
      ["road", "<sky & co>"],
      { cell: 50, title: "short" },
    );
    const { data, info } = await sharp(png).raw().toBuffer({ resolveWithObject: true });
    // Layout: labels take `left` = 20 + 7 * 10 + 10 = 100 px; cells start at x = 100, y = 40 + 90 = 130.
    const at = (x: number, y: number) => [
      ...data.subarray((y * info.width + x) * info.channels, (y * info.width + x) * info.channels + 3),
    ];
    const corner = (col: number, row: number) => at(100 + col * 50 + 3, 130 + row * 50 + 3);
    // Row 0: 0.9 -> dark blue, 0.1 -> near white; row 1 has no pixels -> white.
    const [r0, g0, b0] = corner(0, 0) as [number, number, number];
    assert.ok(b0 > r0 + 60 && r0 < 60 && g0 < 90, `0.9 cell ${corner(0, 0)}`);
    assert.ok((corner(1, 0)[0] as number) > 200, `0.1 cell ${corner(1, 0)}`);
    assert.deepEqual(corner(0, 1), [247, 251, 255]);
    assert.equal(info.width, 100 + 2 * 50 + 20);
    // The row label column holds dark text pixels (the font rendered).
    let dark = 0;
    for (let y = 130; y < 230; y++) for (let x = 0; x < 95; x++) if ((at(x, y)[0] as number) < 100) dark++;
    assert.ok(dark > 20, `only ${dark} dark pixels where the row labels are`);
  });

  it("adds a (missing) column counted in the row sums when predictions were missing", async () => {
    const m = [
      [9, 0],
      [0, 5],
    ];
    const png = await renderConfusionHeatmap(m, ["a", "b"], { cell: 50, missed: [9, 0], title: "short" });
    const { data, info } = await sharp(png).raw().toBuffer({ resolveWithObject: true });
    const left = 20 + 7 * 9 + 10; // the "(missing)" label (9 characters) sets the label width
    assert.equal(info.width, left + 3 * 50 + 20); // three columns: a, b, (missing)
    // Row a is now 9 right of 18: its diagonal cell shows 0.50, a mid blue, not the dark 1.00.
    const px = (x: number, y: number) => data[(y * info.width + x) * info.channels] as number;
    const top = 40 + 20 + 7 * 9;
    assert.ok(px(left + 3, top + 3) > 80 && px(left + 3, top + 3) < 200, `a/a cell red ${px(left + 3, top + 3)}`);
  });

  it("is wide enough for its title on a small matrix, the grid centred under it", async () => {
    const png = await renderConfusionHeatmap([[1]], ["x"], { cell: 50 });
    const { data, info } = await sharp(png).raw().toBuffer({ resolveWithObject: true });
    const title = "Confusion matrix (rows: truth, normalised; columns: prediction)";
    assert.equal(info.width, 9 * title.length + 40); // the grid alone would be 20 + 7 * 4 + 10 + 50 + 20 = 128
    const shift = Math.floor((info.width - 128) / 2);
    // the 1.00 cell (dark blue) starts at x = 58 + shift, y = 40 + 48
    const px = (x: number, y: number) => data[(y * info.width + x) * info.channels] as number;
    assert.ok(px(58 + shift + 3, 88 + 3) < 60, `cell red ${px(58 + shift + 3, 88 + 3)}`);
    assert.equal(px(58 + 3, 88 + 3), 255); // where the grid was before: white
  });
});
