/**
 * Automatic mask generation throughput and memory: a --points-per-side grid (32 x 32 = 1,024 points, 3,072
 * candidate masks) on a --width x --height image (1024 x 768) with SAM's standard ~4M-parameter prompt decoder
 * (random weights), segkit's `generateMasks` against segment-anything's reference pipeline in PyTorch
 * (bench/peers/torch_amg.py: `_process_crop` / `_process_batch` with its default thresholds, torchvision NMS) on
 * Debian's python3-torch and, when present, a newer torch, same run, same decoder and the same image embeddings
 * (the first peer exports the decoder and a constant "encoder" holding the embeddings, and its weights for the
 * other; see the peer for how the random weights are shaped so that masks and scores look like a trained model's).
 * Each peer runs twice: as the reference (every candidate upscaled to the image, then filtered on predicted IoU) and
 * with the predicted-IoU filter before the upscaling (segkit's order), which separates that part of segkit's
 * saving from the rest (the engine, one point per decoder call on the official export, masks as RLE between
 * stages, upscaling only the rows a mask can reach). The runs alternate over --passes passes (no warm-up pass: a
 * pass takes minutes). Reports seconds and candidate masks per second (medians, range of the passes), records
 * produced, the growth of peak RSS over the RSS before the call, and how many records agree with segkit's (same
 * point, same box, area within 0.5%, scores within 1e-3). Writes bench/results/amg.json.
 *
 *   npm run bench:amg -- [--threads 2] [--points-per-side 32] [--width 1024] [--height 768] [--passes 1] [--out FILE]
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { type AmgRecord, generateMasks } from "../src/sam/amg/generator.js";
import { createSamPredictor } from "../src/sam/predictor.js";
import { machine, peakRssMB, resetPeakRssMB, writeResults } from "./common.js";
import { interleave, PeerServer, peerPythons, type Side, type Summary } from "./side-by-side.js";

const here = dirname(fileURLToPath(import.meta.url));
const { values: args } = parseArgs({
  options: {
    threads: { type: "string", default: "2" },
    "points-per-side": { type: "string", default: "32" },
    width: { type: "string", default: "1024" },
    height: { type: "string", default: "768" },
    passes: { type: "string", default: "1" },
    out: { type: "string", default: join(here, "results", "amg.json") },
  },
});
const THREADS = Number(args.threads);
const SIDE = Number(args["points-per-side"]);
const WIDTH = Number(args.width);
const HEIGHT = Number(args.height);
const PASSES = Number(args.passes);

interface PeerRecord {
  area: number;
  bbox: [number, number, number, number];
  predicted_iou: number;
  stability_score: number;
  point_coords: [[number, number]];
}
interface PeerRun {
  prefilter: boolean;
  afterFilters: number;
  seconds: number;
  timings: { decode: number; upscale: number; filter: number; nms: number };
  rssBeforeMB: number;
  peakGrowthMB: number;
  records: PeerRecord[];
}
/** One side's last run (records, memory) beside its timing over the passes. */
interface Run {
  seconds: Summary;
  candidatesPerSecond: number;
  afterFilters: number;
  records: number;
  peakRssGrowthMB: number;
  /** With segkit's records (peers only). */
  agreement?: ReturnType<typeof agreement>;
  timings?: PeerRun["timings"];
}

const root = await mkdtemp(join(tmpdir(), "segkit-bench-amg-"));
const dir = join(root, "model");
const weights = join(root, "peer-weights.pt");
const candidates = 3 * SIDE * SIDE;
try {
  console.log(`exporting the decoder to ${dir}...`);
  const peers: PeerServer[] = [];
  for (const python of peerPythons()) {
    const peer = await PeerServer.start(
      python,
      join(here, "peers", "torch_amg.py"),
      [
        ...(peers.length === 0 ? ["--export", dir] : []),
        ...["--weights", weights, "--threads", String(THREADS), "--points-per-side", String(SIDE)],
        ...["--width", String(WIDTH), "--height", String(HEIGHT)],
      ],
      "apt-get install -y python3-torch python3-torchvision libopenblas0-pthread",
    );
    if (peer) console.log(`peer: ${peer.label}, NMS: ${peer.ready.nms}`);
    if (peer) peers.push(peer);
  }
  if (peers.length === 0) throw new Error("no PyTorch peer ran, so there is no decoder to load");
  const predictor = await createSamPredictor(dir, { threads: THREADS, memoryCache: 1 });
  const image = { data: new Uint8Array(WIDTH * HEIGHT * 3).fill(128), width: WIDTH, height: HEIGHT };
  await predictor.setImage(image);

  const segkitLast: { records: AmgRecord[]; afterFilters: number; peakGrowthMB: number } = {
    records: [],
    afterFilters: 0,
    peakGrowthMB: 0,
  };
  const peerLast: Record<string, PeerRun> = {};
  const sides: Side[] = [
    {
      name: "segkit",
      pass: async () => {
        const rssBeforeMB = resetPeakRssMB();
        const t = performance.now();
        let lastLine = 0;
        let afterFilters = 0;
        const records = await generateMasks(predictor, image, {
          pointsPerSide: SIDE,
          onProgress: (p) => {
            afterFilters = p.masks;
            if (performance.now() - lastLine < 30_000 && p.points < p.pointsInCrop) return;
            lastLine = performance.now();
            console.log(`  segkit: ${p.points}/${p.pointsInCrop} points, ${p.masks} masks kept`);
          },
        });
        const seconds = (performance.now() - t) / 1000;
        Object.assign(segkitLast, { records, afterFilters, peakGrowthMB: peakRssMB() - rssBeforeMB });
        return [seconds];
      },
    },
    ...peers.flatMap((peer) =>
      [false, true].map((prefilter) => ({
        name: `${peer.peer.id}.${prefilter ? "prefilter" : "reference"}`,
        pass: async () => {
          const run = await peer.call<PeerRun>({ op: "generate", prefilter });
          peerLast[`${peer.peer.id}.${prefilter ? "prefilter" : "reference"}`] = run;
          console.log(`  ${peer.label}${prefilter ? ", IoU filter first" : ""}: ${run.seconds.toFixed(1)} s`);
          return [run.seconds];
        },
      })),
    ),
  ];
  const measured = await interleave(sides, PASSES, 0);
  await predictor.dispose();
  await Promise.all(peers.map((p) => p.close()));

  const mine = segkitLast;
  const runs: Record<string, Run> = {
    segkit: {
      seconds: measured.segkit as Summary,
      candidatesPerSecond: candidates / (measured.segkit as Summary).median,
      afterFilters: mine.afterFilters,
      records: mine.records.length,
      peakRssGrowthMB: mine.peakGrowthMB,
    },
  };
  for (const [name, run] of Object.entries(peerLast)) {
    const seconds = measured[name] as Summary;
    runs[name] = {
      seconds,
      candidatesPerSecond: candidates / seconds.median,
      afterFilters: run.afterFilters,
      records: run.records.length,
      peakRssGrowthMB: run.peakGrowthMB,
      agreement: agreement(mine.records, run.records),
      timings: run.timings,
    };
  }
  const f = (v: number, d = 1) => v.toFixed(d);
  console.log(
    `\n${WIDTH}x${HEIGHT}, ${SIDE}x${SIDE} grid, ${candidates} candidates, ${THREADS} threads, ${PASSES} passes`,
  );
  console.log(
    "side                     seconds (range)        cand/s  segkit x  peak RSS MB  after filters  records (agree)",
  );
  const segkitSeconds = (runs.segkit as Run).seconds.median;
  for (const [name, r] of Object.entries(runs)) {
    const label =
      name === "segkit"
        ? "segkit"
        : `${peers.find((p) => name.startsWith(p.peer.id))?.ready.versions.torch} ${name.split(".")[1]}`;
    console.log(
      `${label.padEnd(24)} ${f(r.seconds.median).padStart(7)} (${f(r.seconds.low)}-${f(r.seconds.high)})`.padEnd(47) +
        `${f(r.candidatesPerSecond).padStart(6)} ${f(r.seconds.median / segkitSeconds, 2).padStart(9)} ` +
        `${f(r.peakRssGrowthMB, 0).padStart(12)} ${String(r.afterFilters).padStart(14)}  ${r.records}${r.agreement ? ` (${r.agreement.matched})` : ""}`,
    );
    if (r.timings)
      console.log(
        `    decoder ${f(r.timings.decode)} s, upscaling ${f(r.timings.upscale)} s, filters + RLE ` +
          `${f(r.timings.filter)} s, NMS ${f(r.timings.nms, 2)} s`,
      );
  }

  await writeResults(args.out, {
    date: new Date().toISOString(),
    machine: machine(),
    config: { threads: THREADS, pointsPerSide: SIDE, image: [HEIGHT, WIDTH], candidates, passes: PASSES },
    peers: Object.fromEntries(peers.map((p) => [p.peer.id, { python: p.peer.python, ...p.ready }])),
    method: {
      segkit: "generateMasks on onnxruntime-node (the official export: one point per decoder call)",
      reference:
        "segment-anything's _process_batch: 64 points per decoder batch, all 3 x 64 candidates upscaled to the image, then the IoU filter",
      prefilter: "the same with the predicted-IoU filter before the upscaling (only candidates that pass are upscaled)",
      interleaving:
        "no warm-up pass; each pass runs every side once, the order rotating; median and range of the passes",
    },
    runs,
    /** Peer seconds / segkit seconds (> 1: segkit faster), medians. */
    ratios: Object.fromEntries(
      Object.entries(runs)
        .filter(([k]) => k !== "segkit")
        .map(([k, r]) => [
          k,
          {
            throughput: r.seconds.median / segkitSeconds,
            peakMemory: (runs.segkit as Run).peakRssGrowthMB / r.peakRssGrowthMB,
          },
        ]),
    ),
  });
} finally {
  await rm(root, { recursive: true, force: true });
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
