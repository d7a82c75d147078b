import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { ISOLATION_HEADERS, openPage, serveStatic, withBrowser } from "./browser.js";

describe("serveStatic", () => {
  it("serves bodies, files and directories with the isolation headers; 404 outside, 400 / 405 for bad requests", async () => {
    const root = await mkdtemp(join(tmpdir(), "segkit-static-"));
    await mkdir(join(root, "pub"));
    await writeFile(join(root, "pub", "a.wasm"), new Uint8Array([0, 97, 115, 109]));
    await writeFile(join(root, "secret.txt"), "no");
    const server = await serveStatic({
      "/": { body: "<p>hi</p>", type: "text/html" },
      "/x.js": { body: "export const x = 1;" },
      "/file": { file: join(root, "secret.txt"), type: "text/plain" },
      "/pub/": { dir: join(root, "pub") },
    });
    try {
      const get = async (path: string, init?: RequestInit) => {
        const res = await fetch(`${server.url}${path}`, init);
        return { status: res.status, type: res.headers.get("content-type"), text: await res.text(), res };
      };
      const home = await get("/");
      assert.deepEqual([home.status, home.type, home.text], [200, "text/html", "<p>hi</p>"]);
      for (const [name, value] of Object.entries(ISOLATION_HEADERS)) assert.equal(home.res.headers.get(name), value);
      assert.equal((await get("/x.js")).type, "text/javascript; charset=utf-8");
      assert.equal((await get("/file")).text, "no");
      const wasm = await get("/pub/a.wasm");
      assert.deepEqual([wasm.status, wasm.type], [200, "application/wasm"]);
      for (const path of [
        "/pub/../secret.txt",
        "/pub/%2e%2e/secret.txt",
        "/pub/..%2fsecret.txt",
        "/pub/missing",
        "/nope",
      ]) {
        const r = await get(path);
        assert.equal(r.status, 404, path);
        assert.equal(r.res.headers.get("cross-origin-embedder-policy"), "require-corp");
      }
      assert.equal((await get("/pub/%E0%A4%A")).status, 400);
      assert.equal((await get("/", { method: "POST", body: "x" })).status, 405);
    } finally {
      await server.close();
      await rm(root, { recursive: true, force: true });
    }
  });
});

describe("openPage", () => {
  it("runs on a cross-origin isolated page, and fails on a page error or a console error not allowed", async () => {
    const server = await serveStatic({
      "/": { body: '<link rel="icon" href="data:,"><p>ok</p>', type: "text/html" },
      "/throws": { body: '<link rel="icon" href="data:,"><script>throw new Error("boom")</script>', type: "text/html" },
      "/logs": {
        body: '<link rel="icon" href="data:,"><script>console.error("bad thing")</script>',
        type: "text/html",
      },
    });
    try {
      await withBrowser(async (browser) => {
        const isolated = await openPage(browser, `${server.url}/`, (page) =>
          page.evaluate(() => (globalThis as { crossOriginIsolated?: boolean }).crossOriginIsolated),
        );
        assert.equal(isolated, true);
        await assert.rejects(
          openPage(browser, `${server.url}/throws`, () => new Promise<never>(() => {})),
          /uncaught error in .*boom/,
        );
        await assert.rejects(
          openPage(browser, `${server.url}/logs`, () => new Promise<never>(() => {})),
          /console error in .*bad thing/,
        );
        const allowed = await openPage(browser, `${server.url}/logs`, (page) => page.evaluate(() => 1 + 1), {
          allowErrors: [/bad thing/],
        });
        assert.equal(allowed, 2);
      });
    } finally {
      await server.close();
    }
  });
});
