import { createHash } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

/**
 * A Hugging Face-style hub on 127.0.0.1 for tests: a listing API, `resolve/` URLs that serve git files directly
 * (ETag = git blob sha1) and redirect LFS files to a CDN on another port (X-Linked-Etag = sha256, X-Linked-Size,
 * X-Repo-Commit), HTTP Range on both, and faults to switch on per test.
 */
export interface FakeHub {
  /** The hub's base URL (`http://127.0.0.1:PORT`). */
  url: string;
  commit: string;
  /** The repository `acme/tiny-sam`: path -> content. */
  files: Record<string, Buffer>;
  /** Every request answered, in order. */
  log: { url: string; range: string | undefined; status: number; authorization: string | undefined }[];
  faults: {
    /** The CDN sends this many bytes of a file, then holds the connection until `cut()`. */
    cutAfter?: number;
    /** The CDN answers every Range request with the whole file (200). */
    ignoreRange?: boolean;
    /** This file's bytes are served with one byte changed (its tags stay those of the true content). */
    corrupt?: string;
    /** The listing names one more file. */
    evilName?: string;
    /** `resolve/` redirects to itself. */
    redirectLoop?: boolean;
  };
  /** Cuts the connection held by `faults.cutAfter` (call it once the client has the bytes: a cut connection's
   * unread bytes are lost, which would make the test depend on timing). */
  cut(): void;
  /** Clears the log and the faults. */
  reset(): void;
  close(): Promise<void>;
}

/** git's object id of a file: sha1 of `blob <size>\0` followed by the bytes (`git hash-object`). */
export const gitBlobSha1 = (data: Buffer) =>
  createHash("sha1").update(`blob ${data.length}\0`).update(data).digest("hex");

const sha256 = (data: Buffer) => createHash("sha256").update(data).digest("hex");

/** Deterministic bytes: `n` of them from a simple linear congruential sequence seeded by `seed`. */
function bytes(n: number, seed: number): Buffer {
  const out = Buffer.alloc(n);
  let s = seed;
  for (let i = 0; i < n; i++) {
    s = (s * 1103515245 + 12345) >>> 0;
    out[i] = s >>> 24;
  }
  return out;
}

const isLfs = (path: string) => /\.(onnx|onnx_data|bin)$/.test(path);

/** Serves `files` (default: a transformers.js-like repository of deterministic bytes) as `acme/tiny-sam`. */
export async function startFakeHub(
  files: Record<string, Buffer> = {
    "README.md": Buffer.from("# tiny-sam\n"),
    "config.json": Buffer.from('{"model_type":"sam"}\n'),
    "onnx/decoder.onnx": bytes(4000, 1),
    "onnx/encoder.onnx": bytes(6000, 2),
    "onnx/encoder.onnx_data": bytes(10000, 3),
    "weights.bin": bytes(500, 4),
  },
): Promise<FakeHub> {
  const commit = "0123456789abcdef0123456789abcdef01234567";
  let held: ServerResponse | undefined;
  const byHash = new Map(Object.values(files).map((b) => [sha256(b), b]));
  const hub: FakeHub = {
    url: "",
    commit,
    files,
    log: [],
    faults: {},
    cut() {
      held?.destroy();
      held = undefined;
    },
    reset() {
      hub.log.length = 0;
      hub.faults = {};
    },
    close: async () => {
      for (const s of [hubServer, cdnServer]) {
        s.closeAllConnections();
        await new Promise((r) => s.close(r));
      }
    },
  };
  const served = (path: string) => {
    const b = files[path] as Buffer;
    if (hub.faults.corrupt !== path) return b;
    const copy = Buffer.from(b);
    copy[copy.length >> 1] = ((copy[copy.length >> 1] ?? 0) + 1) & 255;
    return copy;
  };
  const send = (req: IncomingMessage, res: ServerResponse, status: number, headers: Record<string, string>) => {
    hub.log.push({
      url: req.url ?? "",
      range: req.headers.range,
      status,
      authorization: req.headers.authorization,
    });
    res.writeHead(status, headers);
  };
  /** A body with Range support (only `bytes=N-`, what a resuming client sends). */
  const sendBody = (req: IncomingMessage, res: ServerResponse, data: Buffer, headers: Record<string, string>) => {
    const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? "");
    const from = m && !hub.faults.ignoreRange ? Number(m[1]) : 0;
    if (m && !hub.faults.ignoreRange && from >= data.length) {
      send(req, res, 416, { "content-range": `bytes */${data.length}` });
      res.end();
      return;
    }
    const ranged = from > 0 || (m !== null && !hub.faults.ignoreRange);
    send(req, res, ranged ? 206 : 200, {
      ...headers,
      "accept-ranges": "bytes",
      "content-length": String(data.length - from),
      ...(ranged ? { "content-range": `bytes ${from}-${data.length - 1}/${data.length}` } : {}),
    });
    const cut = hub.faults.cutAfter;
    if (cut !== undefined && cut < data.length - from) {
      held = res;
      res.write(data.subarray(from, from + cut));
    } else {
      res.end(data.subarray(from));
    }
  };

  const hubServer: Server = createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://x");
    const api = /^\/api\/models\/(.+)\/revision\/([^/]+)$/.exec(url.pathname);
    if (api) {
      if (api[1] !== "acme/tiny-sam") {
        send(req, res, 404, { "content-type": "application/json", "x-error-code": "RepoNotFound" });
        res.end('{"error":"Repository not found"}');
        return;
      }
      const siblings = Object.keys(files).map((rfilename) => ({ rfilename }));
      if (hub.faults.evilName) siblings.push({ rfilename: hub.faults.evilName });
      send(req, res, 200, { "content-type": "application/json" });
      res.end(JSON.stringify({ id: "acme/tiny-sam", sha: commit, siblings }));
      return;
    }
    const resolve = /^\/acme\/tiny-sam\/resolve\/([^/]+)\/(.+)$/.exec(url.pathname);
    const path = resolve ? resolve[2]?.split("/").map(decodeURIComponent).join("/") : undefined;
    if (resolve && hub.faults.redirectLoop) {
      send(req, res, 302, { location: url.pathname });
      res.end();
    } else if (path === undefined || !(path in files)) {
      send(req, res, 404, { "x-error-code": "EntryNotFound" });
      res.end("Entry not found");
    } else if (isLfs(path)) {
      const data = files[path] as Buffer;
      send(req, res, 302, {
        location: `${cdnUrl}/cdn/${sha256(data)}?path=${encodeURIComponent(path)}`,
        "x-linked-etag": `"${sha256(data)}"`,
        "x-linked-size": String(data.length),
        "x-repo-commit": commit,
        etag: `"${gitBlobSha1(Buffer.from(`version https://git-lfs.github.com/spec/v1\noid sha256:${sha256(data)}\n`))}"`,
      });
      res.end();
    } else {
      sendBody(req, res, served(path), { etag: `"${gitBlobSha1(files[path] as Buffer)}"`, "x-repo-commit": commit });
    }
  });
  const cdnServer: Server = createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://x");
    const data = byHash.get(url.pathname.replace(/^\/cdn\//, ""));
    const path = url.searchParams.get("path") ?? "";
    if (!data) {
      send(req, res, 404, {});
      res.end();
      return;
    }
    // an S3-style tag: an md5, not a content hash the client can use
    sendBody(req, res, served(path), { etag: `"${createHash("md5").update(data).digest("hex")}"` });
  });
  const listen = (s: Server) =>
    new Promise<string>((r) =>
      s.listen(0, "127.0.0.1", () => r(`http://127.0.0.1:${(s.address() as AddressInfo).port}`)),
    );
  hub.url = await listen(hubServer);
  const cdnUrl = await listen(cdnServer);
  return hub;
}
