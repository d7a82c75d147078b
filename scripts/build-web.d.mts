/** `entry` (a path from the repository root, or absolute) bundled for the browser (ESM, onnxruntime-web external). */
export function bundleBrowser(entry: string): Promise<string>;
/** `bundleBrowser` and the source files that went into the bundle (paths from the repository root). */
export function bundleBrowserWithInputs(entry: string): Promise<{ code: string; inputs: string[] }>;
/** Writes dist/web and, when the app exists, dist/studio; returns the files written. */
export function buildWeb(root?: string): Promise<string[]>;
