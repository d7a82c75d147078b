import { existsSync, statSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { z } from "zod";
import { SegkitError } from "../core/errors.js";
import { DEFAULT_IGNORE_INDEX } from "../core/image.js";
import { type Palette, PET_PALETTE } from "../core/palette.js";
import type { SkippedSample } from "../core/skipped.js";
import { readJson } from "../io/fs.js";
import { COCO_ANNOTATIONS_FILE, openCoco } from "./coco.js";
import { findPanopticJsonSync, openCocoPanoptic } from "./coco-panoptic.js";
import type { Dataset } from "./dataset.js";
import { FileDataset, type FileDatasetInfo, pairFiles, type SampleFiles } from "./files.js";
import { regionInstanceDataset } from "./region-instances.js";
import { createSyntheticDataset, type SyntheticOptions } from "./synthetic.js";
import { createSyntheticInstances } from "./synthetic-instances.js";

/**
 * Options of `openDataset`. Which apply depends on the format; unknown keys are rejected.
 * Paths are relative to the dataset root unless absolute.
 */
export const OpenDatasetOptionsSchema = z
  .object({
    /** Format name; detected from the directory layout when omitted. */
    format: z.string().optional(),
    /** The format's official split(s), comma-separated (e.g. `trainval`, `train,val`); default: all. */
    split: z.string().optional(),
    /** Throw on the first unusable sample instead of reporting it and going on. */
    strict: z.boolean().default(false),
    /**
     * folder: image and mask directories (default `images`, `masks`), and an optional directory of valid-region
     * masks; coco: the directory its `file_name`s are relative to (default the dataset directory).
     */
    images: z.string().optional(),
    /** coco: the annotations file (default `annotations.json`), e.g. `annotations/instances_val2017.json`. */
    annotations: z.string().optional(),
    /** folder: the mask directory (default `masks`); coco-panoptic: the PNG folder (default: the JSON's name). */
    masks: z.string().optional(),
    valid: z.string().optional(),
    /** folder: class names (default: `class0..classN-1` from the value map, or 2 classes for a threshold). */
    classes: z.array(z.string().min(1)).min(1).optional(),
    /** folder: stored value -> class index (or the ignore index). */
    values: z.record(z.string().regex(/^\d+$/), z.number().int().min(0).max(255)).optional(),
    /** folder: binary masks, stored value >= threshold -> class 1. */
    threshold: z.number().int().min(1).max(65535).optional(),
    ignoreIndex: z.number().int().min(0).max(255).default(DEFAULT_IGNORE_INDEX),
    /** oxford-pet: `trimap` (pet, background, border) or `binary` (background, pet: pet + border). */
    mode: z.enum(["trimap", "binary"]).default("trimap"),
    /** coco: `semantic` (class maps, default) or `instance` (samples also carry their `instances`). */
    task: z.enum(["semantic", "instance"]).optional(),
    /** synthetic: seed, number of samples and image size. */
    seed: z.number().int().min(0).optional(),
    length: z.number().int().min(1).optional(),
    size: z.number().int().optional(),
  })
  .strict();

export type OpenDatasetOptions = z.input<typeof OpenDatasetOptionsSchema>;
type Options = z.output<typeof OpenDatasetOptionsSchema>;

/** A generated set's `open`: seed, length and size from the options; a bad value is a SegkitError. */
const generated =
  (create: (o: SyntheticOptions) => Dataset) =>
  async (_root: string, o: Options): Promise<Dataset> => {
    try {
      return create({
        ...(o.seed !== undefined ? { seed: o.seed } : {}),
        ...(o.length !== undefined ? { length: o.length } : {}),
        ...(o.size !== undefined ? { size: o.size } : {}),
      });
    } catch (err) {
      throw new SegkitError(err instanceof Error ? err.message : String(err));
    }
  };

/** Options every format takes. */
const COMMON_OPTIONS = ["format", "strict"];

interface DatasetFormat {
  /** One line for `--help` and error messages. */
  description: string;
  /** The options of `OpenDatasetOptions` this format uses besides the common ones; others are rejected. */
  options: readonly (keyof OpenDatasetOptions)[];
  /** Whether `root` looks like this format's layout. */
  detect(root: string): boolean;
  open(root: string, options: Options): Promise<Dataset>;
  /**
   * The held-out split `segkit eval` scores when no split is given, if `root` has one (absent: the splits `open`
   * takes by default), and why that one.
   */
  evalSplit?(root: string): { split: string; why: string } | undefined;
}

const has = (root: string, ...parts: string[]): boolean => existsSync(join(root, ...parts));
const isDirectory = (path: string): boolean => existsSync(path) && statSync(path).isDirectory();

/** CamVid's 11 classes as SegNet prepared them, with SegNet's colours; label 11 (void) is ignored. */
export const CAMVID_CLASSES = [
  "Sky",
  "Building",
  "Pole",
  "Road",
  "Pavement",
  "Tree",
  "SignSymbol",
  "Fence",
  "Car",
  "Pedestrian",
  "Bicyclist",
] as const;

const CAMVID_PALETTE: Palette = [
  [128, 128, 128],
  [128, 0, 0],
  [192, 192, 128],
  [128, 64, 128],
  [60, 40, 222],
  [128, 128, 0],
  [192, 128, 128],
  [64, 64, 128],
  [64, 0, 128],
  [64, 64, 0],
  [0, 128, 192],
];

function splitNames(options: Options, official: readonly string[], fallback: readonly string[]): string[] {
  const names = options.split ? options.split.split(",").map((s) => s.trim()) : [...fallback];
  for (const n of names) {
    if (!official.includes(n)) {
      throw new SegkitError(`unknown split "${n}"`, { hint: `valid splits: ${official.join(", ")}` });
    }
  }
  return names;
}

/** The dataset over `pairs`; in strict mode the first listing-time skip is thrown instead. */
function fileDataset(
  pairs: SampleFiles[],
  skipped: SkippedSample[],
  info: Omit<FileDatasetInfo, "ignoreIndex">,
  options: Options,
): Dataset {
  const first = skipped[0];
  if (options.strict && first) throw new SegkitError(first.reason, { file: first.path });
  if (options.ignoreIndex < info.classNames.length) {
    throw new SegkitError(
      `ignore index ${options.ignoreIndex} is one of the ${info.classNames.length} classes (0..${info.classNames.length - 1})`,
      { hint: "choose an ignore index outside the class range (255 by default)" },
    );
  }
  return new FileDataset(pairs, { ...info, ignoreIndex: options.ignoreIndex }, skipped);
}

async function openOxfordPet(root: string, options: Options): Promise<Dataset> {
  const imageDir = join(root, "images");
  const trimapDir = join(root, "annotations", "trimaps");
  const { pairs, skipped } = await pairFiles(imageDir, trimapDir);
  let kept: SampleFiles[] = pairs;
  if (options.split) {
    const selected = splitNames(options, ["trainval", "test"], []);
    const listed = new Map<string, string>(); // id -> the split file listing it
    for (const split of ["trainval", "test"]) {
      const file = join(root, "annotations", `${split}.txt`);
      const text = await readFile(file, "utf8").catch((err: unknown) => {
        if (!selected.includes(split)) return "";
        throw new SegkitError("split file not found", { file, cause: err });
      });
      for (const line of text.split("\n")) {
        const id = line.trim().split(/\s+/)[0];
        if (id) listed.set(id, split);
      }
    }
    const byId = new Map(pairs.map((p) => [p.id, p]));
    for (const [id, split] of listed) {
      if (selected.includes(split) && !byId.has(id)) {
        skipped.push({
          path: join(imageDir, `${id}.jpg`),
          reason: `listed in ${split}.txt but has no image+trimap pair`,
        });
      }
    }
    for (const p of pairs) {
      if (!listed.has(p.id))
        skipped.push({ path: p.image, reason: "in no official split file (trainval.txt, test.txt)" });
    }
    kept = pairs.filter((p) => selected.includes(listed.get(p.id) ?? ""));
  }
  const binary = options.mode === "binary";
  return fileDataset(
    kept,
    skipped,
    {
      format: "oxford-pet",
      classNames: binary ? ["background", "pet"] : ["pet", "background", "border"],
      // Trimap 1 = pet, 2 = background, 3 = border; as in the Keras/TensorFlow tutorials, class = trimap - 1.
      encoding: { values: binary ? { 1: 1, 2: 0, 3: 1 } : { 1: 0, 2: 1, 3: 2 } },
      palette: binary ? [PET_PALETTE[1] ?? [0, 0, 0], PET_PALETTE[0] ?? [255, 0, 0]] : PET_PALETTE,
      backgroundClass: binary ? 0 : 1,
    },
    options,
  );
}

async function openCamvid(root: string, options: Options): Promise<Dataset> {
  const present = ["train", "val", "test"].filter((s) => has(root, s) && has(root, `${s}annot`));
  const pairs: SampleFiles[] = [];
  const skipped: SkippedSample[] = [];
  for (const s of ["train", "val", "test"]) {
    if (has(root, s) !== has(root, `${s}annot`)) {
      const [there, missing] = has(root, s) ? [s, `${s}annot`] : [`${s}annot`, s];
      skipped.push({ path: join(root, there), reason: `no ${missing}/ beside it` });
    }
  }
  for (const split of splitNames(options, ["train", "val", "test"], present)) {
    const found = await pairFiles(join(root, split), join(root, `${split}annot`));
    pairs.push(...found.pairs.map((p) => ({ ...p, id: `${split}/${p.id}` })));
    skipped.push(...found.skipped);
  }
  const values: Record<number, number> = { 11: options.ignoreIndex };
  CAMVID_CLASSES.forEach((_, i) => {
    values[i] = i;
  });
  return fileDataset(
    pairs,
    skipped,
    {
      format: "camvid",
      classNames: CAMVID_CLASSES,
      encoding: { values },
      palette: CAMVID_PALETTE,
    },
    options,
  );
}

async function openDrive(root: string, options: Options): Promise<Dataset> {
  const pairs: SampleFiles[] = [];
  const skipped: SkippedSample[] = [];
  const number = (re: RegExp) => (name: string) => re.exec(name)?.[1];
  for (const split of splitNames(options, ["training", "test"], ["training"])) {
    const dir = join(root, split);
    const found = await pairFiles(join(dir, "images"), join(dir, "1st_manual"), {
      imageKey: number(/^(\d+)_(?:training|test)\.tiff?$/i),
      maskKey: number(/^(\d+)_manual1\.gif$/i),
      validDir: join(dir, "mask"),
      validKey: number(/^(\d+)_(?:training|test)_mask\.gif$/i),
    });
    pairs.push(...found.pairs);
    skipped.push(...found.skipped);
  }
  return fileDataset(
    pairs,
    skipped,
    {
      format: "drive",
      classNames: ["background", "vessel"],
      encoding: { values: { 0: 0, 255: 1 } },
      palette: [
        [0, 0, 0],
        [0, 255, 0],
      ],
      backgroundClass: 0,
    },
    options,
  );
}

async function openIsbi(root: string, options: Options): Promise<Dataset> {
  const pairs: SampleFiles[] = [];
  const skipped: SkippedSample[] = [];
  // `test/` is a held-out part laid out like `train/` (the challenge's own test labels are not public)
  for (const split of splitNames(options, ["train", "test"], ["train"])) {
    const found = await pairFiles(join(root, split, "image"), join(root, split, "label"));
    pairs.push(...found.pairs.map((p) => (split === "train" ? p : { ...p, id: `${split}/${p.id}` })));
    skipped.push(...found.skipped);
  }
  return fileDataset(
    pairs,
    skipped,
    {
      format: "isbi2012",
      classNames: ["cell", "membrane"],
      // Labels store membrane as 0 and cell interior as 255; membrane is the foreground class.
      encoding: { values: { 0: 1, 255: 0 } },
      palette: [
        [0, 0, 0],
        [255, 0, 255],
      ],
      backgroundClass: 0,
    },
    options,
  );
}

/** `classes.json` of a folder dataset (what `segkit export --to png` writes): class names and the background class. */
const ClassesFileSchema = z.looseObject({
  classes: z.array(z.string().min(1)).min(1).max(255),
  backgroundClass: z.number().int().min(0).optional(),
});

async function readClassesFile(root: string): Promise<z.infer<typeof ClassesFileSchema> | undefined> {
  const file = join(root, "classes.json");
  if (!existsSync(file)) return undefined;
  const parsed = ClassesFileSchema.safeParse(await readJson(file));
  if (!parsed.success) {
    throw new SegkitError("expected { classes: [names], backgroundClass?: index }", { file });
  }
  return parsed.data;
}

async function openFolder(root: string, options: Options): Promise<Dataset> {
  const at = (p: string) => resolve(root, p); // relative to the dataset root, or absolute
  if (options.values && options.threshold !== undefined) {
    throw new SegkitError("give a value map or a threshold, not both");
  }
  // without classes, a value map or a threshold: the class names of classes.json, if there is one
  const saved =
    options.classes || options.values || options.threshold !== undefined ? undefined : await readClassesFile(root);
  if (saved) options = { ...options, classes: saved.classes };
  const { pairs, skipped } = await pairFiles(at(options.images ?? "images"), at(options.masks ?? "masks"), {
    ...(options.valid ? { validDir: at(options.valid) } : {}),
  });
  const values = options.values
    ? Object.fromEntries(Object.entries(options.values).map(([k, v]) => [Number(k), v]))
    : undefined;
  const mapped = values ? Object.values(values).filter((v) => v !== options.ignoreIndex) : [];
  const numClasses =
    options.classes?.length ??
    (values ? (mapped.length ? Math.max(...mapped) + 1 : 0) : options.threshold !== undefined ? 2 : undefined);
  if (options.threshold !== undefined && numClasses !== 2) {
    throw new SegkitError(`a threshold makes 2 classes, but ${numClasses} class names were given`);
  }
  const outside = mapped.filter((v) => v >= (numClasses ?? 0));
  if (outside.length > 0 || numClasses === 0) {
    throw new SegkitError(`value map targets ${outside.join(", ") || "nothing"} outside the ${numClasses} classes`, {
      hint: "map stored values to class indices 0..N-1 (with N class names) or to the ignore index",
    });
  }
  if (numClasses === undefined) {
    throw new SegkitError("folder datasets need class names, a value map or a threshold", {
      file: root,
      hint: "pass --classes a,b,c (masks hold class indices 0..N-1), --values 0:0,255:1, or --threshold 128",
    });
  }
  const classNames = options.classes ?? Array.from({ length: numClasses }, (_, i) => `class${i}`);
  // the background: as classes.json says, else a class named "background" (not exported as a COCO / YOLO class)
  const named = classNames.findIndex((n) => n.toLowerCase() === "background");
  const backgroundClass =
    saved?.backgroundClass !== undefined && saved.backgroundClass < saved.classes.length
      ? saved.backgroundClass
      : named >= 0
        ? named
        : undefined;
  return fileDataset(
    pairs,
    skipped,
    {
      format: "folder",
      classNames,
      encoding: values
        ? { values }
        : options.threshold !== undefined
          ? { threshold: options.threshold }
          : { numClasses },
      ...(backgroundClass !== undefined ? { backgroundClass } : {}),
    },
    options,
  );
}

/** The dataset formats segkit reads, by name. */
export const DATASET_FORMATS: Readonly<Record<string, DatasetFormat>> = {
  folder: {
    description:
      "images/ + masks/ paired by base name (any two directories; optional valid-region directory; classes.json)",
    options: ["images", "masks", "valid", "classes", "values", "threshold", "ignoreIndex"],
    detect: (root) => has(root, "images") && has(root, "masks"),
    open: openFolder,
  },
  "oxford-pet": {
    description: "Oxford-IIIT Pet: images/*.jpg + annotations/trimaps/*.png, splits trainval/test",
    options: ["split", "mode", "ignoreIndex"],
    detect: (root) => has(root, "annotations", "trimaps"),
    open: openOxfordPet,
    // segkit train takes trainval
    evalSplit: (root) =>
      has(root, "annotations", "test.txt") ? { split: "test", why: "the official test split" } : undefined,
  },
  camvid: {
    description: "CamVid as prepared for SegNet: train/ trainannot/ val/ valannot/ test/ testannot/, 11 classes",
    options: ["split", "ignoreIndex"],
    detect: (root) => has(root, "trainannot") || has(root, "valannot"),
    open: openCamvid,
    // the split papers report; a copy without it (the shared one) is scored on val
    evalSplit: (root) =>
      ["test", "val"]
        .filter((s) => has(root, s) && has(root, `${s}annot`))
        .map((split) => ({ split, why: split === "test" ? "the split papers report" : "the dataset has no test/" }))[0],
  },
  drive: {
    description:
      "DRIVE retinal vessels: training/images/*.tif, training/1st_manual/*.gif, field of view training/mask/",
    options: ["split", "ignoreIndex"],
    detect: (root) => has(root, "training", "1st_manual"),
    open: openDrive,
    evalSplit: (root) => (has(root, "test", "images") ? { split: "test", why: "the held-out half" } : undefined),
  },
  isbi2012: {
    description:
      "ISBI 2012 EM membranes: train/image/*.png + train/label/*.png; task instance: the cells between membranes",
    options: ["split", "ignoreIndex", "task"],
    detect: (root) => has(root, "train", "image") && has(root, "train", "label"),
    open: async (root, o) => {
      const ds = await openIsbi(root, o);
      return o.task === "instance" ? regionInstanceDataset(ds, { classIndex: 0 }) : ds;
    },
    evalSplit: (root) => (has(root, "test", "label") ? { split: "test", why: "the held-out part" } : undefined),
  },
  coco: {
    description:
      `COCO instances: ${COCO_ANNOTATIONS_FILE} or --annotations FILE (RLE or polygons) + images at its file_names ` +
      "(under the dataset or --images DIR); 0 = background",
    options: ["annotations", "images", "ignoreIndex", "task"],
    detect: (root) => has(root, COCO_ANNOTATIONS_FILE),
    open: (root, o) =>
      openCoco(root, {
        ignoreIndex: o.ignoreIndex,
        strict: o.strict,
        ...(o.task ? { task: o.task } : {}),
        ...(o.annotations ? { annotations: resolve(root, o.annotations) } : {}),
        ...(o.images ? { images: resolve(root, o.images) } : {}),
      }),
  },
  "coco-panoptic": {
    description:
      "COCO panoptic: panoptic*.json (or --annotations FILE) + its PNG folder of the same name (or --masks DIR), " +
      "images under the dataset or --images DIR; void = ignored",
    options: ["annotations", "masks", "images", "ignoreIndex"],
    detect: (root) => findPanopticJsonSync(root).length > 0,
    open: (root, o) =>
      openCocoPanoptic(root, {
        ignoreIndex: o.ignoreIndex,
        strict: o.strict,
        ...(o.annotations ? { annotations: resolve(root, o.annotations) } : {}),
        ...(o.masks ? { masks: resolve(root, o.masks) } : {}),
        ...(o.images ? { images: resolve(root, o.images) } : {}),
      }),
  },
  synthetic: {
    description: "built-in demo data generated from a seed (no files; the path is ignored)",
    options: ["seed", "length", "size"],
    detect: () => false,
    open: generated(createSyntheticDataset),
  },
  "synthetic-instances": {
    description: "built-in instance data: touching and overlapping discs, boxes and triangles from a seed (no files)",
    options: ["seed", "length", "size", "task"],
    detect: () => false,
    open: generated(createSyntheticInstances),
  },
};

export const DATASET_FORMAT_NAMES = Object.keys(DATASET_FORMATS);

/**
 * The split `segkit eval` scores when none is given: the format's held-out split if `root` has it (CamVid `test`,
 * else `val`; DRIVE `test`; Oxford Pet `test`), else undefined (the format's default splits). `format` undefined: detected from `root`.
 */
export function defaultEvalSplit(root: string, format?: string): { split: string; why: string } | undefined {
  const name = format ?? detectFormat(root);
  return DATASET_FORMATS[name]?.evalSplit?.(root);
}

/** The format whose layout `root` has, or an error listing the formats and what each expects. */
export function detectFormat(root: string): string {
  if (!isDirectory(root)) throw new SegkitError("dataset directory not found", { file: root });
  for (const [name, f] of Object.entries(DATASET_FORMATS)) if (f.detect(root)) return name;
  throw new SegkitError("cannot tell the dataset format from its layout", {
    file: root,
    hint: `pass --format, one of: ${DATASET_FORMAT_NAMES.join(", ")}`,
  });
}

/**
 * Opens a dataset on disk (or the built-in `synthetic` set). Files are listed now and decoded on `get(i)`.
 * Unpaired or unusable files are in `dataset.skipped` with reasons (or, with `strict`, the first is thrown).
 */
export async function openDataset(root: string, options: OpenDatasetOptions = {}): Promise<Dataset> {
  const parsed = OpenDatasetOptionsSchema.safeParse(options);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new SegkitError(`invalid dataset option ${issue?.path.join(".") || ""}: ${issue?.message ?? "invalid"}`);
  }
  const o = parsed.data;
  const name = o.format ?? detectFormat(root);
  const format = DATASET_FORMATS[name];
  if (!format) {
    throw new SegkitError(`unknown dataset format "${name}"`, {
      hint: `valid formats: ${DATASET_FORMAT_NAMES.join(", ")}`,
    });
  }
  const given = Object.keys(options).filter((k) => options[k as keyof OpenDatasetOptions] !== undefined);
  const unused = given.filter(
    (k) => !COMMON_OPTIONS.includes(k) && !format.options.includes(k as keyof OpenDatasetOptions),
  );
  if (unused.length > 0) {
    throw new SegkitError(
      `option${unused.length > 1 ? "s" : ""} ${unused.join(", ")} ${unused.length > 1 ? "do" : "does"} not apply to format ${name}`,
      {
        hint: format.options.length ? `${name} takes: ${format.options.join(", ")}` : `${name} takes no options`,
      },
    );
  }
  if (!name.startsWith("synthetic") && !isDirectory(root)) {
    throw new SegkitError("dataset directory not found", { file: root });
  }
  return format.open(root, o);
}
