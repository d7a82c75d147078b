import { escapeXml, FONT, svgToPng } from "./plot.js";

/** White to dark blue (matplotlib "Blues"-like), for v in [0, 1]. */
function blues(v: number): string {
  const lo = [247, 251, 255];
  const hi = [8, 48, 107];
  const c = lo.map((l, k) => Math.round(l + ((hi[k] as number) - l) * v));
  return `rgb(${c.join(",")})`;
}

export interface HeatmapOptions {
  title?: string;
  /** Cell size in pixels. */
  cell?: number;
  /** Per true class, pixels that had no usable prediction: shown as a last "(missing)" column when any. */
  missed?: readonly number[];
}

/**
 * A confusion-matrix heatmap as PNG bytes: rows are true classes, columns predicted classes, each row normalised
 * to sum 1 (the share of a true class's pixels given each prediction), with the value in every cell and the class
 * names on both axes. `matrix[t][p]` holds counts; `missed`, when given, adds a "(missing)" column counted in the
 * row sums, so a class whose predictions are missing does not look perfect.
 */
export async function renderConfusionHeatmap(
  matrix: readonly (readonly number[])[],
  classNames: readonly string[],
  options: HeatmapOptions = {},
): Promise<Uint8Array> {
  const withMissed = options.missed?.some((m) => m > 0) ?? false;
  const rows = withMissed ? matrix.map((row, t) => [...row, options.missed?.[t] ?? 0]) : matrix;
  const columns = withMissed ? [...classNames, "(missing)"] : classNames;
  const n = matrix.length;
  const m = columns.length;
  const cell = options.cell ?? (n > 12 ? 36 : 52);
  const label = Math.min(180, 20 + 7 * Math.max(4, ...columns.map((s) => s.length)));
  const top = 40 + label;
  const title = options.title ?? "Confusion matrix (rows: truth, normalised; columns: prediction)";
  // wide enough for the title too (15 px DejaVu Sans: under 9 px a character), the grid centred under it
  const gridWidth = label + 10 + m * cell + 20;
  const width = Math.max(gridWidth, 9 * title.length + 40);
  const left = label + 10 + Math.floor((width - gridWidth) / 2);
  const height = top + n * cell + 40;
  const parts: string[] = [
    `<rect width="${width}" height="${height}" fill="white"/>`,
    `<text x="${width / 2}" y="24" ${FONT} font-size="15" text-anchor="middle">${escapeXml(title)}</text>`,
  ];
  rows.forEach((row, t) => {
    const sum = row.reduce((a, b) => a + b, 0);
    const y = top + t * cell;
    parts.push(
      `<text x="${left - 6}" y="${y + cell / 2 + 4}" ${FONT} font-size="12" text-anchor="end">${escapeXml(classNames[t] ?? `${t}`)}</text>`,
    );
    row.forEach((count, p) => {
      const v = sum > 0 ? count / sum : 0;
      const x = left + p * cell;
      parts.push(`<rect x="${x}" y="${y}" width="${cell}" height="${cell}" fill="${blues(v)}" stroke="#ccc"/>`);
      if (sum > 0) {
        parts.push(
          `<text x="${x + cell / 2}" y="${y + cell / 2 + 4}" ${FONT} font-size="${cell > 40 ? 12 : 10}" text-anchor="middle" fill="${v > 0.5 ? "white" : "black"}">${v.toFixed(2)}</text>`,
        );
      }
    });
  });
  columns.forEach((name, p) => {
    const x = left + p * cell + cell / 2 + 4;
    parts.push(
      `<text x="${x}" y="${top - 6}" ${FONT} font-size="12" transform="rotate(-60 ${x} ${top - 6})">${escapeXml(name)}</text>`,
    );
  });
  parts.push(
    `<text x="${left + (m * cell) / 2}" y="${height - 14}" ${FONT} font-size="13" text-anchor="middle">predicted class</text>`,
  );
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">${parts.join("")}</svg>`;
  return svgToPng(svg);
}
