import assert from "node:assert/strict";
import { describe, it } from "node:test";
import sharp from "sharp";
import { escapeXml, type LinePanel, linePlotSvg, niceTicks, svgToPng } from "./plot.js";

describe("niceTicks", () => {
  it("covers the range in steps of 1, 2 or 5 times a power of ten", () => {
    assert.deepEqual(niceTicks(0.93, 2.61), [0.5, 1, 1.5, 2, 2.5, 3]); // raw step 0.336 -> 0.5
    assert.deepEqual(niceTicks(0.05, 0.28), [0.05, 0.1, 0.15, 0.2, 0.25, 0.3]); // raw 0.046 -> 0.05
    assert.deepEqual(niceTicks(1, 8, 8, 1), [1, 2, 3, 4, 5, 6, 7, 8]);
    assert.deepEqual(niceTicks(1, 2, 8, 1), [1, 2]); // the epoch axis never steps below 1
    assert.deepEqual(niceTicks(1, 40, 8, 1), [0, 5, 10, 15, 20, 25, 30, 35, 40]);
    // one value: padded by 10 % around it
    assert.deepEqual(niceTicks(0.5, 0.5), [0.44, 0.46, 0.48, 0.5, 0.52, 0.54, 0.56]);
  });
});

describe("linePlotSvg", () => {
  const panel = (title: string, values: number[]): LinePanel => ({
    title,
    xLabel: "step",
    yLabel: "value",
    series: [{ name: `a<${title}>`, color: "#000", points: values.map((v, k) => [k + 1, v]) }],
  });

  it("draws panels side by side: a point per finite value, lines broken by NaN, the marker per panel", async () => {
    const svg = linePlotSvg([panel("one", [1, Number.NaN, 3, 4]), panel("two", [0.5, 0.25])], {
      width: 600,
      height: 300,
      xTicks: [1, 2, 3, 4],
      marker: { x: 3, label: "marked", color: "#f00" },
    });
    assert.match(svg, /^<svg xmlns="http:\/\/www.w3.org\/2000\/svg" width="600" height="300">/);
    assert.equal(svg.split(`data-series="a&lt;one&gt;"`).length - 1, 3);
    assert.equal(svg.split(`data-series="a&lt;two&gt;"`).length - 1, 2);
    // one panel: [1], then [3, 4] after the NaN (a run of one point draws no line); the other: [0.5, 0.25]
    assert.equal(svg.split("<polyline").length - 1, 2);
    assert.equal(svg.split(`class="best"`).length - 1, 2);
    assert.ok(!svg.includes("a<one>"), "a series name went into the SVG unescaped");
    // the second panel starts at x = 300: its frame's left edge is 300 + 62
    assert.match(svg, /<rect x="362" y="34" width="224" height="218" fill="none"/);
    const meta = await sharp(await svgToPng(svg)).metadata();
    assert.deepEqual([meta.width, meta.height, meta.format], [600, 300, "png"]);
  });

  it("leaves the marker out at x 0 and escapes text", () => {
    const svg = linePlotSvg([panel("p", [1, 2])], {
      width: 300,
      height: 200,
      xTicks: [1, 2],
      marker: { x: 0, label: "none", color: "#f00" },
    });
    assert.ok(!svg.includes(`class="best"`));
    assert.ok(!svg.includes(">none<"));
    assert.equal(escapeXml(`<a href="x">'&'</a>`), "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;");
  });
});
