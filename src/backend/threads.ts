/**
 * The threaded-SIMD build of tfjs-backend-wasm, started in Node from segkit's own code (tfjs 4.22 cannot):
 *   - tfjs hard-codes WASM_HAS_MULTITHREAD_SUPPORT to false under Node (tfjs#3830), so it always loads the
 *     single-threaded SIMD binary;
 *   - forcing the flag does not help: tfjs hands Emscripten `blob:` URLs for the pthread worker script and for the
 *     main script the workers import, and Node's `worker_threads` cannot load `blob:` URLs (ERR_WORKER_PATH);
 *   - the C++ side (`init_with_threads_count`) caps the pool at `emscripten_num_logical_cores() / 2`, which is
 *     `os.cpus().length / 2` in Node: one thread on a 2-core machine, whatever `setThreadsCount` says;
 *   - a running pthread's worker is `ref()`ed, so the pool's idle threads would keep the process alive.
 * So segkit replaces the `wasm` backend factory (same name, same kernels, same `BackendWasm` class) with one that
 * calls the Emscripten factory of `wasm-out/tfjs-backend-wasm-threaded-simd.js` itself with: real file paths for the
 * `.wasm` and the main script; a `data:` ES-module worker that loads the worker code tfjs ships
 * (`wasmWorkerContents`) with a `require`; an `instantiateWasm` that reports twice the requested thread count as the
 * number of logical cores (so the C++ cap lets it through) and keeps only the workers the pool needs (Emscripten
 * pre-spawns 8); and, once the pool runs, `unref()` on its workers.
 */
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { availableParallelism } from "node:os";
import { dirname, join } from "node:path";
import * as tf from "@tensorflow/tfjs";
import { BackendWasm, getThreadsCount, setThreadsCount } from "@tensorflow/tfjs-backend-wasm";

/** tfjs-backend-wasm's C++ side never uses more than 8 threads (it pre-creates 8 workers at most). */
export const MAX_WASM_THREADS = 8;
const WASM_PRIORITY = 2; // tfjs-backend-wasm's own priority for the `wasm` backend
const START_TIMEOUT_MS = 20_000;

/** Logical cores, capped at what the wasm backend can use: the default thread count. */
export function defaultWasmThreads(): number {
  return Math.min(availableParallelism(), MAX_WASM_THREADS);
}

interface PThreadWorker {
  onerror: (event: unknown) => void;
  unref(): void;
  terminate(): Promise<number>;
}
interface PThreadRegistry {
  unusedWorkers: PThreadWorker[];
  runningWorkers: PThreadWorker[];
  terminateAllThreads(): void;
}
interface EmscriptenModule {
  cwrap(name: string, returnType: string | null, argTypes: string[]): (...args: number[]) => number;
  PThread?: PThreadRegistry;
  tfjs?: Record<string, unknown>;
}
interface FactoryConfig {
  mainScriptUrlOrBlob: string;
  locateFile(path: string, prefix: string): string | URL;
  instantiateWasm(
    info: { env: Record<string, unknown> },
    receive: (instance: unknown, module: unknown) => void,
  ): object;
  onAbort(what: unknown): void;
  PThread?: PThreadRegistry;
}
type EmscriptenFactory = (config: FactoryConfig) => Promise<EmscriptenModule>;
/** The part of the WebAssembly global used here (the project's `lib` has no DOM types). */
interface WebAssemblyApi {
  instantiate(bytes: Uint8Array, imports: object): Promise<{ instance: unknown; module: unknown }>;
}
const webAssembly = (globalThis as unknown as { WebAssembly: WebAssemblyApi }).WebAssembly;

const require = createRequire(import.meta.url);

/** Paths into node_modules' tfjs-backend-wasm (resolved, so hoisting or nesting does not matter). */
function threadedBuildFiles(): { mainScript: string; wasm: string; workerCode: string } {
  const mainScript = require.resolve("@tensorflow/tfjs-backend-wasm/wasm-out/tfjs-backend-wasm-threaded-simd.js");
  const dir = dirname(mainScript);
  return {
    mainScript,
    wasm: join(dir, "tfjs-backend-wasm-threaded-simd.wasm"),
    workerCode: join(dir, "tfjs-backend-wasm-threaded-simd.worker.js"),
  };
}

/**
 * The pthread worker's entry: an ES module in a `data:` URL (Node's `worker_threads` loads `file:` and `data:` URLs,
 * not `blob:`), which runs tfjs's worker code with the `require` and `__filename` it expects of a CommonJS script.
 */
function workerEntryUrl(workerCode: string): URL {
  const file = JSON.stringify(workerCode);
  const source = [
    `import { createRequire } from "node:module";`,
    `const require = createRequire(${file});`,
    // the code sits in a template literal there, whose "\n" escapes became newlines: tfjs escapes them back too
    `const code = require(${file}).wasmWorkerContents.replace(/\\n/g, "\\\\n");`,
    `new Function("require", "__filename", code)(require, ${file});`,
  ].join("\n");
  return new URL(`data:text/javascript,${encodeURIComponent(source)}`);
}

/** Starts the threaded-SIMD Emscripten module with a pool of `threads` (the calling thread counts as one). */
async function startThreadedModule(threads: number): Promise<EmscriptenModule> {
  const files = threadedBuildFiles();
  const factory = require(files.mainScript) as EmscriptenFactory;
  const workerUrl = workerEntryUrl(files.workerCode);
  let config: FactoryConfig | undefined;
  const started = new Promise<EmscriptenModule>((resolve, reject) => {
    config = {
      mainScriptUrlOrBlob: files.mainScript,
      locateFile: (path, prefix) => (path.endsWith(".worker.js") ? workerUrl : prefix + path),
      instantiateWasm(info, receive) {
        // the C++ side caps the pool at half of this (it assumes two hyper-threads per core)
        info.env.emscripten_num_logical_cores = () => 2 * threads;
        // Emscripten pre-spawns 8 workers; the pool needs threads - 1 (the main thread is the other one)
        const pool = config?.PThread?.unusedWorkers ?? [];
        while (pool.length > threads - 1) void pool.pop()?.terminate();
        webAssembly.instantiate(readFileSync(files.wasm), info).then((result) => {
          receive(result.instance, result.module); // sends the module to the workers
          // Emscripten throws a worker's start-up error from an event handler (an uncaught exception that ends the
          // process): reject instead until the module is ready, then restore its handler
          for (const worker of pool) {
            const onerror = worker.onerror;
            worker.onerror = (event: unknown) => reject(event instanceof Error ? event : new Error(String(event)));
            const restore = () => {
              worker.onerror = onerror;
            };
            started.then(restore, restore);
          }
        }, reject);
        return {}; // exports arrive through `receive`
      },
      onAbort: (what) => reject(new Error(`the threaded wasm module aborted: ${String(what)}`)),
    };
    factory(config).then(resolve, reject);
  });
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no start within ${START_TIMEOUT_MS / 1000} s`)), START_TIMEOUT_MS);
  });
  try {
    const module = await Promise.race([started, timeout]);
    // what tfjs's own init() adds before handing the module to BackendWasm
    module.tfjs = {
      init: module.cwrap("init", null, []),
      initWithThreadsCount: module.cwrap("init_with_threads_count", null, ["number"]),
      getThreadsCount: module.cwrap("get_threads_count", "number", []),
      registerTensor: module.cwrap("register_tensor", null, ["number", "number", "number"]),
      disposeData: module.cwrap("dispose_data", null, ["number"]),
      dispose: module.cwrap("dispose", null, []),
    };
    return module;
  } catch (err) {
    config?.PThread?.terminateAllThreads();
    throw err;
  } finally {
    clearTimeout(timer);
  }
}

/** Creates the threaded backend: builds the pool, then lets the process exit while its threads idle. */
async function createThreadedBackend(threads: number): Promise<BackendWasm> {
  const module = await startThreadedModule(threads);
  setThreadsCount(threads); // read by the BackendWasm constructor, which creates the pool
  const backend = new BackendWasm(module as unknown as ConstructorParameters<typeof BackendWasm>[0]);
  for (const worker of module.PThread?.runningWorkers ?? []) worker.unref();
  return backend;
}

let threadedFactoryInstalled = false;

/**
 * Makes the next initialisation of the `wasm` backend start the threaded-SIMD build with `threads` threads (no-op
 * when the backend is already initialised: its module cannot be swapped under live tensors). If the threaded build
 * cannot start, it warns once and falls back to tfjs's own (single-threaded SIMD) factory. `threads` = 1 keeps
 * tfjs's factory. Returns whether the threaded factory is installed.
 */
export function useThreadedWasm(threads: number): boolean {
  const engine = tf.engine();
  if (engine.registry.wasm) return threadedFactoryInstalled;
  if (!threadedFactoryInstalled) {
    const stock = engine.registryFactory.wasm;
    if (!stock) throw new Error("segkit: @tensorflow/tfjs-backend-wasm has not registered its backend");
    stockWasmFactory = stock.factory;
  }
  threadedFactoryInstalled = threads > 1;
  const factory = stockWasmFactory;
  if (!factory) return false;
  tf.removeBackend("wasm");
  if (threads <= 1) {
    setThreadsCount(1);
    tf.registerBackend("wasm", factory, WASM_PRIORITY);
    return false;
  }
  const count = Math.min(threads, MAX_WASM_THREADS);
  tf.registerBackend(
    "wasm",
    async () => {
      try {
        return await createThreadedBackend(count);
      } catch (err) {
        console.warn(`segkit: the threaded wasm build did not start (${(err as Error).message}); using one thread`);
        threadedFactoryInstalled = false;
        setThreadsCount(1);
        return factory();
      }
    },
    WASM_PRIORITY,
  );
  return true;
}

let stockWasmFactory: (() => tf.KernelBackend | Promise<tf.KernelBackend>) | undefined;

/**
 * Threads the wasm backend really uses (read back from XNNPACK's pool), or undefined before it initialises.
 * 1 means the single-threaded build (or the threaded one limited to one thread).
 */
export function wasmThreads(): number | undefined {
  if (!tf.engine().registry.wasm) return undefined;
  try {
    return getThreadsCount();
  } catch {
    return undefined;
  }
}
