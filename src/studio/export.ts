import { readdir, rm } from "node:fs/promises";
import { join, relative, sep } from "node:path";
import { DEFAULT_IGNORE_INDEX } from "../core/image.js";
import { openCoco } from "../data/coco.js";
import { type ExportSummary, type ExportTarget, exportDataset } from "../export/dataset.js";
import type { ProjectStore } from "./store.js";

/**
 * Exports the project's saved annotations (`annotations.json`, read as the `coco` dataset format: class 0 background,
 * later instances on top) to `<out>/export/<format>/` with `exportDataset`, replacing an earlier export there. COCO
 * is written with one annotation per connected component (`instances`); PNG and YOLO as `segkit export` writes them.
 */
export async function exportProject(
  store: ProjectStore,
  format: ExportTarget,
): Promise<{ dir: string; files: string[]; summary: ExportSummary }> {
  const dir = join(store.outDir, "export", format);
  const ds = await openCoco(store.outDir, { images: store.imagesDir, ignoreIndex: DEFAULT_IGNORE_INDEX });
  await rm(dir, { recursive: true, force: true });
  const summary = await exportDataset(ds, dir, {
    to: format,
    root: store.imagesDir,
    ...(format === "coco" ? { instances: true } : {}),
  });
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  const files = entries
    .filter((e) => e.isFile())
    .map((e) => relative(dir, join(e.parentPath, e.name)).split(sep).join("/"))
    .sort();
  return { dir, files, summary };
}
