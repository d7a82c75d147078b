/**
 * Running segkit and its Python peers side by side: which interpreters carry a PyTorch peer, a peer kept running
 * between passes (one JSON request per line on stdin, one JSON answer per line on stdout), and timed passes that
 * alternate between the sides so that load from other processes falls on all of them alike.
 */
import { type ChildProcessByStdio, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { createInterface } from "node:readline";
import type { Readable, Writable } from "node:stream";
import { PYTHON } from "./common.js";

/** The second peer's interpreter when SEGKIT_PEER_PYTHON is unset: a venv with a newer torch (see bench/README.md). */
export const SECOND_PEER_PYTHON = "/opt/segkit-peer/bin/python";

export interface PeerPython {
  /** `debian`: /usr/bin/python3 with python3-torch, the peer CI can always install; `second`: a newer torch. */
  id: "debian" | "second";
  python: string;
}

/**
 * The interpreters to run a PyTorch peer on: Debian's, then SEGKIT_PEER_PYTHON (or /opt/segkit-peer/bin/python
 * when it exists; SEGKIT_PEER_PYTHON=none leaves the second peer out).
 */
export function peerPythons(): PeerPython[] {
  const env = process.env.SEGKIT_PEER_PYTHON;
  const second = env ?? (existsSync(SECOND_PEER_PYTHON) ? SECOND_PEER_PYTHON : "none");
  return [
    { id: "debian" as const, python: PYTHON },
    ...(second !== "none" && second !== "" && second !== PYTHON ? [{ id: "second" as const, python: second }] : []),
  ];
}

/** What every peer reports when it is ready: interpreter and library versions. */
export interface PeerVersions {
  python: string;
  torch: string;
  [name: string]: string;
}

/**
 * A peer script started with `--serve`: it sets itself up, prints `{"ready": true, "versions": {...}, ...}`, then
 * answers each request line with one JSON line (bench/peers/serve.py). Its stderr goes to ours.
 */
export class PeerServer {
  private constructor(
    readonly peer: PeerPython,
    readonly ready: { versions: PeerVersions } & Record<string, unknown>,
    private readonly child: ChildProcessByStdio<Writable, Readable, null>,
    private readonly lines: AsyncIterator<string>,
  ) {}

  /** Starts `script --serve ...args` on `peer.python`; null (the reason and `install` printed) when it cannot run. */
  static async start(peer: PeerPython, script: string, args: string[], install: string): Promise<PeerServer | null> {
    const child = spawn(peer.python, [script, "--serve", ...args], { stdio: ["pipe", "pipe", "inherit"] });
    const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
    const failed = new Promise<string>((resolve) => child.on("error", (e) => resolve(e.message)));
    const first = await Promise.race([lines.next().then((r) => (r.done ? "exited" : r.value)), failed]);
    let ready: unknown = null;
    try {
      ready = JSON.parse(first);
    } catch {}
    if (!ready || typeof ready !== "object" || !("ready" in ready)) {
      console.log(`peer ${script} on ${peer.python} not run: ${first}`);
      if (peer.id === "debian") console.log(`Install what it needs for ${peer.python} with: ${install}`);
      child.kill();
      return null;
    }
    return new PeerServer(peer, ready as unknown as PeerServer["ready"], child, lines);
  }

  /** `torch 1.13.1 (Debian /usr/bin/python3)`. */
  get label(): string {
    return `torch ${this.ready.versions.torch} (${this.peer.id === "debian" ? "Debian " : ""}${this.peer.python})`;
  }

  /** Sends one request and waits for its answer; an answer `{"error": ...}` or an exited peer throws. */
  async call<T>(request: Record<string, unknown>): Promise<T> {
    this.child.stdin.write(`${JSON.stringify(request)}\n`);
    const next = await this.lines.next();
    if (next.done) throw new Error(`peer ${this.label} exited during ${JSON.stringify(request)}`);
    const answer = JSON.parse(next.value) as T & { error?: string };
    if (answer.error) throw new Error(`peer ${this.label}: ${answer.error}`);
    return answer;
  }

  /** Closes its stdin (the peer exits at end of input) and waits for it to end. */
  async close(): Promise<void> {
    if (this.child.exitCode !== null) return;
    const ended = new Promise((resolve) => this.child.on("exit", resolve));
    this.child.stdin.end();
    await ended;
  }
}

/** Starts the peer on every interpreter of `peerPythons()` that can run it. */
export async function startPeers(script: string, args: string[], install: string): Promise<PeerServer[]> {
  const servers: PeerServer[] = [];
  for (const peer of peerPythons()) {
    const server = await PeerServer.start(peer, script, args, install);
    if (server) {
      console.log(`peer: ${server.label}`);
      servers.push(server);
    }
  }
  return servers;
}

/** Samples of one side over the passes: the median of all samples and the range of the per-pass medians. */
export interface Summary {
  median: number;
  /** Lowest and highest per-pass median (with one sample per pass: the lowest and highest sample). */
  low: number;
  high: number;
  passMedians: number[];
  samples: number[][];
}

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  if (s.length === 0) return Number.NaN;
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

export function summarize(samples: number[][]): Summary {
  const passMedians = samples.map(median);
  return {
    median: median(samples.flat()),
    low: Math.min(...passMedians),
    high: Math.max(...passMedians),
    passMedians,
    samples,
  };
}

/** A side of an interleaved measurement: one pass returns its samples (times or rates). */
export interface Side {
  name: string;
  pass: () => Promise<number[]> | number[];
}

/**
 * `warmup` untimed passes of every side, then `passes` passes in which every side runs once, the order rotating
 * by one side each pass (no side always first or last); returns each side's samples summarised.
 */
export async function interleave(sides: Side[], passes: number, warmup = 1): Promise<Record<string, Summary>> {
  for (let w = 0; w < warmup; w++) for (const side of sides) await side.pass();
  const samples: Record<string, number[][]> = Object.fromEntries(sides.map((s) => [s.name, []]));
  for (let p = 0; p < passes; p++) {
    for (let k = 0; k < sides.length; k++) {
      const side = sides[(p + k) % sides.length] as Side;
      (samples[side.name] as number[][]).push(await side.pass());
    }
    console.log(`  pass ${p + 1}/${passes} done`);
  }
  return Object.fromEntries(Object.entries(samples).map(([name, s]) => [name, summarize(s)]));
}

/** `12.3 (11.8-13.0)`: median and the range of the pass medians. */
export function formatSummary(s: Summary | undefined, digits = 1): string {
  if (!s) return "n/a";
  return `${s.median.toFixed(digits)} (${s.low.toFixed(digits)}-${s.high.toFixed(digits)})`;
}
