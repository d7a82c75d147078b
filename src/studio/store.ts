/**
 * The studio's project: the images of one directory and their instance annotations, kept in `<out>/annotations.json`.
 *
 * Conventions, stated once:
 * - An image's id is its path relative to the images directory, `/`-separated (`sub/cat.jpg`). Images are the files
 *   with an image extension under the directory, recursively (dot-entries, the project directory and symbolic links
 *   that resolve outside the directory left out), sorted by id; their size is read from the header.
 * - `annotations.json` is COCO instances JSON (`export/coco.ts` schema): `images` with `file_name` = the id, one
 *   compressed-RLE annotation per instance (`iscrowd` 0, area and bbox from the RLE) in drawing order (last on top),
 *   `categories` = the classes (ids 1, 2, ...). segkit's own state sits under a top-level `"segkit"` key:
 *   `{ format: 1, revision, mode, classes: [{id, name, color}], images: { <id>: { state, revision, instances:
 *   [{id, source, score?}] } } }`, the instances in the order of the image's annotations. An image is in COCO
 *   `images` once it has instances or a state other than "new" (so `segkit train --format coco <out> --images <dir>`
 *   trains on what was labelled, not on untouched images as background).
 * - Every accepted change is written at once with `writeFileAtomic`: a reader (or a restart after a kill) sees the
 *   file before or after the change, never a part. Changes are applied one at a time; each image has a revision
 *   (0 before its first change) and a change must name the revision it was made on (`baseRevision`), else it is
 *   refused with a `StudioConflict`: two tabs cannot silently overwrite each other. The project revision counts
 *   all accepted changes.
 * - Opening an existing project continues it: the file is checked (schema, counts, RLE sizes) and a bad file is an
 *   error naming it, never overwritten. Records of images no longer in the directory are kept as they are.
 */
import { readdir, readFile, realpath, rm } from "node:fs/promises";
import { basename, dirname, extname, join, relative, resolve, sep } from "node:path";
import { z } from "zod";
import { SegkitError } from "../core/errors.js";
import { VOC_PALETTE } from "../core/palette.js";
import { COCO_ANNOTATIONS_FILE, MAX_COCO_JSON_BYTES } from "../data/coco.js";
import { IMAGE_EXTENSIONS } from "../data/files.js";
import { type CocoAnnotation, type CocoInstances, CocoInstancesSchema, CocoRleSchema } from "../export/coco.js";
import { isWithin, listFiles, pathExists, readJson, writeFileAtomic } from "../io/fs.js";
import { readImageSize } from "../io/image.js";
import {
  type CompressedRle,
  checkRle,
  type Rle,
  rleArea,
  rleFromString,
  rleToBbox,
  rleToString,
} from "../masks/rle.js";

export const IMAGE_STATES = ["new", "in-progress", "done"] as const;
export type ImageState = (typeof IMAGE_STATES)[number];
export const INSTANCE_SOURCES = ["sam", "manual", "prelabel"] as const;
export type InstanceSource = (typeof INSTANCE_SOURCES)[number];

/** Most instances one image may hold. */
export const MAX_INSTANCES = 10_000;
/** Most classes (the coco reader's limit: 8-bit masks with class 0 background and the ignore index 255). */
export const MAX_CLASSES = 254;

export interface StudioClass {
  id: number;
  name: string;
  /** `#rrggbb`: the VOC palette colour of the class id. */
  color: string;
}

export interface StudioImage {
  /** Path relative to the images directory, `/`-separated. */
  id: string;
  /** Absolute path. */
  path: string;
  width: number;
  height: number;
}

export interface StudioInstance {
  id: string;
  classId: number;
  rle: CompressedRle;
  source: InstanceSource;
  score?: number;
}

export interface ImageAnnotations {
  revision: number;
  state: ImageState;
  instances: StudioInstance[];
}

const instanceId = z.string().min(1).max(128);

/** One instance as the API takes it: RLE counts compressed (a string) or a list of numbers. */
export const StudioInstanceSchema = z
  .object({
    id: instanceId,
    classId: z.number().int().min(1),
    rle: CocoRleSchema,
    source: z.enum(INSTANCE_SOURCES),
    score: z.number().finite().optional(),
  })
  .strict();

/** The body of `PUT /api/images/:id/annotations`. */
export const AnnotationsChangeSchema = z
  .object({
    baseRevision: z.number().int().min(0),
    state: z.enum(IMAGE_STATES),
    instances: z.array(StudioInstanceSchema).max(MAX_INSTANCES),
  })
  .strict();
export type AnnotationsChange = z.input<typeof AnnotationsChangeSchema>;

const SegkitStateSchema = z
  .object({
    format: z.literal(1),
    revision: z.number().int().min(0),
    mode: z.enum(["instance", "semantic"]),
    classes: z.array(z.object({ id: z.number().int().min(1), name: z.string().min(1), color: z.string() }).strict()),
    images: z.record(
      z.string(),
      z
        .object({
          state: z.enum(IMAGE_STATES),
          revision: z.number().int().min(0),
          instances: z.array(
            z.object({ id: instanceId, source: z.enum(INSTANCE_SOURCES), score: z.number().optional() }).strict(),
          ),
        })
        .strict(),
    ),
  })
  .strict();

/** A change made on an older revision than the image's current one. */
export class StudioConflict extends SegkitError {
  constructor(
    readonly image: string,
    readonly revision: number,
    baseRevision: number,
  ) {
    super(`image ${image} is at revision ${revision}, the change was made on ${baseRevision}`, {
      hint: "reload the image's annotations and apply the change again",
    });
  }
}

export interface ProjectStoreOptions {
  imagesDir: string;
  /** Default: `<images dir>/../<name>-labels`. */
  outDir?: string;
  /** Class names (ids 1, 2, ...); default the project's, or `["object"]` for a new one. */
  classes?: readonly string[];
  /** Images that cannot be read are left out and reported here. */
  onSkip?: (path: string, reason: string) => void;
}

export interface ProjectStore {
  readonly name: string;
  readonly imagesDir: string;
  readonly outDir: string;
  /** `<out>/annotations.json`. */
  readonly file: string;
  readonly mode: "instance";
  readonly classes: readonly StudioClass[];
  /** The listed images, sorted by id. */
  readonly images: readonly StudioImage[];
  /** Accepted changes so far (over restarts). */
  readonly revision: number;
  image(id: string): StudioImage | undefined;
  /** The image's annotations (revision 0, "new", none before its first change); undefined for an unknown id. */
  annotations(id: string): ImageAnnotations | undefined;
  /** Validates and applies a change, writes the file; resolves after the write with the image's new revision. */
  put(id: string, change: unknown): Promise<{ revision: number }>;
  /** Resolves when every change given so far is written (or refused). */
  idle(): Promise<void>;
}

interface ImageRecord extends ImageAnnotations {
  width: number;
  height: number;
  /** Area and bbox of each instance, computed once when it is accepted or loaded. */
  geometry: Geometry[];
}

type Geometry = Pick<CocoAnnotation, "area" | "bbox">;
const geometryOf = (rle: Rle): Geometry => ({ area: rleArea(rle), bbox: rleToBbox(rle) });

const hex = (n: number) => n.toString(16).padStart(2, "0");
const colorOf = (id: number) => `#${(VOC_PALETTE[id % 256] ?? [0, 0, 0]).map(hex).join("")}`;

/** Class names of a classes file: one per line, blank lines and `#` comments skipped. */
export async function readClassesFile(file: string): Promise<string[]> {
  const text = await readFile(file, "utf8").catch((err: NodeJS.ErrnoException) => {
    throw new SegkitError(err.code === "ENOENT" ? "classes file not found" : `cannot read (${err.code})`, { file });
  });
  return text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith("#"));
}

function checkClassNames(names: readonly string[]): void {
  if (names.length === 0 || names.length > MAX_CLASSES) {
    throw new SegkitError(`give 1 to ${MAX_CLASSES} classes, got ${names.length}`);
  }
  for (const n of names) {
    if (!n.trim()) throw new SegkitError("a class name is empty");
    if (names.indexOf(n) !== names.lastIndexOf(n)) throw new SegkitError(`class "${n}" is given twice`);
  }
}

/** Opens (or starts) the project of `imagesDir` in `outDir` (see the module comment). */
export async function openProjectStore(options: ProjectStoreOptions): Promise<ProjectStore> {
  const imagesDir = resolve(options.imagesDir);
  const name = basename(imagesDir);
  const outDir = resolve(options.outDir ?? join(dirname(imagesDir), `${name}-labels`));
  const file = join(outDir, COCO_ANNOTATIONS_FILE);
  const images = await listImages(imagesDir, outDir, options.onSkip);
  const byId = new Map(images.map((i) => [i.id, i]));
  const records = new Map<string, ImageRecord>();
  let revision = 0;
  let classNames = options.classes ? [...options.classes] : undefined;
  const existed = await pathExists(file);
  let added = false;
  if (existed) {
    const loaded = await loadProject(file);
    revision = loaded.revision;
    for (const [id, r] of loaded.records) records.set(id, r);
    const before = loaded.classNames;
    if (classNames && !before.every((n, i) => classNames?.[i] === n)) {
      throw new SegkitError(`the classes given (${classNames.join(", ")}) differ from the project's`, {
        file,
        hint: `the project has ${before.join(", ")}; classes can only be added at the end`,
      });
    }
    added = classNames !== undefined && classNames.length > before.length;
    classNames ??= before;
    for (const [id, r] of records) {
      const img = byId.get(id);
      if (img && (img.width !== r.width || img.height !== r.height)) {
        throw new SegkitError(
          `image ${id} is ${img.width}x${img.height} but ${r.width}x${r.height} in the project file`,
          { file, hint: "the image was replaced; move its annotations out of the project file first" },
        );
      }
    }
  }
  classNames ??= ["object"];
  checkClassNames(classNames);
  const classes = classNames.map((n, i) => ({ id: i + 1, name: n, color: colorOf(i + 1) }));
  let queue: Promise<unknown> = Promise.resolve();

  // temporary files of writes a kill cut short (writeFileAtomic's `.<name>.<random>.tmp`)
  for (const f of await readdir(outDir).catch(() => [] as string[])) {
    if (f.startsWith(`.${COCO_ANNOTATIONS_FILE}.`) && f.endsWith(".tmp")) await rm(join(outDir, f), { force: true });
  }
  const write = () => writeFileAtomic(file, JSON.stringify(projectJson(images, records, classes, revision)));
  if (!existed || added) await write();

  const apply = async (id: string, raw: unknown): Promise<{ revision: number }> => {
    const img = byId.get(id);
    if (!img) throw new SegkitError(`no image ${JSON.stringify(id)} in the project`);
    const parsed = AnnotationsChangeSchema.safeParse(raw);
    if (!parsed.success) throw new SegkitError(`bad annotations: ${zodProblem(parsed.error)}`);
    const change = parsed.data;
    const current = records.get(id);
    const now = current?.revision ?? 0;
    if (change.baseRevision !== now) throw new StudioConflict(id, now, change.baseRevision);
    const seen = new Set<string>();
    const geometry: Geometry[] = [];
    const instances = change.instances.map((inst, k): StudioInstance => {
      const where = `instance ${k} (${inst.id})`;
      if (seen.has(inst.id)) throw new SegkitError(`${where}: the id is used twice`);
      seen.add(inst.id);
      if (!classes.some((c) => c.id === inst.classId)) {
        throw new SegkitError(`${where}: class ${inst.classId} does not exist (1..${classes.length})`);
      }
      const [h, w] = inst.rle.size;
      if (h !== img.height || w !== img.width) {
        throw new SegkitError(`${where}: RLE size [${h}, ${w}] is not the image's [${img.height}, ${img.width}]`);
      }
      const { compressed, plain } = checkedRle(inst.rle, where);
      geometry.push(geometryOf(plain));
      return { ...inst, rle: compressed, ...(inst.score !== undefined ? { score: inst.score } : {}) };
    });
    const next: ImageRecord = {
      width: img.width,
      height: img.height,
      revision: now + 1,
      state: change.state,
      instances,
      geometry,
    };
    records.set(id, next);
    revision++;
    try {
      await write();
    } catch (err) {
      if (current) records.set(id, current);
      else records.delete(id);
      revision--;
      throw err;
    }
    return { revision: next.revision };
  };

  return {
    name,
    imagesDir,
    outDir,
    file,
    mode: "instance",
    classes,
    images,
    get revision() {
      return revision;
    },
    image: (id) => byId.get(id),
    annotations(id) {
      if (!byId.has(id)) return undefined;
      const r = records.get(id);
      return r
        ? { revision: r.revision, state: r.state, instances: r.instances }
        : { revision: 0, state: "new", instances: [] };
    },
    put(id, change) {
      const result = queue.then(() => apply(id, change));
      queue = result.catch(() => undefined);
      return result;
    },
    idle: () => queue.then(() => undefined),
  };
}

/** A checked RLE (counts given as a string or as numbers), compressed and plain. */
function checkedRle(
  rle: { size: [number, number]; counts: string | number[] },
  where: string,
): { compressed: CompressedRle; plain: Rle } {
  try {
    if (typeof rle.counts === "string") {
      const compressed = { size: rle.size, counts: rle.counts };
      return { compressed, plain: rleFromString(compressed) };
    }
    const plain: Rle = { size: rle.size, counts: rle.counts };
    checkRle(plain);
    return { compressed: rleToString(plain), plain };
  } catch (err) {
    throw new SegkitError(`${where}: ${(err as Error).message}`);
  }
}

/** The first problem zod found, with its path: `instances.0.classId: ...`. */
export const zodProblem = (error: z.ZodError): string => {
  const issue = error.issues[0];
  return `${issue?.path.join(".") || "top level"}: ${issue?.message ?? "invalid"}`;
};

/** The file's JSON (see the module comment): listed images in order, then records of images no longer listed. */
function projectJson(
  images: readonly StudioImage[],
  records: ReadonlyMap<string, ImageRecord>,
  classes: readonly StudioClass[],
  revision: number,
): CocoInstances & { segkit: z.infer<typeof SegkitStateSchema> } {
  const listed = new Set(images.map((i) => i.id));
  const ids = [...images.map((i) => i.id), ...[...records.keys()].filter((id) => !listed.has(id)).sort()];
  const coco: CocoInstances = {
    images: [],
    categories: classes.map(({ id, name }) => ({ id, name })),
    annotations: [],
  };
  const state: z.infer<typeof SegkitStateSchema>["images"] = {};
  for (const id of ids) {
    const r = records.get(id);
    if (!r) continue;
    state[id] = {
      state: r.state,
      revision: r.revision,
      instances: r.instances.map((i) => ({
        id: i.id,
        source: i.source,
        ...(i.score !== undefined ? { score: i.score } : {}),
      })),
    };
    if (r.state === "new" && r.instances.length === 0) continue;
    const imageId = coco.images.length + 1;
    coco.images.push({ id: imageId, file_name: id, width: r.width, height: r.height });
    for (const [k, inst] of r.instances.entries()) {
      const annotation: CocoAnnotation = {
        id: coco.annotations.length + 1,
        image_id: imageId,
        category_id: inst.classId,
        segmentation: { size: [inst.rle.size[0], inst.rle.size[1]], counts: inst.rle.counts },
        ...(r.geometry[k] as Geometry),
        iscrowd: 0,
      };
      coco.annotations.push(annotation);
    }
  }
  return { ...coco, segkit: { format: 1, revision, mode: "instance", classes: [...classes], images: state } };
}

/** The records, classes and revision of an existing project file, checked (see the module comment). */
async function loadProject(
  file: string,
): Promise<{ records: Map<string, ImageRecord>; classNames: string[]; revision: number }> {
  const bad = (why: string) =>
    new SegkitError(`not a segkit studio project file: ${why}`, {
      file,
      hint: "move it away to start a new project, or fix it",
    });
  const size = (await readFile(file)).length;
  if (size > MAX_COCO_JSON_BYTES) throw bad(`${size} bytes, more than the ${MAX_COCO_JSON_BYTES} read`);
  const raw = await readJson<Record<string, unknown>>(file);
  if (typeof raw !== "object" || raw === null) throw bad("not a JSON object");
  const { segkit, ...cocoPart } = raw;
  const coco = CocoInstancesSchema.safeParse(cocoPart);
  if (!coco.success) throw bad(zodProblem(coco.error));
  const meta = SegkitStateSchema.safeParse(segkit);
  if (!meta.success) throw bad(`segkit: ${zodProblem(meta.error)}`);
  const categories = [...coco.data.categories].sort((a, b) => a.id - b.id);
  if (categories.some((c, i) => c.id !== i + 1)) throw bad("category ids are not 1, 2, ...");
  const byImage = new Map<number, CocoAnnotation[]>();
  for (const a of coco.data.annotations) byImage.set(a.image_id, [...(byImage.get(a.image_id) ?? []), a]);
  const cocoImages = new Map(coco.data.images.map((i) => [i.file_name, i]));
  const records = new Map<string, ImageRecord>();
  for (const [id, s] of Object.entries(meta.data.images)) {
    const img = cocoImages.get(id);
    const anns = img ? (byImage.get(img.id) ?? []) : [];
    if (anns.length !== s.instances.length) {
      throw bad(`image ${id}: ${anns.length} annotations but ${s.instances.length} instances in "segkit"`);
    }
    if (!img && s.state !== "new") throw bad(`image ${id} is not in "images"`);
    if (!img) continue;
    const geometry: Geometry[] = [];
    const instances = anns.map((a, k): StudioInstance => {
      const seg = a.segmentation;
      if (Array.isArray(seg) || typeof seg.counts !== "string") throw bad(`annotation ${a.id}: not compressed RLE`);
      const rle = { size: seg.size, counts: seg.counts };
      try {
        geometry.push(geometryOf(rleFromString(rle, file)));
      } catch (err) {
        throw bad(`annotation ${a.id}: ${(err as Error).message}`);
      }
      const m = s.instances[k] as (typeof s.instances)[number];
      return {
        id: m.id,
        classId: a.category_id,
        rle,
        source: m.source,
        ...(m.score !== undefined ? { score: m.score } : {}),
      };
    });
    const { width, height } = img;
    records.set(id, { width, height, revision: s.revision, state: s.state, instances, geometry });
  }
  return { records, classNames: categories.map((c) => c.name), revision: meta.data.revision };
}

/** The images under `dir` (see the module comment), sizes read from the headers, 8 at a time. */
export async function listImages(
  dir: string,
  exclude?: string,
  onSkip?: (path: string, reason: string) => void,
): Promise<StudioImage[]> {
  const top = await realpath(dir).catch((err: NodeJS.ErrnoException) => {
    throw new SegkitError(err.code === "ENOENT" ? "images directory not found" : `cannot read (${err.code})`, {
      file: dir,
    });
  });
  const skip = exclude ? resolve(exclude) : undefined;
  const paths: string[] = [];
  const walk = async (d: string): Promise<void> => {
    for (const f of await listFiles(d)) {
      if (IMAGE_EXTENSIONS.includes(extname(f).toLowerCase())) paths.push(join(d, f));
    }
    for (const e of await readdir(d, { withFileTypes: true })) {
      const sub = join(d, e.name);
      if (e.isDirectory() && !e.name.startsWith(".") && sub !== skip) await walk(sub);
    }
  };
  await walk(resolve(dir));
  const found: (StudioImage | undefined)[] = new Array(paths.length);
  let next = 0;
  const worker = async () => {
    for (let k = next++; k < paths.length; k = next++) {
      const path = paths[k] as string;
      const id = relative(resolve(dir), path).split(sep).join("/");
      try {
        if (!(await isInside(top, path))) throw new SegkitError("a link to outside the images directory");
        const { width, height } = await readImageSize(path);
        found[k] = { id, path, width, height };
      } catch (err) {
        onSkip?.(path, err instanceof SegkitError ? err.message : String(err));
      }
    }
  };
  await Promise.all(Array.from({ length: 8 }, worker));
  return found.filter((i) => i !== undefined).sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

/** Whether `path` resolves (links followed) to `top` (a real path) or below it. */
export async function isInside(top: string, path: string): Promise<boolean> {
  const real = await realpath(path).catch(() => undefined);
  if (real === undefined) return false;
  return isWithin(top, real);
}
