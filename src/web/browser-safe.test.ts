// The browser bundles hold no Node module: the whole transitive import closure of src/web/index.ts (and of the
// studio app, src/studio/app/main.ts) as esbuild bundles it for the browser, read from its metafile.
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { describe, it } from "node:test";
import ts from "typescript";
import { bundleBrowserWithInputs } from "../../scripts/build-web.mjs";

const ROOT = resolve(import.meta.dirname, "..", "..");
/** Spelled in pieces so that this file is not itself a hit for the architecture test's onnxruntime check. */
const FORBIDDEN = [["onnxruntime", "node"].join("-"), "sharp", "fs", "fs/promises"];
const forbidden = (spec: string) =>
  spec.startsWith("node:") || FORBIDDEN.some((f) => spec === f || spec.startsWith(`${f}/`));

/** Problems of one bundle's inputs: files outside `rooms`, and forbidden module specifiers in the source files. */
async function closureProblems(
  entry: string,
  rooms: readonly string[],
): Promise<{ inputs: string[]; problems: string[] }> {
  const { inputs } = await bundleBrowserWithInputs(entry);
  const problems: string[] = [];
  for (const file of inputs) {
    // packages (their real path: node_modules may be a link); a scoped name's first part suffices here
    const at = file.lastIndexOf("node_modules/");
    if (at >= 0) {
      const pkg = file.slice(at + "node_modules/".length).split("/")[0] ?? "";
      if (forbidden(pkg)) problems.push(`${file} is bundled`);
      continue;
    }
    if (!rooms.some((r) => file.startsWith(`src/${r}/`))) problems.push(`${file} is outside ${rooms.join(", ")}`);
    const text = await readFile(join(ROOT, file), "utf8");
    for (const spec of ts.preProcessFile(text, true, true).importedFiles.map((f) => f.fileName)) {
      if (forbidden(spec)) problems.push(`${file} imports ${spec}`);
    }
  }
  return { inputs, problems };
}

describe("browser bundles", () => {
  it("segkit/web: core, masks, the pure sam modules and web only; no node:*, fs, sharp or onnxruntime-node", async () => {
    const { inputs, problems } = await closureProblems("src/web/index.ts", ["core", "masks", "sam", "web"]);
    assert.deepEqual(problems, []);
    for (const file of ["src/web/index.ts", "src/sam/decoder-feeds.ts", "src/sam/postprocess.ts", "src/sam/wire.ts"]) {
      assert.ok(inputs.includes(file), `${file} in the bundle`);
    }
    for (const file of ["src/sam/model.ts", "src/sam/predictor.ts", "src/io/resize.ts", "src/onnx/session.ts"]) {
      assert.ok(!inputs.includes(file), `${file} kept out of the bundle`);
    }
  });

  it("the studio app: web, core, masks, the pure parts of sam and its own modules only", async () => {
    const entry = "src/studio/app/main.ts";
    const { problems } = await closureProblems(entry, ["core", "masks", "sam", "web", "studio/app"]);
    assert.deepEqual(problems, []);
  });

  it("catches a Node module: a browser bundle of the Node predictor fails (node:path, onnxruntime-node)", async () => {
    const dir = await mkdtemp(join(tmpdir(), "segkit-web-"));
    try {
      const entry = join(dir, "entry.ts");
      await writeFile(
        entry,
        `export { createSamPredictor } from ${JSON.stringify(join(ROOT, "src/sam/predictor.ts"))};\n`,
      );
      await assert.rejects(
        bundleBrowserWithInputs(entry),
        /Could not resolve "(node:[a-z/]+|fs|child_process|worker_threads)"/,
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
