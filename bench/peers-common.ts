/**
 * What the `peers` workloads share: the three systems, back-to-back sampling with per-run
 * ratios, figure ids the README report groups (bench/report.ts), a star relay for the peers
 * over a VirtualRuntime (the same delayed, ordered links MemoryNetwork gives Canon), wire-byte
 * counting on WebSocket loopback, and memory figures taken in a fresh child process.
 */
import { execFile } from "node:child_process"
import * as http from "node:http"
import type { AddressInfo, Socket } from "node:net"
import { fileURLToPath } from "node:url"
import { WebSocket, WebSocketServer } from "ws"
import * as Y from "yjs"
import type { Runtime } from "../core/index.js"
import { collectGarbage, figure, now, type Figure, type Goal, type Plan } from "./harness.js"

export const SYSTEMS = ["canon", "yjs", "automerge"] as const
export type Sys = (typeof SYSTEMS)[number]
export const SYS_LABEL: Record<Sys, string> = { canon: "Canon", yjs: "Yjs", automerge: "Automerge" }

/** Wall-clock and process CPU (user + system, all threads) milliseconds since it started. */
export interface Elapsed {
  readonly ms: number
  readonly cpu: number
}

/**
 * Starts a stopwatch. CPU time is reported next to wall time: on a shared machine wall time
 * also counts the time other processes held the cores, CPU time only the work done.
 */
export const stopwatch = (): (() => Elapsed) => {
  const t0 = now()
  const c0 = process.cpuUsage()
  return () => {
    const c = process.cpuUsage(c0)
    return { ms: now() - t0, cpu: (c.user + c.system) / 1000 }
  }
}

/** Lets queued microtasks and I/O callbacks run. */
export const turn = (): Promise<void> => new Promise((r) => setImmediate(r))

/** Hub limits for replays that run in zero virtual time (the token buckets never refill). */
export const UNLIMITED = { messagesPerSecond: 1e12, messageBurst: 1e12, commandsPerSecond: 1e12, commandBurst: 1e12 } as const

/**
 * Figure ids: `<workload>.<metric>.<sys>` for a system's value and
 * `<workload>.<metric>.canon/<peer>` for a per-run ratio. bench/report.ts turns them into one
 * row per metric with a column per system and per ratio.
 */
export const figId = (workload: string, metric: string, who: string): string => `${workload}.${metric}.${who}`

/**
 * Adds a figure per system and the Canon / peer ratios (per run when the samples line up,
 * else the ratio of medians). `ratios: false` for values a ratio says nothing about.
 */
export const triple = (
  add: (f: Figure) => void,
  workload: string,
  metric: string,
  label: string,
  unit: string,
  samples: Partial<Record<Sys, ReadonlyArray<number>>>,
  options: { readonly note?: string; readonly ratios?: boolean; readonly yjsGoal?: Goal } = {},
): void => {
  const more = options.note !== undefined ? { note: options.note } : {}
  for (const sys of SYSTEMS) {
    const s = samples[sys]
    if (s === undefined || s.length === 0) continue
    add(figure(figId(workload, metric, sys), `${label}: ${SYS_LABEL[sys]}`, unit, s, more))
  }
  const canon = samples.canon
  if (canon === undefined || canon.length === 0 || options.ratios === false) return
  for (const peer of ["yjs", "automerge"] as const) {
    const p = samples[peer]
    if (p === undefined || p.length === 0) continue
    // A ratio of a negative or zero figure (a memory delta lost in noise) says nothing.
    if ([...canon, ...p].some((v) => v <= 0)) continue
    const ratios = p.length === canon.length ? canon.map((c, i) => c / p[i]!) : [median(canon) / median(p)]
    const goal = peer === "yjs" && options.yjsGoal !== undefined ? { goal: options.yjsGoal } : {}
    add(figure(figId(workload, metric, `canon/${peer}`), `${label}: Canon / ${SYS_LABEL[peer]}`, "x", ratios, goal))
  }
}

export const median = (xs: ReadonlyArray<number>): number => {
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2
}

/**
 * Warm-up, then `plan.runs` rounds in which each system runs once, back to back (the order
 * rotates each round so no system always runs first or last). Each call returns the figures
 * of one run, by name; the result has one sample per round per system per name.
 */
export const backToBack = async <K extends string>(
  plan: Plan,
  systems: ReadonlyArray<Sys>,
  run: (sys: Sys, measured: boolean) => Promise<Record<K, number>>,
): Promise<Record<Sys, Record<K, number[]>>> => {
  collectGarbage()
  const started = now()
  for (let i = 0; i < plan.warmup || now() - started < plan.warmupMs; i++) {
    for (const sys of systems) await run(sys, false)
  }
  const out = {} as Record<Sys, Record<K, number[]>>
  for (let r = 0; r < plan.runs; r++) {
    for (let k = 0; k < systems.length; k++) {
      const sys = systems[(k + r) % systems.length]!
      collectGarbage()
      const values = await run(sys, true)
      const into = (out[sys] ??= {} as Record<K, number[]>)
      for (const [name, v] of Object.entries(values) as [K, number][]) (into[name] ??= []).push(v)
    }
  }
  return out
}

/** Picks `name` from every system's samples. */
export const pick = <K extends string>(all: Record<Sys, Record<K, number[]>>, name: K): Partial<Record<Sys, number[]>> => {
  const out: Partial<Record<Sys, number[]>> = {}
  for (const sys of SYSTEMS) if (all[sys]?.[name] !== undefined) out[sys] = all[sys][name]
  return out
}

// ---- links for the peers (Yjs, Automerge) over a VirtualRuntime ----

/**
 * A star of ordered, delayed links over a runtime, as MemoryNetwork gives Canon: each
 * direction is FIFO, a message arrives `latency()` ms after it is sent but never before one
 * sent earlier on the same direction. Messages are bytes (the peers' own encoded updates).
 */
export class StarLinks {
  private readonly lastAt = new Map<string, number>()
  delivered = 0
  lastDelivery = 0

  constructor(private readonly runtime: Runtime, private readonly latency: () => number = () => 0) {}

  send(from: string, to: string, bytes: Uint8Array, deliver: (bytes: Uint8Array) => void): void {
    const key = `${from}>${to}`
    const t = this.runtime.now()
    const at = Math.max(this.lastAt.get(key) ?? 0, t + this.latency())
    this.lastAt.set(key, at)
    this.runtime.setTimer(at - t, () => {
      this.delivered++
      this.lastDelivery = this.runtime.now()
      deliver(bytes)
    })
  }
}

// ---- WebSocket loopback: bytes on the wire ----

/** TCP payload bytes through the server's sockets (WebSocket frames and headers included). */
export interface WireCount {
  /** Client to server. */
  up: number
  /** Server to clients. */
  down: number
}

/**
 * An HTTP server on 127.0.0.1 (a free port) that counts what passes through its sockets.
 * `mark()` remembers the counts (after the handshakes); `since()` is what passed after it.
 */
export class CountingServer {
  readonly server = http.createServer((_req, res) => res.writeHead(426).end())
  private readonly sockets = new Set<Socket>()
  private readonly closedUp: number[] = []
  private readonly closedDown: number[] = []
  private base: WireCount = { up: 0, down: 0 }

  private constructor() {
    this.server.on("connection", (s: Socket) => {
      this.sockets.add(s)
      s.on("close", () => {
        this.closedUp.push(s.bytesRead)
        this.closedDown.push(s.bytesWritten)
        this.sockets.delete(s)
      })
    })
  }

  static async start(): Promise<CountingServer> {
    const c = new CountingServer()
    await new Promise<void>((resolve, reject) => {
      c.server.once("error", reject)
      c.server.listen(0, "127.0.0.1", () => resolve())
    })
    return c
  }

  get url(): string {
    const a = this.server.address() as AddressInfo
    return `ws://127.0.0.1:${a.port}/`
  }

  total(): WireCount {
    let up = this.closedUp.reduce((a, b) => a + b, 0)
    let down = this.closedDown.reduce((a, b) => a + b, 0)
    for (const s of this.sockets) {
      up += s.bytesRead
      down += s.bytesWritten
    }
    return { up, down }
  }

  mark(): void {
    this.base = this.total()
  }

  since(): WireCount {
    const t = this.total()
    return { up: t.up - this.base.up, down: t.down - this.base.down }
  }

  /** Waits until no byte moved for `quietMs` (trailing acknowledgements included). */
  async quiet(quietMs = 50, maxMs = 10_000): Promise<void> {
    const end = now() + maxMs
    let last = this.total()
    let since = now()
    while (now() < end) {
      await new Promise((r) => setTimeout(r, 5))
      const t = this.total()
      if (t.up !== last.up || t.down !== last.down) {
        last = t
        since = now()
      } else if (now() - since >= quietMs) return
    }
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy()
    await new Promise<void>((r) => this.server.close(() => r()))
  }
}

/**
 * The relay a Yjs or Automerge deployment puts in the middle (y-websocket style): every
 * binary message from one client goes to every other client; `onMessage` lets the server
 * keep its own copy of the document.
 */
export const startRelay = (server: http.Server, onMessage?: (data: Uint8Array) => void): WebSocketServer => {
  const wss = new WebSocketServer({ server, perMessageDeflate: false })
  wss.on("connection", (ws) => {
    ws.on("message", (data, isBinary) => {
      const bytes = data instanceof Buffer ? data : Buffer.from(data as ArrayBuffer)
      onMessage?.(bytes)
      for (const other of wss.clients) if (other !== ws && other.readyState === WebSocket.OPEN) other.send(bytes, { binary: isBinary })
    })
  })
  return wss
}

/** Opens a `ws` client and waits for it to be open. */
export const openSocket = (url: string): Promise<WebSocket> =>
  new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { perMessageDeflate: false })
    ws.binaryType = "nodebuffer"
    ws.once("open", () => resolve(ws))
    ws.once("error", reject)
  })

/**
 * Runs a VirtualRuntime until `cond()` holds. With real I/O under it (LevelDB) the event
 * queue can be empty while a write is in flight: then wait for the I/O and run again.
 */
export const runUntil = async (runtime: { run(o: { until: () => boolean }): Promise<number> }, cond: () => boolean, what: string, maxMs = 600_000): Promise<void> => {
  const end = now() + maxMs
  while (!cond()) {
    await runtime.run({ until: cond })
    if (cond()) return
    if (now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 1))
  }
}

/** Resolves once `cond()` holds (checked every few ms); rejects after `maxMs`. */
export const waitFor = async (cond: () => boolean, what: string, maxMs = 120_000): Promise<void> => {
  const end = now() + maxMs
  while (!cond()) {
    if (now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 2))
  }
}

// ---- memory, in a fresh process ----

export interface MemoryDelta {
  /** V8 heap used, after a full GC, minus the same before the workload. */
  readonly heap: number
  /** Resident set size, same difference (includes WebAssembly memory). */
  readonly rss: number
  /** `external` (C++ objects, ArrayBuffers, Buffers, WebAssembly memory), same difference. */
  readonly external: number
}

const childEntry = fileURLToPath(new URL("./peers-child.ts", import.meta.url))

/**
 * Runs one workload for one system in a fresh `node --expose-gc` process (bench/peers-child.ts)
 * and returns the memory it holds at the end, after GC, over what it held before (modules
 * loaded). A fresh process per figure: WebAssembly memory never shrinks, and neither does a
 * warmed-up heap, so in-process deltas after the first run mean little. V8 runs with
 * --no-flush-bytecode: otherwise a GC may drop the bytecode of functions run before the
 * baseline and make a delta negative.
 */
export const memoryInChild = (spec: Record<string, unknown>): Promise<MemoryDelta> =>
  new Promise((resolve, reject) => {
    execFile(process.execPath, ["--expose-gc", "--no-flush-bytecode", "--import", "tsx", childEntry, JSON.stringify(spec)], { maxBuffer: 1 << 20, timeout: 600_000 }, (err, stdout, stderr) => {
      const line = stdout.split("\n").find((l) => l.startsWith("PEERS-MEMORY "))
      if (err !== null || line === undefined) {
        reject(new Error(`memory child failed for ${JSON.stringify(spec)}: ${err?.message ?? "no result"}\n${stderr}`))
        return
      }
      resolve(JSON.parse(line.slice("PEERS-MEMORY ".length)) as MemoryDelta)
    })
  })

/** The median of `runs` child processes, field by field. */
export const medianMemoryInChildren = async (runs: number, spec: Record<string, unknown>): Promise<MemoryDelta> => {
  const all: MemoryDelta[] = []
  for (let i = 0; i < runs; i++) all.push(await memoryInChild(spec))
  return { heap: median(all.map((m) => m.heap)), rss: median(all.map((m) => m.rss)), external: median(all.map((m) => m.external)) }
}

/** Memory now, after a full GC. */
export const memoryNow = (): { heap: number; rss: number; external: number } => {
  collectGarbage()
  collectGarbage()
  const m = process.memoryUsage()
  // `external` already counts `arrayBuffers` (Buffers, WebAssembly memory).
  return { heap: m.heapUsed, rss: m.rss, external: m.external }
}

/** Origin of updates that came from elsewhere (so they are not relayed back). */
export const YJS_REMOTE = "remote"

/** Replica -> server -> every other replica, as y-websocket relays (the server keeps a copy). */
export const relayYjs = (links: StarLinks, server: Y.Doc, docs: ReadonlyArray<Y.Doc>): void => {
  for (const [i, doc] of docs.entries()) {
    doc.on("update", (u: Uint8Array, origin: unknown) => {
      if (origin === YJS_REMOTE) return
      links.send(`r${i}`, "server", u, (bytes) => {
        Y.applyUpdate(server, bytes, YJS_REMOTE)
        for (const [j, other] of docs.entries()) if (j !== i) links.send("server", `r${j}`, bytes, (b) => Y.applyUpdate(other, b, YJS_REMOTE))
      })
    })
  }
}
