/**
 * The frames of a clip for the video predictor: a directory of JPEG / PNG frames in name order (what the official
 * predictor takes), or a video file decoded to such a directory by a system `ffmpeg`. Frames are read one at a time
 * when the predictor needs them; every frame must have the first frame's size.
 */
import { spawnSync } from "node:child_process";
import { mkdtemp, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SegkitError } from "../core/errors.js";
import type { RgbImage } from "../core/image.js";
import { IMAGE_EXTENSIONS } from "../data/files.js";
import { listFiles } from "../io/fs.js";
import { readImage, readImageSize } from "../io/image.js";

/** The frames of a clip: how many, their size, and frame i's pixels (read when needed). */
export interface VideoFrames {
  readonly count: number;
  readonly width: number;
  readonly height: number;
  /** Frame i's name (a file name), for results. */
  name(i: number): string;
  read(i: number): Promise<RgbImage>;
}

/** Frames of `path` (a directory of images, or a video file through ffmpeg); `close()` removes decoded frames. */
export async function openVideoFrames(path: string): Promise<VideoFrames & { close(): Promise<void> }> {
  const info = await stat(path).catch(() => undefined);
  if (!info) throw new SegkitError("no such file or directory", { file: path });
  if (info.isDirectory()) return { ...(await frameDirectory(path)), close: async () => {} };
  const probe = spawnSync("ffmpeg", ["-version"], { stdio: "ignore" });
  if (probe.error || probe.status !== 0) {
    throw new SegkitError("a video file needs ffmpeg on PATH, which this machine lacks", {
      file: path,
      hint: `extract its frames to a directory (e.g. ffmpeg -i ${path} -q:v 2 frames/%05d.jpg) and give that`,
    });
  }
  const dir = await mkdtemp(join(tmpdir(), "segkit-frames-"));
  const run = spawnSync("ffmpeg", ["-v", "error", "-i", path, "-q:v", "2", join(dir, "%05d.jpg")], {
    encoding: "utf8",
  });
  if (run.status !== 0) {
    await rm(dir, { recursive: true, force: true });
    throw new SegkitError(`ffmpeg could not decode it (${(run.stderr ?? "").trim().split("\n")[0]})`, { file: path });
  }
  const frames = await frameDirectory(dir);
  return { ...frames, close: () => rm(dir, { recursive: true, force: true }) };
}

async function frameDirectory(dir: string): Promise<VideoFrames> {
  const names = (await listFiles(dir))
    .filter((n) => IMAGE_EXTENSIONS.includes(n.slice(n.lastIndexOf(".")).toLowerCase()))
    .sort();
  const first = names[0];
  if (!first) throw new SegkitError("no frames (JPEG or PNG images) in this directory", { file: dir });
  const { width, height } = await readImageSize(join(dir, first));
  return {
    count: names.length,
    width,
    height,
    name: (i) => names[i] as string,
    async read(i) {
      const file = join(dir, names[i] as string);
      const img = await readImage(file);
      if (img.width !== width || img.height !== height) {
        throw new SegkitError(`frame is ${img.width}x${img.height}, the first frame ${width}x${height}`, { file });
      }
      return img;
    },
  };
}
