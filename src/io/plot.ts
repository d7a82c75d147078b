import sharp from "sharp";

/**
 * Charts as SVG text, rasterised by sharp (librsvg, DejaVu Sans): round tick values, and panels of line plots
 * with axes, grid, markers, a legend and an optional marked x value. Coordinates are SVG pixels, origin top left;
 * data values map linearly into each panel's frame. Every string that reaches the SVG is escaped.
 */

export const FONT = `font-family="DejaVu Sans, sans-serif"`;

/** Text for SVG and HTML: &, <, >, quotes escaped. */
export function escapeXml(s: string): string {
  return s.replace(
    /[&<>"']/g,
    (ch) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[ch] ?? ch,
  );
}

/** SVG text as PNG bytes. */
export async function svgToPng(svg: string): Promise<Uint8Array> {
  return sharp(Buffer.from(svg)).png().toBuffer();
}

/** About `count` round tick values covering [lo, hi] (steps of 1, 2 or 5 times a power of ten, at least `minStep`). */
export function niceTicks(lo: number, hi: number, count = 5, minStep = 0): number[] {
  if (!(hi > lo)) {
    const pad = Math.abs(lo) > 0 ? Math.abs(lo) * 0.1 : 0.5;
    [lo, hi] = [lo - pad, hi + pad];
  }
  const raw = (hi - lo) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const f = raw / mag;
  const step = Math.max(minStep, (f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10) * mag);
  const first = Math.floor(lo / step + 1e-9);
  const last = Math.ceil(hi / step - 1e-9);
  const ticks: number[] = [];
  for (let k = first; k <= last; k++) ticks.push(Number((k * step).toPrecision(12)));
  return ticks;
}

export interface LineSeries {
  name: string;
  color: string;
  /** [x, y]; NaN values break the line. */
  points: [number, number][];
}

export interface LinePanel {
  title: string;
  xLabel: string;
  yLabel: string;
  series: LineSeries[];
  /** 0..1 scores: the y axis stays inside [0, 1]. */
  unit?: boolean;
}

/** A dashed vertical line at `x` (drawn when x > 0), named in the legend. */
export interface XMarker {
  x: number;
  label: string;
  color: string;
}

export interface LinePlotOptions {
  width: number;
  height: number;
  /** The shared x axis' ticks (its range is first..last). */
  xTicks: number[];
  marker?: XMarker;
}

/** One panel at (x0, y0) of size w x h: frame, ticks, grid, labels, lines with point markers, legend. */
function panelSvg(p: LinePanel, x0: number, y0: number, w: number, h: number, xTicks: number[], marker?: XMarker) {
  const left = x0 + 62;
  const right = x0 + w - 14;
  const top = y0 + 34;
  const bottom = y0 + h - 48;
  const values = p.series.flatMap((s) => s.points.map(([, v]) => v)).filter(Number.isFinite);
  let lo = values.length > 0 ? Math.min(...values) : 0;
  let hi = values.length > 0 ? Math.max(...values) : 1;
  if (p.unit) [lo, hi] = [Math.max(0, lo), Math.min(1, hi)];
  let yTicks = niceTicks(lo, hi, 5);
  if (p.unit) yTicks = yTicks.filter((t) => t >= 0 && t <= 1);
  const [xa, xb] = [xTicks[0] as number, xTicks.at(-1) as number];
  const [ya, yb] = [yTicks[0] as number, yTicks.at(-1) as number];
  const sx = (e: number) => left + ((e - xa) / (xb - xa)) * (right - left);
  const sy = (v: number) => bottom - ((v - ya) / (yb - ya || 1)) * (bottom - top);
  const yStep = (yTicks[1] ?? yb) - ya;
  const decimals = Math.max(0, Math.min(6, -Math.floor(Math.log10(yStep > 0 ? yStep : 1))));
  const out: string[] = [
    `<text x="${(left + right) / 2}" y="${y0 + 20}" ${FONT} font-size="15" text-anchor="middle">${escapeXml(p.title)}</text>`,
  ];
  for (const t of yTicks) {
    const y = sy(t);
    out.push(`<line x1="${left}" y1="${y}" x2="${right}" y2="${y}" stroke="#e6e6e6"/>`);
    out.push(`<line x1="${left - 5}" y1="${y}" x2="${left}" y2="${y}" stroke="#333"/>`);
    out.push(
      `<text x="${left - 8}" y="${y + 4}" ${FONT} font-size="11" text-anchor="end">${t.toFixed(decimals)}</text>`,
    );
  }
  for (const t of xTicks) {
    const x = sx(t);
    out.push(`<line x1="${x}" y1="${bottom}" x2="${x}" y2="${bottom + 5}" stroke="#333"/>`);
    out.push(`<text x="${x}" y="${bottom + 18}" ${FONT} font-size="11" text-anchor="middle">${t}</text>`);
  }
  out.push(`<rect x="${left}" y="${top}" width="${right - left}" height="${bottom - top}" fill="none" stroke="#333"/>`);
  out.push(
    `<text x="${(left + right) / 2}" y="${bottom + 38}" ${FONT} font-size="12" text-anchor="middle">${escapeXml(p.xLabel)}</text>`,
    `<text x="${x0 + 16}" y="${(top + bottom) / 2}" ${FONT} font-size="12" text-anchor="middle" ` +
      `transform="rotate(-90 ${x0 + 16} ${(top + bottom) / 2})">${escapeXml(p.yLabel)}</text>`,
  );
  const marked = marker && marker.x > 0 ? marker : null;
  if (marked) {
    const x = sx(marked.x);
    out.push(
      `<line class="best" x1="${x}" y1="${top}" x2="${x}" y2="${bottom}" stroke="${marked.color}" stroke-width="1.5" stroke-dasharray="5,4"/>`,
    );
  }
  for (const s of p.series) {
    // runs of finite values as polylines, every finite value as a marker
    let run: string[] = [];
    const flush = () => {
      if (run.length > 1) {
        out.push(`<polyline points="${run.join(" ")}" fill="none" stroke="${s.color}" stroke-width="2"/>`);
      }
      run = [];
    };
    for (const [e, v] of s.points) {
      if (!Number.isFinite(v)) {
        flush();
        continue;
      }
      run.push(`${sx(e).toFixed(1)},${sy(v).toFixed(1)}`);
      out.push(
        `<circle class="point" data-series="${escapeXml(s.name)}" cx="${sx(e).toFixed(1)}" cy="${sy(v).toFixed(1)}" r="3" fill="${s.color}"/>`,
      );
    }
    flush();
  }
  // the legend, in the corner of the frame where it covers the least of the lines (top right on a tie)
  const entries: [string, string, boolean][] = p.series.map((s) => [s.name, s.color, false]);
  if (marked) entries.push([marked.label, marked.color, true]);
  const lw = 30 + 7 * Math.max(...entries.map(([n]) => n.length));
  const lh = entries.length * 18 + 8;
  // the points drawn, and along each line segment 8 more, in pixels
  const points: [number, number][] = [];
  for (const s of p.series) {
    s.points.forEach(([e, v], k) => {
      if (!Number.isFinite(v)) return;
      points.push([sx(e), sy(v)]);
      const [pe, pv] = s.points[k - 1] ?? [e, Number.NaN];
      if (!Number.isFinite(pv)) return;
      for (let t = 1; t < 9; t++) points.push([sx(e + ((pe - e) * t) / 9), sy(v + ((pv - v) * t) / 9)]);
    });
  }
  const corners = [
    [right - lw - 8, top + 8],
    [right - lw - 8, bottom - lh - 8],
    [left + 8, top + 8],
    [left + 8, bottom - lh - 8],
  ] as const;
  const covered = ([cx, cy]: readonly [number, number]) =>
    points.filter(([x, y]) => x > cx - 4 && x < cx + lw + 4 && y > cy - 4 && y < cy + lh + 4).length;
  const [lx, ly] = corners.reduce((a, c) => (covered(c) < covered(a) ? c : a));
  out.push(`<rect x="${lx}" y="${ly}" width="${lw}" height="${lh}" fill="white" fill-opacity="0.85" stroke="#bbb"/>`);
  entries.forEach(([name, color, dashed], k) => {
    const y = ly + 14 + k * 18;
    out.push(
      `<line x1="${lx + 6}" y1="${y - 4}" x2="${lx + 24}" y2="${y - 4}" stroke="${color}" stroke-width="2"${dashed ? ` stroke-dasharray="5,4"` : ""}/>`,
      `<text x="${lx + 28}" y="${y}" ${FONT} font-size="11">${escapeXml(name)}</text>`,
    );
  });
  return out.join("");
}

/**
 * Panels of line plots side by side (each `width / panels.length` wide) on a white `width` x `height` SVG,
 * sharing the x axis `xTicks` and the marker. Each finite value is a point (`<circle class="point"
 * data-series=NAME>`), joined by lines; NaN leaves a gap; the marker is a `<line class="best">` per panel.
 */
export function linePlotSvg(panels: readonly LinePanel[], o: LinePlotOptions): string {
  const w = o.width / Math.max(1, panels.length);
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" width="${o.width}" height="${o.height}">` +
    `<rect width="${o.width}" height="${o.height}" fill="white"/>` +
    panels.map((p, k) => panelSvg(p, k * w, 0, w, o.height, o.xTicks, o.marker)).join("") +
    `</svg>`
  );
}
