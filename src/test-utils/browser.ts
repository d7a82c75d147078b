/**
 * Browser tests: Debian's chromium (or `SEGKIT_CHROMIUM`) driven by playwright-core, headless, and a static server on
 * 127.0.0.1 with the cross-origin isolation headers onnxruntime-web's threaded wasm needs. A page's console errors
 * and uncaught errors fail the test that opened it (unless allowed by pattern); browsers and pages always close.
 */
import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import { createServer, type ServerResponse } from "node:http";
import { createRequire } from "node:module";
import type { AddressInfo } from "node:net";
import { dirname, resolve, sep } from "node:path";
import { type Browser, chromium, type Page } from "playwright-core";
import { contentType, ISOLATION_HEADERS } from "../studio/server.js";

export const CHROMIUM = process.env.SEGKIT_CHROMIUM ?? "/usr/bin/chromium";

/** node_modules/onnxruntime-web/dist: `ort.wasm.min.mjs` and the wasm files it loads from beside itself. */
export const ORT_WEB_DIST = dirname(createRequire(import.meta.url).resolve("onnxruntime-web"));

/** Headers every test response carries (as the studio server's): the page is cross-origin isolated. */
export { ISOLATION_HEADERS };

/** A headless chromium (the caller closes it; `withBrowser` does that itself). */
export function launchBrowser(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: ["--no-sandbox"] });
}

/** Runs `fn` with a headless chromium, closed afterwards whatever happens. */
export async function withBrowser<T>(fn: (browser: Browser) => Promise<T>): Promise<T> {
  const browser = await launchBrowser();
  try {
    return await fn(browser);
  } finally {
    await browser.close();
  }
}

export interface OpenPageOptions {
  /** Console errors matching one of these do not fail the page (e.g. the 404 a test provokes). */
  allowErrors?: readonly RegExp[];
}

/**
 * Opens `url` in a fresh context of `browser` and runs `fn` on the page; rejects with the page's first console
 * error or uncaught error as soon as one happens (or `fn`'s own error); closes the context.
 */
export async function openPage<T>(
  browser: Browser,
  url: string,
  fn: (page: Page) => Promise<T>,
  options: OpenPageOptions = {},
): Promise<T> {
  const context = await browser.newContext();
  try {
    const page = await context.newPage();
    let fail: (err: Error) => void = () => {};
    const failed = new Promise<never>((_, reject) => {
      fail = reject;
    });
    failed.catch(() => {}); // handled by the race below; unobserved when the page stays clean
    const allowed = (text: string) => (options.allowErrors ?? []).some((re) => re.test(text));
    page.on("console", (msg) => {
      if (msg.type() !== "error" || allowed(msg.text())) return;
      fail(new Error(`console error in ${url}: ${msg.text()} (at ${msg.location().url || "?"})`));
    });
    page.on("pageerror", (err) => fail(new Error(`uncaught error in ${url}: ${err.stack ?? err.message}`)));
    await Promise.race([page.goto(url), failed]);
    return await Promise.race([fn(page), failed]);
  } finally {
    await context.close();
  }
}

/** A route's answer: bytes or text (with a content type, default by the path's extension), or a file or directory. */
export type StaticRoute =
  | { body: string | Uint8Array; type?: string }
  | { file: string; type?: string }
  /** For a route ending in `/`: the files below `dir` (no `..`, nothing outside it). */
  | { dir: string };

export interface StaticServer {
  /** `http://127.0.0.1:<port>` */
  readonly url: string;
  close(): Promise<void>;
}

/**
 * A static server on 127.0.0.1 (a free port) answering GET for exact paths (`/index.html`) and, for routes ending in
 * `/`, the files of a directory; every response with `ISOLATION_HEADERS`; 404 / 405 with a message otherwise.
 */
export async function serveStatic(routes: Readonly<Record<string, StaticRoute>>): Promise<StaticServer> {
  const send = (res: ServerResponse, status: number, text: string) => {
    res.writeHead(status, { ...ISOLATION_HEADERS, "Content-Type": "text/plain; charset=utf-8" }).end(text);
  };
  const sendFile = async (res: ServerResponse, file: string, type: string) => {
    const info = await stat(file).catch(() => null);
    if (!info?.isFile()) return send(res, 404, "not found\n");
    res.writeHead(200, { ...ISOLATION_HEADERS, "Content-Type": type, "Content-Length": info.size });
    createReadStream(file).pipe(res);
  };
  const server = createServer((req, res) => {
    if (req.method !== "GET" && req.method !== "HEAD") return send(res, 405, "only GET\n");
    let path: string;
    try {
      path = decodeURIComponent(new URL(req.url ?? "/", "http://x").pathname);
    } catch {
      return send(res, 400, "bad path encoding\n");
    }
    const route = routes[path];
    if (route && "body" in route) {
      const body = typeof route.body === "string" ? Buffer.from(route.body) : route.body;
      res.writeHead(200, { ...ISOLATION_HEADERS, "Content-Type": route.type ?? contentType(path) }).end(body);
      return;
    }
    if (route && "file" in route) return void sendFile(res, route.file, route.type ?? contentType(route.file));
    for (const [prefix, r] of Object.entries(routes)) {
      if (!prefix.endsWith("/") || !path.startsWith(prefix) || !("dir" in r)) continue;
      const rest = path.slice(prefix.length);
      const file = resolve(r.dir, rest);
      if (rest.split("/").includes("..") || !file.startsWith(r.dir + sep)) return send(res, 404, "not found\n");
      return void sendFile(res, file, contentType(file));
    }
    send(res, 404, `no route for ${path}\n`);
  });
  await new Promise<void>((ok) => server.listen(0, "127.0.0.1", ok));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((ok, ko) => {
        server.closeAllConnections();
        server.close((err) => (err ? ko(err) : ok()));
      }),
  };
}
