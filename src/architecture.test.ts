// The rooms of src/ and the rules between them (ARCHITECTURE.md): no directory-level import cycle, onnxruntime
// imported only in src/onnx/, core and masks standing on nothing. The graph is read from the sources with the
// TypeScript scanner (static `import` / `export ... from`, `import type`, side-effect imports and dynamic `import()`,
// not comments or strings); test files are left out, as they may reach across rooms to check them.
import assert from "node:assert/strict";
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, relative, resolve, sep } from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import ts from "typescript";

const SRC = dirname(fileURLToPath(import.meta.url));
/** onnxruntime's Node package, spelled so that this file is not itself a hit of `git grep` for the name. */
const ORT = ["onnxruntime", "node"].join("-");

/** Every .ts file under `root` (relative paths, `/`-separated), fixtures included, sorted. */
async function sourceFiles(root: string): Promise<string[]> {
  const entries = await readdir(root, { recursive: true, withFileTypes: true });
  return entries
    .filter((e) => e.isFile() && e.name.endsWith(".ts"))
    .map((e) => relative(root, join(e.parentPath, e.name)).split(sep).join("/"))
    .sort();
}

/** The room of a file: its first-level directory, or the file's own name without extension (`index`, `version`). */
const room = (file: string) => {
  const [first = "", ...rest] = file.split("/");
  return rest.length > 0 ? first : first.replace(/\.[^.]+$/, "");
};

/** Module specifiers a source file imports (imports, re-exports, dynamic `import()`, `require()`). */
const specifiers = (text: string) => ts.preProcessFile(text, true, true).importedFiles.map((f) => f.fileName);

/** Room -> rooms it imports (relative imports of non-test files), with one file that does it for each edge. */
async function importGraph(root: string): Promise<Map<string, Map<string, string>>> {
  const graph = new Map<string, Map<string, string>>();
  for (const file of await sourceFiles(root)) {
    if (file.endsWith(".test.ts")) continue;
    const from = room(file);
    const edges = graph.get(from) ?? new Map<string, string>();
    graph.set(from, edges);
    for (const spec of specifiers(await readFile(join(root, file), "utf8"))) {
      if (!spec.startsWith(".")) continue;
      const target = relative(root, resolve(root, dirname(file), spec))
        .split(sep)
        .join("/");
      const to = room(target);
      if (to !== from && !edges.has(to)) edges.set(to, `${file} imports ${spec}`);
    }
  }
  return graph;
}

/** One cycle of `graph` as the rooms along it (`[a, b, a]`), or null; rooms and edges visited in sorted order. */
export function findCycle(
  graph: ReadonlyMap<string, ReadonlyMap<string, string> | ReadonlySet<string>>,
): string[] | null {
  const state = new Map<string, "open" | "done">();
  const path: string[] = [];
  const visit = (node: string): string[] | null => {
    state.set(node, "open");
    path.push(node);
    for (const next of [...(graph.get(node)?.keys() ?? [])].sort()) {
      if (state.get(next) === "open") return [...path.slice(path.indexOf(next)), next];
      if (!state.has(next)) {
        const cycle = visit(next);
        if (cycle) return cycle;
      }
    }
    path.pop();
    state.set(node, "done");
    return null;
  };
  for (const node of [...graph.keys()].sort()) {
    if (!state.has(node)) {
      const cycle = visit(node);
      if (cycle) return cycle;
    }
  }
  return null;
}

/** `a -> b (file imports spec) -> a (...)`: the cycle with the import behind each step. */
function describeCycle(cycle: string[], graph: Map<string, Map<string, string>>): string {
  return cycle
    .slice(1)
    .map((to, i) => `${cycle[i]} -> ${to} (${graph.get(cycle[i] as string)?.get(to)})`)
    .join("\n");
}

/**
 * The rooms from the bottom up (README, "Development"): a room may import only rooms before it in this list, so
 * no room imports one above it and no two import each other. A new room gets its place here.
 */
export const LAYERS = [
  ["core", "version"], // shared types, errors, seeded random; the package version
  ["masks"], // masks as data: RLE, polygons, connected components, the bilinear resize
  ["io"], // files: images and masks through sharp, PNG, atomic writes, charts
  ["onnx"], // the one importer of onnxruntime
  ["data"], // datasets, formats, transforms, the loader
  ["metrics", "losses"], // confusion statistics and reductions; losses
  ["export"], // COCO / YOLO / PNG writers
  ["models"], // tfjs models: encoders x decoders, model io, checkpoint layout, ONNX export
  ["backend"], // the tfjs backend and segkit's kernels
  ["eval"], // score a model, score prediction files
  ["train"], // fit, optimizer, schedules, reports
  ["infer"], // predict with a trained model; the batch driver over folders of images
  ["sam", "instances"], // Segment Anything; instance models and their results
  ["web"], // segkit/web, the browser entry: core, masks and the pure parts of sam only (no Node modules)
  ["studio"], // segkit studio: the server, project store, encoder queue; studio/app is the browser app (esbuild)
  ["index"], // the public barrel
  ["cli"], // commands, on the public API only
  ["test-utils"], // helpers of the tests
] as const;

/** Edges of `graph` that go to the same layer or up (`from -> to (file imports spec)`), and rooms not in `layers`. */
export function layerViolations(
  graph: ReadonlyMap<string, ReadonlyMap<string, string>>,
  layers: readonly (readonly string[])[],
): string[] {
  const level = new Map(layers.flatMap((rooms, i) => rooms.map((r) => [r, i] as const)));
  const problems: string[] = [];
  for (const [from, edges] of [...graph].sort()) {
    const mine = level.get(from);
    if (mine === undefined) {
      problems.push(`${from} has no place in LAYERS`);
      continue;
    }
    for (const [to, why] of edges) {
      const theirs = level.get(to);
      if (theirs === undefined || theirs >= mine) problems.push(`${from} -> ${to} (${why})`);
    }
  }
  return problems;
}

describe("architecture", () => {
  it("finds a cycle in a hand-made graph, names it, and none in a layered one", () => {
    const g = (edges: Record<string, string[]>) => new Map(Object.entries(edges).map(([k, v]) => [k, new Set(v)]));
    assert.deepEqual(findCycle(g({ core: [], data: ["core", "export"], export: ["core", "data"] })), [
      "data",
      "export",
      "data",
    ]);
    assert.deepEqual(findCycle(g({ a: ["b"], b: ["c"], c: ["a"], d: ["a"] })), ["a", "b", "c", "a"]);
    assert.deepEqual(findCycle(g({ a: ["a"] })), ["a", "a"]);
    assert.equal(findCycle(g({ cli: ["index"], index: ["sam", "core"], sam: ["onnx", "core"], onnx: ["core"] })), null);
  });

  it("reads the graph from sources: static, type-only, re-exports and dynamic imports; tests and comments left out", async () => {
    const root = await mkdtemp(join(tmpdir(), "segkit-arch-"));
    try {
      const files: Record<string, string> = {
        "data/coco.ts": 'import type { Rle } from "../export/rle.js";\n// import { x } from "../io/x.js";\n',
        "export/rle.ts": 'export { read } from "../data/read.js";\nexport type Rle = number[];\n',
        "data/read.ts": 'export const read = () => import("../core/lazy.js");\nconst s = "../sam/s.js";\n',
        "core/lazy.ts": "export const x = 1;\n",
        "core/lazy.test.ts": 'import { read } from "../data/read.js";\n',
        "index.ts": 'export * from "./data/coco.js";\n',
      };
      for (const [file, text] of Object.entries(files)) {
        await mkdir(dirname(join(root, file)), { recursive: true });
        await writeFile(join(root, file), text);
      }
      const graph = await importGraph(root);
      const edges = Object.fromEntries([...graph].map(([k, v]) => [k, [...v.keys()].sort()]));
      assert.deepEqual(edges, { core: [], data: ["core", "export"], export: ["data"], index: ["data"] });
      const cycle = findCycle(graph);
      assert.deepEqual(cycle, ["data", "export", "data"]);
      assert.equal(
        describeCycle(cycle ?? [], graph),
        "data -> export (data/coco.ts imports ../export/rle.js)\nexport -> data (export/rle.ts imports ../data/read.js)",
      );
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });

  it("a room imports only rooms below it in LAYERS (hand-made cases, then src/)", async () => {
    const g = (edges: Record<string, Record<string, string>>) =>
      new Map(Object.entries(edges).map(([k, v]) => [k, new Map(Object.entries(v))]));
    const layers = [["core"], ["io", "data"], ["sam"]];
    assert.deepEqual(
      layerViolations(g({ core: {}, io: { core: "io/a.ts" }, sam: { io: "s.ts", core: "t.ts" } }), layers),
      [],
    );
    assert.deepEqual(
      layerViolations(g({ core: { io: "core/x.ts imports ../io/y.js" }, io: { data: "io/z.ts" }, web: {} }), layers),
      ["core -> io (core/x.ts imports ../io/y.js)", "io -> data (io/z.ts)", "web has no place in LAYERS"],
    );
    assert.deepEqual(layerViolations(await importGraph(SRC), LAYERS), []);
  });

  it("src/ has no directory-level import cycle", async () => {
    const graph = await importGraph(SRC);
    const cycle = findCycle(graph);
    assert.equal(cycle, null, `directory-level import cycle:\n${describeCycle(cycle ?? [], graph)}`);
  });

  it("core stands on nothing, masks on core only, and masks use neither fs nor sharp (they run in the browser)", async () => {
    const graph = await importGraph(SRC);
    assert.deepEqual([...(graph.get("core")?.keys() ?? [])], []);
    assert.deepEqual(
      [...(graph.get("masks")?.keys() ?? [])].filter((r) => r !== "core"),
      [],
    );
    for (const file of (await sourceFiles(SRC)).filter((f) => f.startsWith("masks/") && !f.endsWith(".test.ts"))) {
      const outside = specifiers(await readFile(join(SRC, file), "utf8")).filter((s) => !s.startsWith("."));
      assert.deepEqual(outside, [], `${file} imports ${outside.join(", ")}`);
    }
  });

  it("only src/onnx/ imports onnxruntime (tests included; require and import() count)", async () => {
    const offenders: string[] = [];
    for (const file of await sourceFiles(SRC)) {
      if (file.startsWith("onnx/")) continue;
      const text = await readFile(join(SRC, file), "utf8");
      const imported = specifiers(text).some((s) => s === ORT || s.startsWith(`${ORT}/`));
      // also a specifier handed to createRequire(...)(...), which the scanner does not see
      if (imported || new RegExp(`["'\`]${ORT}["'\`/]`).test(text)) offenders.push(file);
    }
    assert.deepEqual(offenders, []);
    const inside = [];
    for (const file of (await sourceFiles(SRC)).filter((f) => f.startsWith("onnx/"))) {
      if (specifiers(await readFile(join(SRC, file), "utf8")).includes(ORT)) inside.push(file);
    }
    assert.ok(inside.length > 0, `src/onnx/ itself imports ${ORT}`);
  });
});
