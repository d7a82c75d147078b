/**
 * Automatic mask generation throughput and memory: a --points-per-side grid (32 x 32 = 1,024 points, 3,072
 * candidate masks) on a --width x --height image (1024 x 768) with SAM's standard ~4M-parameter prompt decoder
 * (random weights), segkit's `generateMasks` against segment-anything's reference pipeline in PyTorch
 * (bench/peers/torch_amg.py: `_process_crop` / `_process_batch` with its default thresholds, torchvision NMS),
 * same run, same decoder and the same image embeddings (the peer exports the decoder and a constant "encoder"
 * holding the embeddings; see the peer for how the random weights are shaped so that masks and scores look like a
 * trained model's). Reports candidate masks per second, records produced, the growth of peak RSS over the RSS before
 * the call, and how many records agree (same point, same box, area within 0.5%, scores within 1e-3). Writes
 * bench/results/amg.json.
 *
 *   npm run bench:amg -- [--threads 2] [--points-per-side 32] [--width 1024] [--height 768] [--out FILE]
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { type AmgRecord, generateMasks } from "../src/sam/amg/generator.js";
import { createSamPredictor } from "../src/sam/predictor.js";
import { machine, peakRssMB, resetPeakRssMB, runPythonPeer, writeResults } from "./common.js";

const here = dirname(fileURLToPath(import.meta.url));
const { values: args } = parseArgs({
  options: {
    threads: { type: "string", default: "2" },
    "points-per-side": { type: "string", default: "32" },
    width: { type: "string", default: "1024" },
    height: { type: "string", default: "768" },
    out: { type: "string", default: join(here, "results", "amg.json") },
  },
});
const THREADS = Number(args.threads);
const SIDE = Number(args["points-per-side"]);
const WIDTH = Number(args.width);
const HEIGHT = Number(args.height);

interface PeerRecord {
  area: number;
  bbox: [number, number, number, number];
  predicted_iou: number;
  stability_score: number;
  point_coords: [[number, number]];
}
interface Peer {
  versions: { python: string; torch: string };
  threads: number;
  candidates: number;
  afterFilters: number;
  seconds: number;
  timings: { decode: number; filter: number; nms: number };
  rssBeforeMB: number;
  peakGrowthMB: number;
  records: PeerRecord[];
}

const dir = await mkdtemp(join(tmpdir(), "segkit-bench-amg-"));
try {
  console.log(`exporting the decoder to ${dir} and running the reference pipeline in PyTorch (a few minutes)...`);
  const peer = runPythonPeer<Peer>(
    join(here, "peers", "torch_amg.py"),
    [
      ...["--export", dir, "--threads", String(THREADS), "--points-per-side", String(SIDE)],
      ...["--width", String(WIDTH), "--height", String(HEIGHT)],
    ],
    "apt-get install -y python3-torch python3-torchvision",
  );
  if (!peer) throw new Error("the PyTorch peer did not run, so there is no decoder to load");
  const predictor = await createSamPredictor(dir, { threads: THREADS, memoryCache: 1 });
  const image = { data: new Uint8Array(WIDTH * HEIGHT * 3).fill(128), width: WIDTH, height: HEIGHT };
  await predictor.setImage(image);
  const rssBeforeMB = resetPeakRssMB();
  const t = performance.now();
  let lastLine = 0;
  let afterFilters = 0;
  const records = await generateMasks(predictor, image, {
    pointsPerSide: SIDE,
    onProgress: (p) => {
      afterFilters = p.masks;
      if (performance.now() - lastLine < 10_000 && p.points < p.pointsInCrop) return;
      lastLine = performance.now();
      console.log(`  segkit: ${p.points}/${p.pointsInCrop} points, ${p.masks} masks kept`);
    },
  });
  const seconds = (performance.now() - t) / 1000;
  const peakGrowthMB = peakRssMB() - rssBeforeMB;
  await predictor.dispose();

  const candidates = 3 * SIDE * SIDE;
  const agree = agreement(records, peer.records);
  const rate = candidates / seconds;
  const peerRate = candidates / peer.seconds;
  const f = (v: number, d = 1) => v.toFixed(d);
  console.log(`\n${WIDTH}x${HEIGHT}, ${SIDE}x${SIDE} grid, ${candidates} candidates, ${THREADS} threads`);
  console.log("                         segkit   PyTorch   ratio (segkit / PyTorch)");
  console.log(`candidates/s          ${f(rate).padStart(9)} ${f(peerRate).padStart(9)}   ${f(rate / peerRate, 2)}`);
  console.log(`seconds               ${f(seconds).padStart(9)} ${f(peer.seconds).padStart(9)}`);
  console.log(
    `peak RSS growth (MB)  ${f(peakGrowthMB, 0).padStart(9)} ${f(peer.peakGrowthMB, 0).padStart(9)}   ` +
      `${f(peakGrowthMB / peer.peakGrowthMB, 2)}`,
  );
  console.log(`after filters         ${String(afterFilters).padStart(9)} ${String(peer.afterFilters).padStart(9)}`);
  console.log(`records               ${String(records.length).padStart(9)} ${String(peer.records.length).padStart(9)}`);
  console.log(`records that agree: ${agree.matched} of ${records.length} / ${peer.records.length}`);
  console.log(
    `PyTorch time: decoder + upscaling ${f(peer.timings.decode)} s, filters + RLE ${f(peer.timings.filter)} s, ` +
      `NMS ${f(peer.timings.nms, 2)} s`,
  );

  await writeResults(args.out, {
    machine: machine(),
    config: { threads: THREADS, pointsPerSide: SIDE, image: [HEIGHT, WIDTH], candidates },
    segkit: {
      engine: "onnxruntime-node",
      seconds,
      candidatesPerSecond: rate,
      afterFilters,
      records: records.length,
      peakRssGrowthMB: peakGrowthMB,
      rssBeforeMB,
    },
    pytorch: { ...peer, records: peer.records.length },
    ratios: { throughput: rate / peerRate, peakMemory: peakGrowthMB / peer.peakGrowthMB },
    agreement: agree,
  });
} finally {
  await rm(dir, { recursive: true, force: true });
}

/** Records of both sides paired by prompt point and box; a pair agrees when areas and scores are close. */
function agreement(ours: readonly AmgRecord[], theirs: readonly PeerRecord[]) {
  const key = (p: [[number, number]], b: readonly number[]) =>
    `${p[0][0].toFixed(2)},${p[0][1].toFixed(2)}:${b.join(",")}`;
  const byKey = new Map(theirs.map((r) => [key(r.point_coords, r.bbox), r]));
  let matched = 0;
  let maxIouDiff = 0;
  for (const r of ours) {
    const p = byKey.get(key(r.point_coords, r.bbox));
    if (!p) continue;
    if (Math.abs(r.area - p.area) > 0.005 * p.area) continue;
    const d = Math.max(Math.abs(r.predicted_iou - p.predicted_iou), Math.abs(r.stability_score - p.stability_score));
    if (d > 1e-3) continue;
    maxIouDiff = Math.max(maxIouDiff, Math.abs(r.predicted_iou - p.predicted_iou));
    matched++;
  }
  return { matched, ours: ours.length, theirs: theirs.length, maxPredictedIouDiff: maxIouDiff };
}
