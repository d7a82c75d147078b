// The browser bundles (run by `npm run build` after tsc, so `prepare` runs it on `npm ci`), with esbuild:
// - src/web/index.ts -> dist/web/index.js: `segkit/web`, ESM for browsers, onnxruntime-web left to the page (its
//   types: dist/web/index.d.ts from tsc);
// - src/studio/app/main.ts -> dist/studio/app.js, with index.html and style.css copied beside it (skipped while the
//   app does not exist).
// platform "browser" with nothing external but onnxruntime-web: a Node module reaching either bundle fails the build.
// `bundleBrowser` is the same build in memory, for tests (they run from src/, dist/ may be stale).
import { copyFile, mkdir, stat } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import * as esbuild from "esbuild";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");

/** esbuild options shared by the build and `bundleBrowser`. */
function options(entry) {
  return {
    entryPoints: [resolve(ROOT, entry)],
    bundle: true,
    format: "esm",
    platform: "browser",
    target: "es2022",
    external: ["onnxruntime-web"],
    absWorkingDir: ROOT,
    logLevel: "silent",
    metafile: true,
  };
}

/** `entry` (a path from the repository root, or absolute) bundled for the browser: the ESM text. */
export async function bundleBrowser(entry) {
  return (await bundleBrowserWithInputs(entry)).code;
}

/** `bundleBrowser` and the source files that went into the bundle (paths from the repository root). */
export async function bundleBrowserWithInputs(entry) {
  const result = await esbuild.build({ ...options(entry), write: false, outfile: "out.js" });
  const out = result.outputFiles.find((f) => f.path.endsWith(".js"));
  return { code: out?.text ?? "", inputs: Object.keys(result.metafile.inputs) };
}

const exists = (path) =>
  stat(path).then(
    () => true,
    () => false,
  );

/** Writes dist/web and, when the app exists, dist/studio; returns the files written. */
export async function buildWeb(root = ROOT) {
  const written = [];
  const bundle = async (entry, outfile) => {
    await esbuild.build({ ...options(join(root, entry)), outfile: join(root, outfile), sourcemap: true });
    written.push(outfile);
  };
  await bundle("src/web/index.ts", "dist/web/index.js");
  if (await exists(join(root, "src/studio/app/main.ts"))) {
    await bundle("src/studio/app/main.ts", "dist/studio/app.js");
    for (const name of ["index.html", "style.css"]) {
      const from = join(root, "src/studio/app", name);
      if (!(await exists(from))) continue;
      await mkdir(join(root, "dist/studio"), { recursive: true });
      await copyFile(from, join(root, "dist/studio", name));
      written.push(`dist/studio/${name}`);
    }
  }
  return written;
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  try {
    const written = await buildWeb();
    console.log(`build-web: ${written.join(", ")}`);
  } catch (err) {
    console.error(`build-web: ${err.message}`);
    process.exitCode = 1;
  }
}
