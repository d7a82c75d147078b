/**
 * segkit studio, the browser app: image list, canvas with zoom and pan, SAM prompts, manual tools, undo/redo, one
 * save per accepted change. The server is reached only through api.ts and SAM only through decoder.ts.
 */
import {
  type Annotations,
  type Api,
  ApiError,
  createApi,
  type ImageEntry,
  type ImageState,
  type InstanceRecord,
  type PrelabelSource,
  type ProjectInfo,
} from "./api.js";
import {
  createSegmenter,
  decodeWhere,
  type ImageDecoder,
  type Prediction,
  type PromptRequest,
  type Segmenter,
} from "./decoder.js";
import { History } from "./history.js";
import { type Action, actionFor, keyName, SHORTCUTS } from "./keymap.js";
import { countPixels, maskToRle, paintClass, polygonMask, rleToMask, strokeSegment, union } from "./mask-edit.js";
import { drawScene, hexColor, type LayerMask, MaskLayer, type Rect } from "./render.js";
import { fitView, panBy, toImage, toScreen, type View, zoomAt } from "./view.js";

interface Instance {
  readonly id: string;
  readonly classId: number;
  readonly mask: Uint8Array;
  readonly source: InstanceRecord["source"];
  readonly score?: number;
}

type Tool = "sam" | "brush" | "eraser" | "polygon";
type Point = { x: number; y: number };

interface OpenImage {
  readonly entry: ImageEntry;
  readonly img: HTMLImageElement;
  revision: number;
  state: ImageState;
  readonly history: History<readonly Instance[]>;
  decoder: ImageDecoder | null;
  /** A save of it met a conflict: it was replaced by the saved version, its later saves are dropped. */
  stale?: boolean;
}

const $ = <T extends HTMLElement>(testid: string) => {
  const el = document.querySelector<T>(`[data-testid="${testid}"]`);
  if (!el) throw new Error(`index.html lacks data-testid=${testid}`);
  return el;
};
const el = <K extends keyof HTMLElementTagNameMap>(
  tag: K,
  props: Partial<HTMLElementTagNameMap[K]> = {},
  testid?: string,
) => {
  const e = Object.assign(document.createElement(tag), props);
  if (testid) e.setAttribute("data-testid", testid);
  return e;
};
const swatch = (color: string) => {
  const s = el("span", { className: "swatch" });
  s.style.background = color;
  return s;
};
const newId = () => `${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 10)}`;

const areas = new WeakMap<Uint8Array, number>();
/** Pixel count of an instance mask (masks of committed instances never change: cached). */
const areaOf = (mask: Uint8Array) => {
  let n = areas.get(mask);
  if (n === undefined) {
    n = countPixels(mask);
    areas.set(mask, n);
  }
  return n;
};

const BRUSH_SIZES = [1, 2, 3, 5, 8, 12, 16, 24, 32, 48, 64, 96, 128];

/** A saved instance as the app holds it (the mask decoded at the image's size). */
const instanceOf = (r: InstanceRecord, entry: ImageEntry): Instance => ({
  id: r.id,
  classId: r.classId,
  mask: rleToMask(r.rle, entry.width, entry.height),
  source: r.source,
  ...(r.score === undefined ? {} : { score: r.score }),
});

/** Why an image gets no pre-labels: it is done, or it has suggestions not reviewed yet; null when it can. */
const prelabelSkip = (state: ImageState, instances: readonly { source: InstanceRecord["source"] }[]) =>
  state === "done"
    ? "it is marked done"
    : instances.some((i) => i.source === "prelabel")
      ? "it has suggestions to review"
      : null;

type PrelabelRequest = { from: PrelabelSource; classId?: number };

class Studio {
  readonly canvas = $<HTMLCanvasElement>("canvas");
  readonly ctx: CanvasRenderingContext2D;
  images: ImageEntry[] = [];
  current: OpenImage | null = null;
  classId = 1;
  selected: string | null = null;
  tool: Tool = "sam";
  /** Instance mode: every accepted mask is an object. Semantic: one mask per class, each pixel one class. */
  mode: "instance" | "semantic";
  brushSize = 8;
  view: View = { scale: 1, ox: 0, oy: 0 };
  points: (Point & { label: 0 | 1 })[] = [];
  box: [number, number, number, number] | null = null;
  prediction: Prediction | null = null;
  candidate = 0;
  polygon: Point[] = [];
  segmenter: Segmenter | null = null;
  #abort = new AbortController();
  #promptSeq = 0;
  #saving: Promise<void> = Promise.resolve();
  #pending = 0;
  #projectRevision: number | null = null;
  /** Saves finished (answered or failed) on this page. */
  #saves = 0;
  /** Predictions received on this page (tests wait on it). */
  #predictions = 0;
  #layer: MaskLayer | null = null;
  /** What of #layer needs repainting: all of it, one region, or nothing. */
  #dirty: Rect | "all" | null = "all";
  #proposalLayer: MaskLayer | null = null;
  #proposalDirty = true;
  #clickTime: number | null = null;
  #frame = 0;
  #space = false;
  #drag: null | {
    kind: "pan" | "box" | "paint";
    start: Point;
    last: Point;
    button: number;
    shift: boolean;
    work?: Instance;
    isNew?: boolean;
    semantic?: boolean;
  } = null;
  #hover: Point | null = null;
  /** A pre-label request under way: of the open image ("one"), or of all images (Cancel / Escape abort it). */
  #prelabelling: "one" | AbortController | null = null;

  constructor(
    readonly api: Api,
    readonly project: ProjectInfo,
  ) {
    const ctx = this.canvas.getContext("2d");
    if (!ctx) throw new Error("no 2D canvas");
    this.ctx = ctx;
    this.classId = project.classes[0]?.id ?? 1;
    this.mode = project.mode;
    if (!project.model) this.tool = "brush"; // no SAM: start on a tool that works
  }

  // ---- status line and messages ----
  toast(message: string, kind: "info" | "error" = "info") {
    const t = $("toast");
    t.textContent = message;
    t.dataset.kind = kind;
    t.hidden = false;
  }

  setSamStatus(text: string, ready: boolean) {
    const s = $("sam-status");
    s.textContent = text;
    s.dataset.ready = String(ready);
  }

  updateToolbar() {
    for (const b of document.querySelectorAll<HTMLButtonElement>("[data-tool]"))
      b.ariaPressed = String(b.dataset.tool === this.tool);
    $("brush-size").textContent = `${this.brushSize}px`;
    const z = $("zoom");
    z.textContent = `${Math.round(this.view.scale * 100)}%`;
    this.canvas.dataset.view = JSON.stringify(this.view);
    this.canvas.dataset.tool = this.tool;
    const mode = $("mode");
    mode.textContent = this.mode;
    mode.dataset.mode = this.mode;
  }

  // ---- lists ----
  renderImageList() {
    const filter = $<HTMLInputElement>("image-filter").value.trim().toLowerCase();
    const list = $("image-list");
    list.replaceChildren(
      ...this.visibleImages(filter).map((img) => {
        const li = el("li", {}, "image-row");
        li.dataset.id = img.id;
        li.dataset.state = img.state;
        li.classList.toggle("current", img.id === this.current?.entry.id);
        li.append(
          el("span", { className: `state ${img.state}`, title: img.state }),
          el("span", { textContent: img.file, className: "file" }),
          el("span", { textContent: img.instances ? String(img.instances) : "", className: "count" }),
        );
        li.addEventListener("click", () => void this.open(img.id));
        return li;
      }),
    );
    const done = this.images.filter((i) => i.state === "done").length;
    $("image-count").textContent = `${done}/${this.images.length} done`;
  }

  visibleImages(filter = $<HTMLInputElement>("image-filter").value.trim().toLowerCase()) {
    if (!filter) return this.images;
    return this.images.filter((i) => i.file.toLowerCase().includes(filter) || i.state === filter);
  }

  renderClasses() {
    $("class-palette").replaceChildren(
      ...this.project.classes.map((c, i) => {
        const li = el("li", {}, "class-item");
        li.dataset.classId = String(c.id);
        li.classList.toggle("current", c.id === this.classId);
        li.append(swatch(c.color), el("span", { textContent: `${i < 9 ? `${i + 1} ` : ""}${c.name}` }));
        li.addEventListener("click", () => this.chooseClass(c.id));
        return li;
      }),
    );
  }

  renderInstances() {
    const insts = this.instances();
    $("instance-list").replaceChildren(
      ...insts.map((inst, i) => {
        const cls = this.project.classes.find((c) => c.id === inst.classId);
        const li = el("li", {}, "instance-row");
        li.dataset.id = inst.id;
        li.dataset.classId = String(inst.classId);
        li.dataset.area = String(areaOf(inst.mask));
        li.dataset.source = inst.source;
        li.ariaSelected = String(inst.id === this.selected);
        li.append(
          swatch(cls?.color ?? "#f0f"),
          el("span", { textContent: `#${i + 1} ${cls?.name ?? inst.classId} · ${li.dataset.area} px` }),
        );
        if (inst.source === "prelabel") {
          const yes = el("button", { type: "button", textContent: "✓", title: "Accept (A)" }, "suggestion-accept");
          const no = el("button", { type: "button", textContent: "✗", title: "Reject (X)" }, "suggestion-reject");
          yes.addEventListener("click", (e) => {
            e.stopPropagation();
            this.review([inst.id], true);
          });
          no.addEventListener("click", (e) => {
            e.stopPropagation();
            this.review([inst.id], false);
          });
          li.append(el("span", { className: "tag", textContent: "suggestion" }), yes, no);
        }
        li.addEventListener("click", () => this.select(inst.id));
        return li;
      }),
    );
  }

  renderProposal() {
    const p = $("proposal");
    const pred = this.prediction;
    p.hidden = !pred;
    if (!pred) return;
    const mask = pred.mask(this.candidate);
    p.dataset.candidate = String(this.candidate);
    p.dataset.count = String(pred.scores.length);
    p.dataset.area = String(mask ? areaOf(mask) : 0);
    p.dataset.points = JSON.stringify(this.points); // the prompt in image pixels (tests compare with Node's predictor)
    // where a click's time went, when the decoder says (segkit/web: the decoder run, upscaling and thresholding)
    p.dataset.decodeMs = pred.timings ? pred.timings.decodeMs.toFixed(1) : "";
    p.dataset.postprocessMs = pred.timings ? pred.timings.postprocessMs.toFixed(1) : "";
    p.textContent = `Proposal ${this.candidate + 1}/${pred.scores.length} · score ${(pred.scores[this.candidate] ?? 0).toFixed(3)} · ${p.dataset.area} px — Enter accepts, Tab cycles, Esc drops`;
  }

  // ---- instances and history ----
  instances(): readonly Instance[] {
    return this.current?.history.current ?? [];
  }

  selectedInstance(): Instance | undefined {
    return this.instances().find((i) => i.id === this.selected);
  }

  select(id: string | null) {
    this.selected = id;
    this.invalidate();
  }

  /** Every accepted change: a new state on the image's stack, saved at once. */
  commit(next: readonly Instance[]) {
    if (!this.current) return;
    this.current.history.push(next.filter((i) => areaOf(i.mask) > 0));
    this.changed();
  }

  changed() {
    const cur = this.current;
    if (!cur) return;
    if (cur.state === "new" && this.instances().length > 0) cur.state = "in-progress";
    if (this.selected && !this.selectedInstance()) this.selected = null;
    this.invalidate();
    this.save(cur);
  }

  save(cur: OpenImage) {
    const { width, height } = cur.entry;
    this.#pending++;
    document.body.dataset.saving = String(this.#pending);
    this.#saving = this.#saving.then(async () => {
      // the image's own revision and state: a save still goes out after the person moved to another image;
      // none after a conflict on it (the image was reloaded: these changes were made on the replaced version)
      try {
        if (cur.stale) return;
        const snapshot = cur.history.current;
        const instances: InstanceRecord[] = snapshot.map((i) => ({
          id: i.id,
          classId: i.classId,
          rle: maskToRle(i.mask, width, height),
          source: i.source,
          ...(i.score === undefined ? {} : { score: i.score }),
        }));
        const res = await this.api.saveAnnotations(cur.entry.id, {
          baseRevision: cur.revision,
          state: cur.state,
          instances,
        });
        cur.revision = res.revision;
        cur.entry.state = cur.state;
        cur.entry.instances = instances.length;
        $("save-status").textContent = `saved r${res.revision}`;
        $("save-status").dataset.revision = String(res.revision);
        this.renderImageList();
      } catch (err) {
        if (err instanceof ApiError && err.status === 409) {
          cur.stale = true;
          this.toast(
            `${cur.entry.file} was changed elsewhere: reloaded the saved version (your last change was not saved)`,
            "error",
          );
          if (this.current === cur) await this.open(cur.entry.id, { keepView: true, fromSave: true });
        } else {
          this.toast(`Saving failed: ${(err as Error).message}`, "error");
        }
      } finally {
        this.#pending--;
        document.body.dataset.saving = String(this.#pending);
        document.body.dataset.saves = String(++this.#saves);
      }
    });
  }

  // ---- images ----
  /** Opens an image; `fromSave`: called by the save chain itself (which must not wait for itself). */
  async open(id: string, { keepView = false, fromSave = false } = {}) {
    const entry = this.images.find((i) => i.id === id);
    if (!entry) return;
    this.#abort.abort();
    const abort = new AbortController();
    this.#abort = abort;
    // the image's saves still in flight land first: its annotations are read after them
    if (!fromSave) await this.#saving;
    if (abort.signal.aborted) return;
    this.clearPrompt();
    this.polygon = [];
    this.selected = null;
    history.replaceState(null, "", `${location.search}#image=${encodeURIComponent(id)}`);
    const img = new Image();
    img.src = this.api.imageUrl(id);
    let ann: Annotations;
    try {
      [ann] = await Promise.all([this.api.annotations(id), img.decode()]);
    } catch (err) {
      if (!abort.signal.aborted) this.toast(`Cannot open ${entry.file}: ${(err as Error).message}`, "error");
      return;
    }
    if (abort.signal.aborted) return;
    const instances = ann.instances.map((r) => instanceOf(r, entry));
    this.current = {
      entry,
      img,
      revision: ann.revision,
      state: ann.state,
      history: new History(instances),
      decoder: null,
    };
    entry.state = ann.state;
    this.canvas.dataset.imageId = id;
    this.canvas.dataset.revision = String(ann.revision);
    if (!keepView) this.fit();
    this.invalidate();
    this.renderImageList();
    $("image-row-current").textContent = entry.file;
    void this.loadDecoder(this.current, abort.signal);
  }

  async loadDecoder(cur: OpenImage, signal: AbortSignal) {
    const seg = this.segmenter;
    if (!seg) {
      this.setSamStatus(this.project.model ? "SAM unavailable" : "no SAM model: manual tools only", false);
      return;
    }
    this.setSamStatus("SAM: loading the embedding…", false);
    try {
      cur.decoder = await seg.forImage(
        cur.entry,
        (s) => this.setSamStatus(`SAM: waiting for the encoder (${s})`, false),
        signal,
      );
      if (this.current === cur) this.setSamStatus(`SAM ready (${seg.kind})`, true);
    } catch (err) {
      if (!signal.aborted) this.setSamStatus(`SAM: ${(err as Error).message}`, false);
    }
  }

  step(delta: number) {
    const list = this.visibleImages();
    if (list.length === 0) return;
    const i = list.findIndex((e) => e.id === this.current?.entry.id);
    const next = list[i < 0 ? 0 : (i + delta + list.length) % list.length];
    if (next) void this.open(next.id);
  }

  // ---- SAM prompts ----
  clearPrompt() {
    this.points = [];
    this.box = null;
    this.prediction = null;
    this.candidate = 0;
    this.#promptSeq++;
    this.#proposalDirty = true;
    this.renderProposal();
    this.invalidate();
  }

  async runPrompt() {
    const cur = this.current;
    const dec = cur?.decoder;
    const seg = this.segmenter;
    if (!cur || !dec || !seg) {
      this.toast(
        this.segmenter ? "SAM is not ready for this image yet" : "No SAM model: use the brush or polygon",
        "error",
      );
      return;
    }
    const request: PromptRequest = {};
    if (this.points.length > 0) request.points = this.points.map((p) => ({ ...p }));
    if (this.box && seg.acceptsBox) request.box = this.box;
    const low = this.prediction?.lowRes[this.candidate];
    if (low && seg.acceptsMaskInput) request.maskInput = low;
    const seq = ++this.#promptSeq;
    try {
      const pred = await dec.predict(request);
      if (seq !== this.#promptSeq || this.current !== cur) return;
      this.prediction = pred; // best first
      this.candidate = 0;
      $("proposal").dataset.predictions = String(++this.#predictions);
      this.#proposalDirty = true;
      this.renderProposal();
      this.invalidate();
    } catch (err) {
      this.toast(`SAM failed: ${(err as Error).message}`, "error");
    }
  }

  accept() {
    const mask = this.prediction?.mask(this.candidate);
    if (!mask || !this.current) return;
    const score = this.prediction?.scores[this.candidate];
    const inst: Instance = {
      id: newId(),
      classId: this.classId,
      mask,
      source: "sam",
      ...(score === undefined ? {} : { score }),
    };
    if (this.mode === "semantic") {
      this.clearPrompt();
      this.paintClass(mask, false);
      return;
    }
    this.clearPrompt();
    this.selected = inst.id;
    this.commit([...this.instances(), inst]);
  }

  // ---- manual edits ----
  replaceInstance(id: string, make: (i: Instance) => Instance | null) {
    const next = this.instances().flatMap((i) =>
      i.id === id ? [make(i)].filter((x): x is Instance => x !== null) : [i],
    );
    this.commit(next);
  }

  /** Semantic mode: `mask` painted with (or erased from) the current class, taken from the others. */
  paintClass(mask: Uint8Array, erase: boolean) {
    const create = (m: Uint8Array): Instance => ({ id: newId(), classId: this.classId, mask: m, source: "manual" });
    this.selected = null;
    this.commit(paintClass(this.instances(), this.classId, mask, erase, create));
  }

  chooseClass(id: number) {
    if (!this.project.classes.some((c) => c.id === id)) return;
    this.classId = id;
    this.renderClasses();
    this.#proposalDirty = true;
    this.invalidate(false);
    if (this.mode === "semantic") return;
    const sel = this.selectedInstance();
    if (sel && sel.classId !== id) this.replaceInstance(sel.id, (i) => ({ ...i, classId: id }));
  }

  closePolygon() {
    const cur = this.current;
    if (!cur || this.polygon.length < 3) return;
    const mask = polygonMask(this.polygon, cur.entry.width, cur.entry.height);
    this.polygon = [];
    const sel = this.selectedInstance();
    if (this.mode === "semantic") this.paintClass(mask, false);
    else if (sel) this.replaceInstance(sel.id, (i) => ({ ...i, mask: union(i.mask, mask), source: "manual" }));
    else {
      const inst: Instance = { id: newId(), classId: this.classId, mask, source: "manual" };
      this.selected = inst.id;
      this.commit([...this.instances(), inst]);
    }
  }

  /** Pre-label suggestions accepted (kept as the person's own, source "manual") or rejected (removed). */
  review(ids: readonly string[], accept: boolean) {
    const set = new Set(ids.filter((id) => this.instances().some((i) => i.id === id && i.source === "prelabel")));
    if (set.size === 0) {
      this.toast("No pre-label suggestion selected");
      return;
    }
    this.commit(
      this.instances().flatMap((i) => (!set.has(i.id) ? [i] : accept ? [{ ...i, source: "manual" as const }] : [])),
    );
  }

  suggestions(): string[] {
    return this.instances()
      .filter((i) => i.source === "prelabel")
      .map((i) => i.id);
  }

  // ---- pre-labels ----
  /** The pre-label controls offer what the server has (`project.prelabel`); without either they are disabled. */
  setupPrelabel() {
    const { amg, model } = this.project.prelabel;
    const from = $<HTMLSelectElement>("prelabel-from");
    for (const o of [...from.options]) if (!(o.value === "model" ? model : amg)) o.remove();
    if (!amg && !model) {
      const why =
        "No pre-labels: start the studio with --model DIR (SAM, segment everything) or --prelabel-model DIR (a trained segkit model)";
      for (const c of [from, $<HTMLButtonElement>("prelabel-current"), $<HTMLButtonElement>("prelabel-all")]) {
        c.disabled = true;
        c.title = why;
      }
    }
  }

  /** What a pre-label request asks for, from the controls; null when the server offers nothing. */
  prelabelRequest(): PrelabelRequest | null {
    const from = $<HTMLSelectElement>("prelabel-from").value as PrelabelSource | "";
    if (!from) return null;
    return from === "amg" ? { from, classId: this.classId } : { from };
  }

  setPrelabelStatus(text: string, data: Record<string, string | number> = {}) {
    const s = $("prelabel-status");
    s.textContent = text;
    for (const [k, v] of Object.entries(data)) s.dataset[k] = String(v);
  }

  /** Runs `fn` on the save chain: after the saves under way, before those to come. */
  #afterSaves<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#saving.then(fn);
    this.#saving = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  /**
   * Suggestions the server saved as `revision` on top of `base` join the open image's history (its view refreshes),
   * when the image is still at `base`; otherwise its next save meets the conflict and reloads. On the save chain.
   */
  async #adopt(cur: OpenImage, base: number, revision: number) {
    if (cur.stale || cur.revision !== base) return;
    const ann = await this.api.annotations(cur.entry.id);
    if (ann.revision !== revision) return; // changed again elsewhere meanwhile
    const known = new Set(cur.history.current.map((i) => i.id));
    const fresh = ann.instances.filter((r) => r.source === "prelabel" && !known.has(r.id));
    cur.revision = revision;
    if (cur.state === "new") cur.state = "in-progress";
    cur.history.push([...cur.history.current, ...fresh.map((r) => instanceOf(r, cur.entry))]);
    cur.entry.state = cur.state;
    cur.entry.instances = cur.history.current.length;
    if (this.current === cur) {
      this.canvas.dataset.revision = String(revision);
      this.invalidate();
    }
  }

  /**
   * Pre-labels one image on the revision the app last knew of it: the open image's, after its saves (on the save
   * chain, so the changes to come build on the result), else the one read from the server just before. A 409
   * conflict (changed elsewhere) reloads the image's annotations and tries once more. Resolves to the number of
   * suggestions added, or to why the image was skipped.
   */
  async prelabelImage(entry: ImageEntry, request: PrelabelRequest, retry = true): Promise<number | string> {
    try {
      if (this.current?.entry === entry) {
        const added = await this.#afterSaves(async () => {
          const cur = this.current;
          if (cur?.entry !== entry || cur.stale) return undefined; // no longer open as it was: read from the server
          const skip = prelabelSkip(cur.state, cur.history.current);
          if (skip) return skip;
          const base = cur.revision;
          const res = await this.api.prelabel(entry.id, { ...request, baseRevision: base });
          await this.#adopt(cur, base, res.revision);
          return res.added;
        });
        if (added !== undefined) return added;
      }
      const ann = await this.api.annotations(entry.id);
      const skip = prelabelSkip(ann.state, ann.instances);
      if (skip) return skip;
      const res = await this.api.prelabel(entry.id, { ...request, baseRevision: ann.revision });
      entry.state = ann.state === "new" ? "in-progress" : ann.state;
      entry.instances = ann.instances.length + res.added;
      const cur = this.current;
      if (cur?.entry === entry) await this.#afterSaves(() => this.#adopt(cur, ann.revision, res.revision));
      return res.added;
    } catch (err) {
      const conflict =
        err instanceof ApiError &&
        err.status === 409 &&
        typeof (err.body as { revision?: unknown } | null)?.revision === "number";
      if (!retry || !conflict) throw err;
      if (this.current?.entry === entry) await this.open(entry.id, { keepView: true });
      return this.prelabelImage(entry, request, false);
    } finally {
      this.renderImageList();
    }
  }

  /** Pre-labels the open image (L). */
  async prelabelCurrent() {
    const entry = this.current?.entry;
    const request = this.prelabelRequest();
    if (!entry || !request) return;
    if (this.#prelabelling) {
      this.toast("Pre-labelling is under way");
      return;
    }
    this.#prelabelling = "one";
    this.setPrelabelStatus(`Pre-labelling ${entry.file}…`, { state: "running" });
    try {
      const r = await this.prelabelImage(entry, request);
      const text =
        typeof r === "string" ? `${entry.file} not pre-labelled: ${r}` : `${r} suggestions on ${entry.file} (A / X)`;
      this.setPrelabelStatus(text, { state: "finished" });
      this.toast(text);
    } catch (err) {
      this.setPrelabelStatus(`Pre-labelling ${entry.file} failed`, { state: "failed" });
      this.toast(`Pre-labelling ${entry.file} failed: ${(err as Error).message}`, "error");
    } finally {
      this.#prelabelling = null;
    }
  }

  /** Pre-labels every image in list order, one at a time, with progress; Cancel or Escape stops it (Shift+L). */
  async prelabelAll() {
    const request = this.prelabelRequest();
    if (!request) return;
    if (this.#prelabelling) {
      this.toast("Pre-labelling is under way");
      return;
    }
    const run = new AbortController();
    this.#prelabelling = run;
    const list = [...this.images];
    const total = list.length;
    let done = 0;
    let added = 0;
    let skipped = 0;
    const failed: string[] = [];
    const progress = $<HTMLProgressElement>("prelabel-progress");
    progress.max = Math.max(total, 1);
    const show = (state: string) => {
      progress.value = done;
      const text =
        `Pre-labels ${done}/${total}${state === "cancelled" ? " (cancelled)" : ""}: ${added} suggestions` +
        `${skipped ? `, ${skipped} images skipped` : ""}${failed.length ? `, ${failed.length} failed` : ""}`;
      this.setPrelabelStatus(text, { state, done, total, added, skipped, failed: failed.length });
      return text;
    };
    $("prelabel-run").hidden = false;
    show("running");
    for (const entry of list) {
      if (run.signal.aborted) break;
      try {
        const r = await this.prelabelImage(entry, request);
        if (typeof r === "string") skipped++;
        else added += r;
      } catch (err) {
        failed.push(`${entry.file}: ${(err as Error).message}`);
      }
      done++;
      show("running");
    }
    this.#prelabelling = null;
    $("prelabel-run").hidden = true;
    const text = show(run.signal.aborted ? "cancelled" : "finished");
    const more = failed.length > 3 ? `; ${failed.length - 3} more` : "";
    this.toast(
      failed.length ? `${text} (${failed.slice(0, 3).join("; ")}${more})` : text,
      failed.length ? "error" : "info",
    );
  }

  cancelPrelabel() {
    if (this.#prelabelling instanceof AbortController) this.#prelabelling.abort();
  }

  move(delta: number) {
    const list = [...this.instances()];
    const i = list.findIndex((x) => x.id === this.selected);
    const j = i + delta;
    if (i < 0 || j < 0 || j >= list.length) return;
    [list[i], list[j]] = [list[j] as Instance, list[i] as Instance];
    this.commit(list);
  }

  undoRedo(redo: boolean) {
    const cur = this.current;
    if (!cur) return;
    const state = redo ? cur.history.redo() : cur.history.undo();
    if (state === undefined) {
      this.toast(redo ? "Nothing to redo" : "Nothing to undo");
      return;
    }
    this.changed();
  }

  // ---- view ----
  fit() {
    const cur = this.current;
    if (!cur) return;
    this.view = fitView(cur.entry.width, cur.entry.height, this.canvas.clientWidth, this.canvas.clientHeight);
    this.invalidate();
  }

  zoom(factor: number, at?: Point) {
    this.view = zoomAt(this.view, factor, at?.x ?? this.canvas.clientWidth / 2, at?.y ?? this.canvas.clientHeight / 2);
    this.invalidate();
  }

  // ---- drawing ----
  /** Schedules a redraw; `layers`: the instances changed (their layer is repainted and their list rebuilt). */
  invalidate(layers = true) {
    if (layers) {
      this.#dirty = "all";
      this.renderInstances();
    }
    this.updateToolbar();
    if (!this.#frame) this.#frame = requestAnimationFrame(() => this.draw());
  }

  draw() {
    this.#frame = 0;
    const { canvas, ctx } = this;
    const dpr = window.devicePixelRatio || 1;
    const w = Math.round(canvas.clientWidth * dpr);
    const h = Math.round(canvas.clientHeight * dpr);
    if (canvas.width !== w || canvas.height !== h) {
      canvas.width = w;
      canvas.height = h;
    }
    const cur = this.current;
    if (!cur) return;
    const { width, height } = cur.entry;
    const color = (classId: number) => hexColor(this.project.classes.find((c) => c.id === classId)?.color ?? "#ff00ff");
    if (this.#layer?.width !== width || this.#layer.height !== height) {
      this.#layer = new MaskLayer(width, height);
      this.#proposalLayer = new MaskLayer(width, height);
      this.#dirty = "all";
      this.#proposalDirty = true;
    }
    if (this.#dirty) {
      const drag = this.#drag?.work;
      const list = this.instances().map((i) => (drag && i.id === drag.id ? drag : i));
      if (drag && this.#drag?.isNew) list.push(drag);
      const erasing = this.#drag?.semantic && this.tool === "eraser" ? drag : undefined;
      const masks = list.map((i): LayerMask => {
        const prelabel = i.source === "prelabel";
        if (i === drag) {
          const base = { mask: i.mask, color: color(i.classId), fill: 140, changing: true };
          return i === erasing
            ? { ...base, color: [0, 0, 0], fill: 160, outline: [255, 80, 80] }
            : { ...base, outline: [255, 255, 255] };
        }
        if (i.id === this.selected) {
          return { mask: i.mask, color: color(i.classId), fill: 140, outline: [255, 255, 255], dotted: prelabel };
        }
        return { mask: i.mask, color: color(i.classId), fill: prelabel ? 60 : 90, dotted: prelabel };
      });
      this.#layer.paint(masks, this.#dirty === "all" ? undefined : this.#dirty);
      this.#dirty = null;
    }
    const proposal = this.prediction?.mask(this.candidate);
    if (this.#proposalDirty) {
      const masks: LayerMask[] = proposal
        ? [{ mask: proposal, color: color(this.classId), fill: 120, outline: [255, 255, 0] }]
        : [];
      this.#proposalLayer?.paint(masks);
      this.#proposalDirty = false;
    }
    drawScene(ctx, this.view, dpr, cur.img, [
      this.#layer.canvas,
      proposal ? (this.#proposalLayer?.canvas ?? null) : null,
    ]);
    if (proposal && this.#clickTime !== null) {
      $("proposal").dataset.clickToMaskMs = (performance.now() - this.#clickTime).toFixed(1);
      this.#clickTime = null;
    }
    this.drawPrompts();
    canvas.dataset.drawn = String(Number(canvas.dataset.drawn ?? 0) + 1);
    canvas.dataset.drawnView = JSON.stringify(this.view);
  }

  drawPrompts() {
    const { ctx } = this;
    const at = (p: Point) => toScreen(this.view, p.x, p.y);
    for (const p of this.points) {
      const s = at(p);
      ctx.beginPath();
      ctx.arc(s.x, s.y, 5, 0, 2 * Math.PI);
      ctx.fillStyle = p.label ? "#22dd44" : "#ee2222";
      ctx.fill();
      ctx.strokeStyle = "#fff";
      ctx.lineWidth = 1.5;
      ctx.stroke();
    }
    const box = this.#drag?.kind === "box" ? this.dragBox() : this.box;
    if (box) {
      const a = at({ x: box[0], y: box[1] });
      const b = at({ x: box[2], y: box[3] });
      ctx.strokeStyle = "#ffdd00";
      ctx.lineWidth = 2;
      ctx.strokeRect(a.x, a.y, b.x - a.x, b.y - a.y);
    }
    if (this.polygon.length > 0) {
      ctx.beginPath();
      for (const [i, p] of [...this.polygon, ...(this.#hover ? [this.#hover] : [])].entries()) {
        const s = at(p);
        if (i === 0) ctx.moveTo(s.x, s.y);
        else ctx.lineTo(s.x, s.y);
      }
      ctx.strokeStyle = "#00e5ff";
      ctx.lineWidth = 1.5;
      ctx.stroke();
      for (const p of this.polygon) {
        const s = at(p);
        ctx.fillStyle = "#00e5ff";
        ctx.fillRect(s.x - 3, s.y - 3, 6, 6);
      }
    }
    if ((this.tool === "brush" || this.tool === "eraser") && this.#hover) {
      const s = at(this.#hover);
      ctx.beginPath();
      ctx.arc(s.x, s.y, (this.brushSize / 2) * this.view.scale, 0, 2 * Math.PI);
      ctx.strokeStyle = this.tool === "brush" ? "#fff" : "#f66";
      ctx.lineWidth = 1;
      ctx.stroke();
    }
  }

  dragBox(d = this.#drag): [number, number, number, number] | null {
    if (!d) return null;
    return [
      Math.min(d.start.x, d.last.x),
      Math.min(d.start.y, d.last.y),
      Math.max(d.start.x, d.last.x),
      Math.max(d.start.y, d.last.y),
    ];
  }

  // ---- input ----
  pointerImage(e: MouseEvent): Point {
    const r = this.canvas.getBoundingClientRect();
    return toImage(this.view, e.clientX - r.left, e.clientY - r.top);
  }

  instanceAt(p: Point): Instance | undefined {
    const cur = this.current;
    if (!cur) return undefined;
    const x = Math.floor(p.x);
    const y = Math.floor(p.y);
    if (x < 0 || y < 0 || x >= cur.entry.width || y >= cur.entry.height) return undefined;
    return [...this.instances()].reverse().find((i) => i.mask[y * cur.entry.width + x]);
  }

  onPointerDown(e: PointerEvent) {
    if (!this.current) return;
    this.canvas.setPointerCapture(e.pointerId);
    const p = this.pointerImage(e);
    const screen = { x: e.clientX, y: e.clientY };
    if (this.#space || e.button === 1) {
      this.#drag = { kind: "pan", start: screen, last: screen, button: e.button, shift: false };
      return;
    }
    if (e.altKey) {
      this.select(this.instanceAt(p)?.id ?? null);
      return;
    }
    if (this.tool === "polygon") {
      if (e.button === 0) this.polygon.push(p);
      this.invalidate(false);
      return;
    }
    if (this.tool === "brush" || this.tool === "eraser") {
      if (e.button !== 0) return;
      const cur = this.current;
      if (this.mode === "semantic") {
        // the stroke alone, in the class's colour; on release painted into (or erased from) the class map
        const work: Instance = {
          id: newId(),
          classId: this.classId,
          mask: new Uint8Array(cur.entry.width * cur.entry.height),
          source: "manual",
        };
        this.#drag = { kind: "paint", start: p, last: p, button: 0, shift: false, work, isNew: true, semantic: true };
        this.paint(p, p);
        return;
      }
      let work = this.selectedInstance();
      let isNew = false;
      if (!work) {
        if (this.tool === "eraser") {
          this.toast("Select an instance to erase from (Alt+click or the list)");
          return;
        }
        work = {
          id: newId(),
          classId: this.classId,
          mask: new Uint8Array(cur.entry.width * cur.entry.height),
          source: "manual",
        };
        isNew = true;
      }
      work = { ...work, mask: work.mask.slice(), source: "manual" };
      this.#drag = { kind: "paint", start: p, last: p, button: 0, shift: false, work, isNew };
      this.paint(p, p);
      return;
    }
    this.#drag = { kind: "box", start: p, last: p, button: e.button, shift: e.shiftKey };
  }

  paint(a: Point, b: Point) {
    const d = this.#drag;
    const cur = this.current;
    if (!d?.work || !cur) return;
    const value = this.tool === "eraser" && !d.semantic ? 0 : 1;
    strokeSegment(d.work.mask, cur.entry.width, cur.entry.height, a, b, this.brushSize, value);
    const r = this.brushSize / 2 + 2; // the disc and the outline around it
    const rect = {
      x0: Math.min(a.x, b.x) - r,
      y0: Math.min(a.y, b.y) - r,
      x1: Math.max(a.x, b.x) + r,
      y1: Math.max(a.y, b.y) + r,
    };
    const old = this.#dirty;
    this.#dirty =
      old === "all"
        ? "all"
        : old
          ? {
              x0: Math.min(old.x0, rect.x0),
              y0: Math.min(old.y0, rect.y0),
              x1: Math.max(old.x1, rect.x1),
              y1: Math.max(old.y1, rect.y1),
            }
          : rect;
    this.invalidate(false);
  }

  onPointerMove(e: PointerEvent) {
    const p = this.pointerImage(e);
    this.#hover = p;
    const d = this.#drag;
    if (!d) {
      if (this.tool !== "sam") this.invalidate(false);
      return;
    }
    if (d.kind === "pan") {
      this.view = panBy(this.view, e.clientX - d.last.x, e.clientY - d.last.y);
      d.last = { x: e.clientX, y: e.clientY };
    } else if (d.kind === "paint") {
      this.paint(d.last, p);
      d.last = p;
    } else d.last = p;
    this.invalidate(false);
  }

  onPointerUp(e: PointerEvent) {
    const d = this.#drag;
    this.#drag = null;
    if (!d || !this.current) return;
    if (d.kind === "paint" && d.work) {
      const work = d.work;
      if (d.semantic) {
        this.paintClass(work.mask, this.tool === "eraser");
        return;
      }
      if (d.isNew) {
        this.selected = work.id;
        this.commit([...this.instances(), work]);
      } else this.replaceInstance(work.id, () => work);
      return;
    }
    if (d.kind !== "box") return;
    const p = this.pointerImage(e);
    const moved = Math.hypot(p.x - d.start.x, p.y - d.start.y) * this.view.scale;
    if (moved > 4) {
      this.box = this.dragBox({ ...d, last: p });
    } else {
      this.points.push({ x: d.start.x, y: d.start.y, label: d.button === 2 || d.shift ? 0 : 1 });
    }
    this.invalidate(false);
    this.#clickTime = e.timeStamp;
    void this.runPrompt();
  }

  handle(action: Action, key: string) {
    const sel = this.selectedInstance();
    switch (action) {
      case "class":
        this.chooseClass(this.project.classes[Number(key) - 1]?.id ?? -1);
        break;
      case "cycle":
      case "cycleBack": {
        const d = action === "cycle" ? 1 : -1;
        if (this.prediction) {
          const n = this.prediction.scores.length;
          this.candidate = (this.candidate + d + n) % n;
          this.#proposalDirty = true;
          this.renderProposal();
          this.invalidate(false);
        } else {
          const list = this.instances();
          if (list.length === 0) break;
          const i = list.findIndex((x) => x.id === this.selected);
          this.select(list[i < 0 ? 0 : (i + d + list.length) % list.length]?.id ?? null);
        }
        break;
      }
      case "accept":
        if (this.polygon.length > 0) this.closePolygon();
        else this.accept();
        break;
      case "drop":
        if (this.prediction || this.points.length || this.box) this.clearPrompt();
        else if (this.polygon.length) {
          this.polygon = [];
          this.invalidate(false);
        } else if (this.#prelabelling instanceof AbortController && !this.#prelabelling.signal.aborted) {
          this.cancelPrelabel();
        } else this.select(null);
        break;
      case "samTool":
      case "brush":
      case "eraser":
      case "polygon":
        this.tool = action === "samTool" ? "sam" : action;
        this.polygon = [];
        this.invalidate(false);
        break;
      case "smaller":
      case "larger": {
        const i = BRUSH_SIZES.findIndex((s) => s >= this.brushSize);
        const j = Math.min(BRUSH_SIZES.length - 1, Math.max(0, i + (action === "larger" ? 1 : -1)));
        this.brushSize = BRUSH_SIZES[j] ?? this.brushSize;
        this.invalidate(false);
        break;
      }
      case "delete":
        if (sel) this.commit(this.instances().filter((i) => i.id !== sel.id));
        break;
      case "raise":
      case "lower":
        this.move(action === "raise" ? 1 : -1);
        break;
      case "undo":
      case "redo":
        this.undoRedo(action === "redo");
        break;
      case "next":
      case "previous":
        this.step(action === "next" ? 1 : -1);
        break;
      case "acceptSuggestion":
      case "rejectSuggestion":
        this.review(sel ? [sel.id] : [], action === "acceptSuggestion");
        break;
      case "acceptAllSuggestions":
      case "rejectAllSuggestions":
        this.review(this.suggestions(), action === "acceptAllSuggestions");
        break;
      case "prelabel":
        void this.prelabelCurrent();
        break;
      case "prelabelAll":
        void this.prelabelAll();
        break;
      case "done":
        if (this.current?.state !== "done" && this.suggestions().length > 0) {
          this.toast(`${this.suggestions().length} pre-label suggestions are not reviewed yet (A / X)`, "error");
        } else if (this.current) {
          this.current.state = this.current.state === "done" ? "in-progress" : "done";
          this.save(this.current);
        }
        break;
      case "zoomIn":
      case "zoomOut":
        this.zoom(action === "zoomIn" ? 2 : 0.5);
        break;
      case "fit":
        this.fit();
        break;
      case "mode":
        this.mode = this.mode === "instance" ? "semantic" : "instance";
        this.selected = null;
        this.toast(
          this.mode === "semantic"
            ? "Semantic mode: one mask per class; SAM, brush and polygon paint the current class"
            : "Instance mode: every accepted mask is an object",
        );
        this.invalidate();
        break;
      case "help":
        $("help").hidden = !$("help").hidden;
        break;
    }
  }

  onKey(e: KeyboardEvent) {
    if (e.target instanceof HTMLInputElement) return;
    if (!$("help").hidden && e.type === "keydown" && (e.key === "Escape" || e.key === "?")) {
      $("help").hidden = true;
      e.preventDefault();
      return;
    }
    if (e.key === " ") {
      this.#space = e.type === "keydown";
      this.canvas.classList.toggle("panning", this.#space);
      e.preventDefault();
      return;
    }
    if (e.type !== "keydown") return;
    const name = keyName(e);
    const action = actionFor(name);
    if (!action) return;
    e.preventDefault();
    this.handle(action, e.key);
  }

  async pollStatus() {
    try {
      const s = await this.api.status();
      const { done, total, current, failed } = s.encoder;
      const node = $("encoder-status");
      node.dataset.done = String(done);
      node.dataset.total = String(total);
      node.textContent = this.project.model
        ? `Encoder ${done}/${total}${failed ? `, ${failed} failed` : ""}${current ? " · working" : ""}`
        : "Encoder: no SAM model";
      $<HTMLProgressElement>("encoder-progress").value = total ? done / total : 0;
      if (this.#projectRevision !== null && s.revision !== this.#projectRevision) await this.refreshImages();
      this.#projectRevision = s.revision;
    } catch {}
    setTimeout(() => void this.pollStatus(), 2000);
  }

  /** The project changed elsewhere (another tab, a script pushing pre-labels): the list's states and counts. */
  async refreshImages() {
    const fresh = new Map((await this.api.images()).map((i) => [i.id, i]));
    for (const entry of this.images) {
      const f = fresh.get(entry.id);
      if (!f || (entry === this.current?.entry && this.#pending > 0)) continue;
      entry.state = f.state;
      entry.instances = f.instances;
      entry.embedding = f.embedding;
    }
    this.renderImageList();
  }

  wire() {
    const c = this.canvas;
    c.addEventListener("pointerdown", (e) => this.onPointerDown(e));
    c.addEventListener("pointermove", (e) => this.onPointerMove(e));
    c.addEventListener("pointerup", (e) => this.onPointerUp(e));
    c.addEventListener("pointerleave", () => {
      this.#hover = null;
      this.invalidate(false);
    });
    c.addEventListener("contextmenu", (e) => e.preventDefault());
    c.addEventListener(
      "wheel",
      (e) => {
        e.preventDefault();
        const r = c.getBoundingClientRect();
        this.zoom(Math.exp(-e.deltaY * 0.002), { x: e.clientX - r.left, y: e.clientY - r.top });
      },
      { passive: false },
    );
    window.addEventListener("beforeunload", (e) => {
      if (this.#pending > 0) e.preventDefault(); // a save still in flight: the browser asks before leaving
    });
    window.addEventListener("keydown", (e) => this.onKey(e));
    window.addEventListener("keyup", (e) => this.onKey(e));
    new ResizeObserver(() => this.invalidate(false)).observe(c);
    $<HTMLInputElement>("image-filter").addEventListener("input", () => this.renderImageList());
    $("export").addEventListener("click", async () => {
      const format = $<HTMLSelectElement>("export-format").value as "coco" | "png" | "yolo";
      try {
        const res = await this.api.exportProject(format);
        this.toast(`Exported ${format}: ${res.files.length} files in ${res.dir}`);
      } catch (err) {
        this.toast(`Export failed: ${(err as Error).message}`, "error");
      }
    });
    $("prelabel-current").addEventListener("click", () => void this.prelabelCurrent());
    $("prelabel-all").addEventListener("click", () => void this.prelabelAll());
    $("prelabel-cancel").addEventListener("click", () => this.cancelPrelabel());
    $("next").addEventListener("click", () => this.step(1));
    $("prev").addEventListener("click", () => this.step(-1));
    $("toast").addEventListener("click", () => {
      $("toast").hidden = true;
    });
    $("help").addEventListener("click", () => {
      $("help").hidden = true;
    });
    for (const b of document.querySelectorAll<HTMLButtonElement>("[data-tool]")) {
      b.addEventListener("click", () =>
        this.handle(b.dataset.tool === "sam" ? "samTool" : (b.dataset.tool as Action), ""),
      );
    }
    $("help-table").replaceChildren(
      ...SHORTCUTS.map((s) => {
        const tr = el("tr", {}, "help-row");
        tr.append(el("td", { textContent: s.label }), el("td", { textContent: s.help }));
        return tr;
      }),
    );
  }

  async start() {
    this.wire();
    $("project-name").textContent = this.project.name;
    this.renderClasses();
    this.setupPrelabel();
    const where = decodeWhere(new URLSearchParams(location.search).get("decode"), location.hostname);
    this.segmenter = await createSegmenter(this.api, this.project, where);
    $("sam-status").dataset.decoder = this.segmenter?.kind ?? "none";
    this.images = await this.api.images();
    this.renderImageList();
    void this.pollStatus();
    const wanted = decodeURIComponent(/#image=(.*)$/.exec(location.hash)?.[1] ?? "");
    const first =
      this.images.find((i) => i.id === wanted) ?? this.images.find((i) => i.state !== "done") ?? this.images[0];
    if (first) await this.open(first.id);
    document.body.dataset.ready = "true";
  }
}

async function main() {
  const token = new URLSearchParams(location.search).get("token");
  const api = createApi(token);
  try {
    const studio = new Studio(api, await api.project());
    await studio.start();
  } catch (err) {
    const t = $("toast");
    t.textContent = `The studio could not start: ${(err as Error).message}`;
    t.dataset.kind = "error";
    t.hidden = false;
  }
}

void main();
