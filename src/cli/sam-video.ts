/**
 * `segkit sam video`: SAM 2 tracking over a clip. One object from `--frame/--point/--box`, or the general case from
 * `--prompts steps.json` (prompt steps and `{"propagate": "forward" | "backward"}` steps, run in order; without a
 * propagate step: forward from the earliest prompted frame, then backward from it). Every frame result is written as
 * it comes (a later pass over a frame overwrites it): `OUT/<object>/<frame>.png` (0/255), `OUT/overlay/<frame>.png`,
 * and at the end (or on Ctrl-C, with the frames done) `OUT/result.json`.
 */
import { mkdir, readFile } from "node:fs/promises";
import { join, parse } from "node:path";
import { z } from "zod";
import {
  createMask,
  createVideoPredictor,
  encodeBinaryMaskPng,
  overlayMask,
  type SamBox,
  type SamPoint,
  SegkitError,
  type VideoFrameResult,
  type VideoPrompt,
  writeFileAtomic,
  writeImagePng,
} from "../index.js";
import { abortOnSigint, type CliIo } from "./options.js";
import { createProgress } from "./progress.js";

export interface SamVideoFlags {
  model?: string;
  frames?: string;
  out?: string;
  frame: number;
  object: number;
  point: SamPoint[];
  box: SamBox[];
  prompts?: string;
  threads?: number;
}

const pair = z.tuple([z.number(), z.number()]);
const stepSchema = z.union([
  z.object({ propagate: z.enum(["forward", "backward"]) }).strict(),
  z
    .object({
      frame: z.number().int().min(0),
      object: z.number().int(),
      points: z.array(pair).optional(),
      labels: z.array(z.union([z.literal(0), z.literal(1)])).optional(),
      box: z.tuple([z.number(), z.number(), z.number(), z.number()]).optional(),
    })
    .strict(),
]);
type Step = z.infer<typeof stepSchema>;

/** The steps of `--prompts FILE`, or the one object the flags give. */
async function readSteps(flags: SamVideoFlags): Promise<Step[]> {
  if (!flags.prompts) {
    if (!flags.point.length && !flags.box.length) {
      throw new SegkitError("give --point or --box (with --frame and --object), or --prompts steps.json");
    }
    if (flags.box.length > 1) throw new SegkitError("one --box per object; use --prompts for several objects");
    return [
      {
        frame: flags.frame,
        object: flags.object,
        points: flags.point.map((p) => [p.x, p.y] as [number, number]),
        labels: flags.point.map((p) => p.label),
        ...(flags.box[0] ? { box: [...flags.box[0]] as [number, number, number, number] } : {}),
      },
    ];
  }
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(flags.prompts, "utf8"));
  } catch (err) {
    throw new SegkitError(`not valid JSON (${(err as Error).message})`, { file: flags.prompts, cause: err });
  }
  const parsed = z.array(stepSchema).min(1).safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new SegkitError(`step ${issue?.path.join(".")}: ${issue?.message}`, {
      file: flags.prompts,
      hint: 'a list of {"frame", "object", "points": [[x, y]], "labels": [1], "box": [x1, y1, x2, y2]} and {"propagate": "forward" | "backward"}',
    });
  }
  for (const [i, s] of parsed.data.entries()) {
    if ("frame" in s && (s.points?.length ?? 0) !== (s.labels?.length ?? s.points?.length ?? 0)) {
      throw new SegkitError(`step ${i}: ${s.points?.length} points but ${s.labels?.length} labels`, {
        file: flags.prompts,
      });
    }
  }
  return parsed.data;
}

export async function samVideo(flags: SamVideoFlags, io: CliIo): Promise<void> {
  if (!flags.model || !flags.frames || !flags.out) {
    throw new SegkitError("sam video needs --model DIR --frames DIR --out DIR");
  }
  const steps = await readSteps(flags);
  const out = flags.out;
  const video = await createVideoPredictor(flags.model, flags.threads === undefined ? {} : { threads: flags.threads });
  const abort = abortOnSigint(io, "frame");
  const latest = new Map<number, VideoFrameResult>();
  try {
    const clip = await video.init(flags.frames);
    const stem = (i: number) => parse(clip.name(i)).name;
    const write = async (r: VideoFrameResult) => {
      latest.set(r.frame, r);
      const labels = createMask(clip.width, clip.height);
      for (const [k, o] of r.objects.entries()) {
        await mkdir(join(out, String(o.id)), { recursive: true });
        await writeFileAtomic(join(out, String(o.id), `${stem(r.frame)}.png`), encodeBinaryMaskPng(o.mask));
        for (let p = 0; p < labels.data.length; p++) if (o.mask.data[p]) labels.data[p] = k + 1;
      }
      await mkdir(join(out, "overlay"), { recursive: true });
      await writeImagePng(
        join(out, "overlay", `${stem(r.frame)}.png`),
        overlayMask(await clip.read(r.frame), labels, { skipClasses: [0] }),
      );
    };
    const propagate = async (reverse: boolean) => {
      const progress = createProgress(reverse ? "tracking backward" : "tracking", "frames");
      let done = 0;
      try {
        for await (const r of video.propagate({ reverse })) {
          await write(r);
          progress.update(++done, clip.count);
          if (abort.signal.aborted) break;
        }
      } finally {
        progress.stop();
      }
    };
    for (const s of steps) {
      if (abort.signal.aborted) break;
      if ("propagate" in s) {
        await propagate(s.propagate === "backward");
        continue;
      }
      const prompt: VideoPrompt = {
        frame: s.frame,
        object: s.object,
        ...(s.points ? { points: s.points.map(([x, y], k) => ({ x, y, label: s.labels?.[k] ?? 1 })) } : {}),
        ...(s.box ? { box: s.box } : {}),
      };
      await write(await video.addPrompt(prompt));
    }
    if (!steps.some((s) => "propagate" in s) && !abort.signal.aborted) {
      await propagate(false);
      if (!abort.signal.aborted) await propagate(true);
    }
    const frames = [...latest.values()]
      .sort((a, b) => a.frame - b.frame)
      .map((r) => ({
        frame: clip.name(r.frame),
        objects: r.objects.map((o) => ({
          id: o.id,
          score: o.score,
          mask: `${o.id}/${stem(r.frame)}.png`,
          area: o.mask.data.reduce((a, v) => a + v, 0),
        })),
      }));
    await writeFileAtomic(join(out, "result.json"), `${JSON.stringify({ frames }, null, 2)}\n`);
    const objects = new Set(frames.flatMap((f) => f.objects.map((o) => o.id))).size;
    io.out(
      `tracked ${objects} object(s) over ${frames.length} of ${clip.count} frames; wrote ${join(out, "result.json")}`,
    );
  } finally {
    abort.release();
    await video.dispose();
  }
}
