/**
 * Closed means quiet (core/DESIGN.md invariant 10) for the real adapters: real timers, real
 * sockets on 127.0.0.1, the system runtime. The simulator holds the Hub and CanonClient to it
 * on the virtual runtime; here each component is driven into the states that arm timers
 * (connected clients, subscribed documents, a handshake not yet said, a rate hold, a CRDT
 * work hold, idle documents kept loaded, the routes' keepalive intervals, a commit being
 * written, a client in reconnect backoff or halfway through a connect), closed in the
 * documented order (clients / routes, then the WsServer, then the hub, then its storage), and
 * must then leave nothing that keeps the process alive.
 *
 * How: before starting, each test notes `process.getActiveResourcesInfo()` (what keeps the
 * event loop alive, by type) and `process._getActiveHandles()`; while it runs, the tests'
 * environment records every `setTimeout` / `setInterval` made through this file's global (the
 * product's code, `ws`, y-websocket: jest runs them all in this context) with where it was set
 * (test/support/leak-environment.ts `LeakTools`), and an async hook notes every other timer
 * or immediate made in the process meanwhile (`node:timers`' own functions, Node's internals).
 * After the close, within `GRACE_MS` (a closed component's last timers may still fire:
 * deliveries in flight, a 0 ms hand-off), and still `SETTLE_MS` later:
 * - no more live resources of any type than at the start (sockets, servers, child processes,
 *   requests), timers and immediates aside (below),
 * - no new ref'd handle,
 * - no timer or immediate made during the test, by whatever code except jest's own, still
 *   armed and ref'd, and no interval at all (an unref'd interval does not keep the process
 *   alive, but a closed component has no business running one).
 * Timers are checked one by one, by who made them, never by counting: jest runs a lone test
 * file in its own process (in band), where its reporter arms a ref'd 100 ms timer every second
 * and after each test's result, so often just as the next test takes its baseline
 * (@jest/reporters `Status._debouncedEmit`). A count of the process's timers therefore
 * measured jest: one more at the check than at the baseline failed a test (6 runs of 20, any
 * test of the file, "Timeout: 1" with no timer named), one more at the baseline hid a timer
 * the product left.
 * Each test also checks, before closing, that the timers it meant to arm are armed: a close
 * with nothing to cancel proves nothing.
 */
import * as net from "node:net"
import { mkdtempSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as Y from "yjs"
import * as A from "@automerge/automerge"
import { WebSocket } from "ws"
import { WebsocketProvider } from "y-websocket"
import { generateAutomergeUrl, parseAutomergeUrl } from "@automerge/automerge-repo"
import { CanonClient, Hub, type HubEvent, type HubOptions, type KVStore } from "../core/index.js"
import { MemoryStorage } from "../adapters/memory/index.js"
import { LevelStorage } from "../adapters/level/index.js"
import { systemRuntime } from "../adapters/system/index.js"
import { WsServer, wsClientTransport } from "../adapters/ws/index.js"
import { yjsDocEngine, yjsRoute } from "../adapters/yjs-server/index.js"
import { automergeDocEngine, automergeRoute, encodeRepoMessage } from "../adapters/automerge-server/index.js"
import { Counter, Todo } from "./support/machines.js"
import { until } from "./support/ws.js"
// node:timers' own: the checks' waits are not timers of the test's (the environment records those).
import { setTimeout as pause } from "node:timers/promises"
import type { LeakTools } from "./support/leak-environment.js"
import { createHook } from "node:async_hooks"
import * as nodeTimers from "node:timers"

/** How long a closed component's last timers may take to fire. */
const GRACE_MS = 500
/** And it must stay quiet this long after (nothing re-armed by what fired). */
const SETTLE_MS = 100

// ---- what keeps the process alive ----

type Counts = Record<string, number>

const resourceCounts = (): Counts => {
  const out: Counts = {}
  for (const r of process.getActiveResourcesInfo()) out[r] = (out[r] ?? 0) + 1
  return out
}

const leaks = (globalThis as Record<symbol, unknown>)[Symbol.for("canon.test.leak-tools")] as LeakTools | undefined
if (leaks === undefined) throw new Error("closed-quiet reads the timers the tests' environment records: run it with jest.config.js (test/support/leak-environment.ts)")
const { activeHandles, isRefed, describeHandle } = leaks

/** A timer set while a test runs and still armed, with where it was set. */
interface Armed {
  readonly timer: NodeJS.Timeout | NodeJS.Immediate
  readonly kind: "timeout" | "interval" | "immediate"
  readonly ms: number
  readonly at: number
  readonly stack: string
}

let testStart = 0
beforeEach(() => {
  testStart = Date.now()
})

/**
 * Made by jest's own code, not the test's: its timeout for the running test (jest-circus, through
 * the file's global), its reporter's (in band). The first frame past Node's and the environment's.
 */
const isJests = (stack: string): boolean =>
  /node_modules\/(@jest\/|jest-)/.test(stack.split("\n").slice(1).find((l) => !/\(node:|at node:|leak-environment/.test(l)) ?? "")

/** The timers this test set through the file's global that are still armed. */
const armedNow = (): Armed[] =>
  leaks.armedSince(testStart)
    .map(({ timer, record }) => ({ timer, kind: record.kind, ms: record.ms, at: record.setAt, stack: record.at.stack ?? "" }))
    .filter((a) => !isJests(a.stack))

/**
 * Every other timer and immediate made in this process while a test runs (the environment's
 * record sees only those set through this file's global): one set by `node:timers`' own
 * functions or inside Node would keep the process alive just the same. Only while this file
 * runs (`beforeAll` / `afterAll`): the hook costs every promise a little.
 */
interface Made {
  readonly resource: NodeJS.Timeout | NodeJS.Immediate
  readonly type: string
  readonly at: number
  readonly stack: string
}
const made = new Map<number, Made>()
function noteMade(id: number, type: string, _trigger: number, resource: object): void {
  if (type !== "Timeout" && type !== "Immediate") return
  const limit = Error.stackTraceLimit
  Error.stackTraceLimit = 20
  // From the frame that made it (this function's own left out).
  const where: { stack?: string } = {}
  Error.captureStackTrace(where, noteMade)
  Error.stackTraceLimit = limit
  made.set(id, { resource: resource as NodeJS.Timeout | NodeJS.Immediate, type, at: Date.now(), stack: where.stack ?? "" })
}
const madeHook = createHook({
  init: noteMade,
  destroy(id) {
    made.delete(id)
  },
})
beforeAll(() => madeHook.enable())
afterAll(() => {
  madeHook.disable()
  made.clear()
})
beforeEach(() => made.clear())

const THIS_FILE = "test/closed-quiet.test.ts"
/**
 * Set through another test file's global: work that outlived that file (in a worker, files run
 * one after another), which the environment names on stderr as that file's. Not this test's.
 */
const byAnotherFile = (resource: object): boolean => {
  const file = leaks.immediateFile(resource)
  return file !== undefined && file !== THIS_FILE
}

/** Timers and immediates made since the test began, not through the file's global nor by jest, still armed. */
const madeElsewhere = (): Armed[] => {
  const recorded = new Set<object>(leaks.armedSince(0).map((r) => r.timer))
  const out: Armed[] = []
  for (const m of made.values()) {
    const r = m.resource as unknown as { _destroyed?: boolean; _idleTimeout?: number; _repeat?: unknown; hasRef(): boolean }
    if (r._destroyed === true || recorded.has(m.resource) || isJests(m.stack) || byAnotherFile(m.resource)) continue
    const kind = m.type === "Immediate" ? "immediate" : r._repeat != null ? "interval" : "timeout"
    out.push({ timer: m.resource, kind, ms: r._idleTimeout ?? 0, at: m.at, stack: m.stack })
  }
  return out
}

const ROOT = `${process.cwd()}/`
const sources = new Map<string, string[]>()
/** The repository's frames of where a timer was set, each with its line of source: "core/x.ts:12 this.timer = ...". */
const framesOf = (a: Armed): string[] => {
  const out: string[] = []
  for (const line of a.stack.split("\n").slice(1)) {
    const m = /\(?([^\s()]+):(\d+):\d+\)?$/.exec(line.trim())
    if (m === null || !m[1]!.startsWith(ROOT) || m[1]!.includes("node_modules") || /closed-quiet\.test|leak-environment/.test(m[1]!)) continue
    const file = m[1]!.slice(ROOT.length)
    if (!sources.has(file)) sources.set(file, readFileSync(m[1]!, "utf8").split("\n"))
    out.push(`${file}:${m[2]} ${(sources.get(file)![Number(m[2]) - 1] ?? "").trim().slice(0, 90)}`)
  }
  return out
}

/** Where it was set: the first repository frames (or the first frames at all: a library's). */
const whereSet = (a: Armed): string => {
  const frames = framesOf(a)
  if (frames.length > 0) return frames.slice(0, 3).join(" < ")
  return a.stack.split("\n").slice(1).filter((l) => !/\(node:|at node:|leak-environment/.test(l)).slice(0, 3).map((l) => l.trim()).join(" < ")
}

const describeArmed = (a: Armed): string =>
  `${a.kind} of ${a.ms} ms${a.timer.hasRef() ? "" : " (unref'd)"}, set ${Date.now() - a.at} ms ago: ${whereSet(a)}`

/** The live timers one of whose repository frames matches `where` (a file, or the statement that set it). */
const liveFrom = (where: RegExp): Armed[] => armedNow().filter((a) => framesOf(a).some((f) => where.test(f)))

interface Baseline {
  readonly counts: Counts
  readonly handles: Set<object>
}

const baseline = (): Baseline => ({ counts: resourceCounts(), handles: new Set(activeHandles()) })

interface Left {
  /** Live resources beyond the baseline, by type (timers and immediates aside: `timers`). */
  readonly resources: Counts
  /** New ref'd handles (sockets, servers, child processes). */
  readonly handles: string[]
  /** Timers and immediates made during this test (not by jest) still armed and ref'd, and intervals of any kind. */
  readonly timers: string[]
}

const QUIET: Left = { resources: {}, handles: [], timers: [] }

/** Counted process-wide, these would count jest's own (see the top): `timers` names the test's one by one. */
const COUNTED_BY_WHO = new Set(["Timeout", "Immediate"])

const left = (base: Baseline): Left => {
  const now = resourceCounts()
  const resources: Counts = {}
  for (const [type, n] of Object.entries(now)) if (!COUNTED_BY_WHO.has(type) && n > (base.counts[type] ?? 0)) resources[type] = n - (base.counts[type] ?? 0)
  const handles = activeHandles().filter((h) => !base.handles.has(h) && isRefed(h)).map(describeHandle)
  const timers = [...armedNow(), ...madeElsewhere()].filter((a) => a.timer.hasRef() || a.kind === "interval").map(describeArmed)
  return { resources, handles, timers }
}

const isQuiet = (l: Left): boolean => Object.keys(l.resources).length === 0 && l.handles.length === 0 && l.timers.length === 0

/** What is still there once the grace is over (or at once, if quiet), and how long quiet took. */
const afterClose = async (base: Baseline): Promise<{ left: Left; quietAfterMs: number | undefined }> => {
  const t0 = Date.now()
  let l = left(base)
  while (!isQuiet(l) && Date.now() - t0 < GRACE_MS) {
    await pause(10)
    l = left(base)
  }
  const quietAfterMs = isQuiet(l) ? Date.now() - t0 : undefined
  await pause(SETTLE_MS)
  return { left: left(base), quietAfterMs }
}

/** One line per test, the figures it measured. */
const figures = (name: string, f: Record<string, unknown>): void => {
  process.stdout.write(`[closed-quiet] ${name}: ${JSON.stringify(f)}\n`)
}

/** Raw sockets this file opened (terminated when a test ends, whatever happened). */
const rawSockets = new Set<WebSocket>()
const openRaw = (url: string): Promise<WebSocket> =>
  new Promise((resolve, reject) => {
    const ws = new WebSocket(url)
    rawSockets.add(ws)
    ws.once("open", () => resolve(ws))
    ws.once("error", reject)
  })

let cleanup: Array<() => unknown> = []
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await Promise.resolve().then(f).catch(() => {})
  for (const ws of rawSockets) ws.terminate()
  rawSockets.clear()
})

// ---- the check itself ----

test("the check names a timer made outside the environment's record (node:timers' own), and leaves out none but jest's", async () => {
  const base = baseline()
  const viaNode = nodeTimers.setTimeout(() => {}, 5_000)
  const viaGlobal = setTimeout(() => {}, 5_000)
  const immediate = nodeTimers.setImmediate(() => {})
  // Recorded by the environment as this file's (another file's would be left out).
  const immediateViaGlobal = setImmediate(() => {})
  try {
    const l = left(base)
    expect(l.resources).toEqual({})
    expect(l.timers).toHaveLength(4)
    expect(l.timers).toEqual(expect.arrayContaining([
      expect.stringMatching(/^timeout of 5000 ms, set \d+ ms ago: .*closed-quiet\.test\.ts/),
      expect.stringMatching(/^immediate of 0 ms, set \d+ ms ago: .*closed-quiet\.test\.ts/),
    ]))
    expect(leaks.immediateFile(immediateViaGlobal)).toBe(THIS_FILE)
  } finally {
    nodeTimers.clearTimeout(viaNode)
    clearTimeout(viaGlobal)
    nodeTimers.clearImmediate(immediate)
    clearImmediate(immediateViaGlobal)
  }
  expect(left(base)).toEqual(QUIET)
})

// ---- Canon's own protocol: Hub + WsServer + CanonClient ----

const canonHub = async (storage: KVStore, options: Partial<HubOptions> = {}) => {
  const events: HubEvent[] = []
  const hub = new Hub({ machines: [Todo, Counter], storage, runtime: systemRuntime, onEvent: (e) => events.push(e), ...options })
  const server = await WsServer.start(hub, { listen: [{ host: "127.0.0.1", port: 0 }], pingIntervalMs: 200, pongTimeoutMs: 1_000 })
  return { hub, server, events, url: server.urls()[0]! }
}

const canonClient = (url: string, options: { readonly autoConnect?: boolean } = {}) =>
  CanonClient.open({ transport: wsClientTransport(url), runtime: systemRuntime, machines: [Todo, Counter], backoff: { baseMs: 20, maxMs: 100 }, ...options })

/**
 * Drives a Canon hub and its clients into the timer-arming states cheaply reached over real
 * sockets; returns them, live. `online`: a client following "d1" with a commit just
 * confirmed (its stable timer, its link's idle timer; the document's quiet checkpoint);
 * `held`: a client whose outbox of 200 commands is held by the rate (10/s); a raw socket that
 * never says hello (the handshake deadline); "d3" left by its only reader (kept idle).
 */
const busyCanonWorld = async (storage: KVStore) => {
  const w = await canonHub(storage, { limits: { commandsPerSecond: 10, commandBurst: 20 } })
  const online = await canonClient(w.url)
  const d1 = await online.open(Todo, "d1")
  expect(await until(() => d1.synced, 5_000)).toBe(true)

  // Kept idle: a reader that leaves.
  const reader = await canonClient(w.url)
  const d3 = await reader.open(Todo, "d3")
  await d3.submit("add", { id: "x", title: "kept" })
  await reader.close()

  // Held by the rate: an outbox back from offline.
  const held = await canonClient(w.url, { autoConnect: false })
  const d2 = await held.open(Counter, "d2")
  for (let i = 0; i < 200; i++) d2.submit("incr", { by: 1 }).catch(() => {})
  held.connect()
  expect(await until(() => w.events.some((e) => e.type === "limit" && e.code === "rate-held"), 5_000)).toBe(true)

  // Connected, no hello: the hub's handshake deadline is armed.
  await openRaw(w.url)

  // A commit just confirmed: the quiet checkpoint is armed.
  await d1.submit("add", { id: "a", title: "first" })
  expect(await until(() => liveFrom(/^core\/authority\/idle-documents\.ts/).length > 0, 5_000)).toBe(true)
  const armedBeforeClose = {
    clientStable: liveFrom(/#stableTimer = /).length,
    linkIdle: liveFrom(/#idleTimer = setDeadline/).length,
    handshake: liveFrom(/handshakeTimer = /).length,
    rateHold: liveFrom(/session\.rateHold = /).length,
    quietCheckpoint: liveFrom(/this\.quietTimer = /).length,
    idleKept: liveFrom(/^core\/authority\/idle-documents\.ts/).length,
    serverSweep: liveFrom(/this\.sweepTimer = setInterval/).length,
  }
  return { ...w, clients: [online, held], armedBeforeClose }
}

test("Hub + WsServer + CanonClients on MemoryStorage: quiet once the hub side and then its (reconnecting) clients are closed", async () => {
  const base = baseline()
  const storage = new MemoryStorage()
  const w = await busyCanonWorld(storage)
  cleanup.push(() => w.hub.close(), () => w.server.close(), ...w.clients.map((c) => () => c.close()))
  const armedBeforeClose = w.armedBeforeClose
  expect(armedBeforeClose).toEqual({ clientStable: 2, linkIdle: 2, handshake: 1, rateHold: 1, quietCheckpoint: expect.any(Number), idleKept: 1, serverSweep: 1 })
  expect(armedBeforeClose.quietCheckpoint).toBeGreaterThan(0)
  const liveBeforeClose = armedNow().length

  // The hub goes first, with its connections live (a SIGTERM under load); its clients then
  // retry with backoff until they are closed.
  await w.server.close()
  await w.hub.close()
  await storage.close()
  for (const c of w.clients) await c.close()

  const { left: l, quietAfterMs } = await afterClose(base)
  figures("memory", { armedBeforeClose, liveBeforeClose, quietAfterMs })
  expect(l).toEqual(QUIET)
}, 15_000)

test("Hub + WsServer + CanonClients on LevelDB: quiet once the clients, then the server, the hub and the store are closed", async () => {
  const dir = mkdtempSync(join(tmpdir(), "canon-quiet-"))
  cleanup.push(() => rmSync(dir, { recursive: true, force: true }))
  const base = baseline()
  const storage = await LevelStorage.open(dir)
  const w = await busyCanonWorld(storage)
  cleanup.push(() => storage.close(), () => w.hub.close(), () => w.server.close(), ...w.clients.map((c) => () => c.close()))
  const armedBeforeClose = w.armedBeforeClose
  expect(armedBeforeClose).toEqual({ clientStable: 2, linkIdle: 2, handshake: 1, rateHold: 1, quietCheckpoint: expect.any(Number), idleKept: 1, serverSweep: 1 })
  expect(armedBeforeClose.quietCheckpoint).toBeGreaterThan(0)

  // The clients leave first this time (the hub sees each go), then the hub side.
  for (const c of w.clients) await c.close()
  await w.server.close()
  await w.hub.close()
  await storage.close()

  const { left: l, quietAfterMs } = await afterClose(base)
  figures("level", { armedBeforeClose, quietAfterMs })
  expect(l).toEqual(QUIET)
}, 15_000)

test("a hub closed while a commit is being written: quiet, and nothing written to the store after it closed", async () => {
  const base = baseline()
  // Writes take 150 ms (the memory store's modelled disk, on real timers): time to close the hub mid-write.
  let slow = false
  let writing: (() => void) | undefined
  const midWrite = new Promise<void>((r) => (writing = r))
  const inner = new MemoryStorage({ latency: { runtime: systemRuntime, ms: () => (slow ? 150 : 0) }, onBatch: () => slow && writing?.() })
  // What the hub asks of its store once the store is closed.
  let storeClosed = false
  const afterStoreClosed: string[] = []
  const storage: KVStore = {
    get: (k) => (storeClosed && afterStoreClosed.push("get"), inner.get(k)),
    range: (o) => (storeClosed && afterStoreClosed.push("range"), inner.range(o)),
    batch: (ops, o) => (storeClosed && afterStoreClosed.push(`batch of ${ops.length}`), inner.batch(ops, o)),
    close: () => ((storeClosed = true), inner.close()),
  }
  const w = await canonHub(storage)
  const client = await canonClient(w.url)
  cleanup.push(() => w.hub.close(), () => w.server.close(), () => client.close())
  const doc = await client.open(Todo, "d")
  expect(await until(() => doc.synced, 5_000)).toBe(true)
  await doc.submit("add", { id: "a", title: "written at once" })

  slow = true
  doc.submit("add", { id: "b", title: "being written when the hub closes" }).catch(() => {})
  await midWrite
  // The documented order: the server, then the hub (it waits for what documents still write), then the store.
  await w.server.close()
  await w.hub.close()
  await storage.close()
  await client.close()

  const { left: l, quietAfterMs } = await afterClose(base)
  // A timer left armed past the grace would act later: give a 1 s one the time to.
  await pause(l.timers.length > 0 ? 1_100 : 0)
  figures("commit in flight", { quietAfterMs, afterStoreClosed })
  expect({ left: l, afterStoreClosed }).toEqual({ left: QUIET, afterStoreClosed: [] })
}, 15_000)

test("a CanonClient left reconnecting (its hub stopped first), and one halfway through a connect: quiet once closed", async () => {
  const base = baseline()
  const w = await canonHub(new MemoryStorage())
  const retryWaits: number[] = []
  // Backoff long enough that a retry pending at close would outlive the grace.
  const client = await CanonClient.open({ transport: wsClientTransport(w.url), runtime: systemRuntime, machines: [Todo], backoff: { baseMs: 8_000, maxMs: 8_000 } })
  cleanup.push(() => client.close())
  const doc = await client.open(Todo, "d")
  expect(await until(() => doc.synced, 5_000)).toBe(true)

  // A listener that takes the TCP connection and never answers the upgrade.
  const stalled = new Set<net.Socket>()
  const silent = net.createServer((s) => { stalled.add(s); s.on("error", () => {}) })
  await new Promise<void>((r) => silent.listen(0, "127.0.0.1", () => r()))
  cleanup.push(() => new Promise<void>((r) => { for (const s of stalled) s.destroy(); silent.close(() => r()) }))
  const connecting = await CanonClient.open({ transport: wsClientTransport(`ws://127.0.0.1:${(silent.address() as net.AddressInfo).port}/`), runtime: systemRuntime, machines: [Todo] })
  cleanup.push(() => connecting.close())
  expect(await until(() => stalled.size > 0, 5_000)).toBe(true)

  await w.server.close()
  await w.hub.close()
  // Offline, a retry pending for more than 2 s to come (each retry that fails arms another).
  const retries = () => liveFrom(/#retryTimer = /)
  expect(await until(() => retries().some((a) => a.ms - (Date.now() - a.at) > 2_000), 8_000, 10)).toBe(true)
  for (const a of retries()) retryWaits.push(a.ms - (Date.now() - a.at))
  expect(client.status).toBe("offline")
  // The connect's deadline (15 s) is armed on the other.
  expect(connecting.status).toBe("connecting")
  const connectDeadline = liveFrom(/#connectTimer = setDeadline/).map((a) => a.ms)
  expect(connectDeadline).toContain(15_000)

  await client.close()
  await connecting.close()
  // Test scaffolding, not the client: the silent listener and what it took.
  for (const s of stalled) s.destroy()
  await new Promise<void>((r) => silent.close(() => r()))

  const { left: l, quietAfterMs } = await afterClose(base)
  figures("reconnecting client", { retryPendingMs: retryWaits, connectDeadline, quietAfterMs })
  expect(l).toEqual(QUIET)
}, 20_000)

// ---- the CRDT routes ----

test("yjsRoute with stock y-websocket providers: quiet once the route, server, hub and providers are closed", async () => {
  const base = baseline()
  const storage = new MemoryStorage()
  const hub = new Hub({
    machines: [], storage, runtime: systemRuntime, sync: false, crdt: { engines: [yjsDocEngine()] },
    authenticate: (hello) => ({ id: hello.credentials ?? "anonymous" }),
  })
  const route = yjsRoute(hub.crdtDocs, { keepaliveMs: 100 })
  const server = await WsServer.start(hub, { listen: [{ host: "127.0.0.1", port: 0 }], routes: [route] })
  const url = `ws://127.0.0.1:${server.addresses()[0]!.port}/yjs`
  const providers: WebsocketProvider[] = []
  const provider = (room: string, token: string): WebsocketProvider => {
    const p = new WebsocketProvider(url, room, new Y.Doc(), { WebSocketPolyfill: WebSocket as never, params: { token }, maxBackoffTime: 100, disableBc: true })
    providers.push(p)
    return p
  }
  const destroy = (p: WebsocketProvider) => {
    p.destroy()
    p.awareness.destroy()
    p.doc.destroy()
  }
  cleanup.push(() => hub.close(), () => server.close(), () => route.close(), () => providers.forEach(destroy))

  // Two writers live in one room, with awareness.
  const alice = provider("live", "alice")
  const bob = provider("live", "bob")
  expect(await until(() => alice.synced && bob.synced, 5_000)).toBe(true)
  alice.awareness.setLocalStateField("user", { name: "alice" })
  alice.doc.getText("t").insert(0, "hello")
  expect(await until(() => bob.doc.getText("t").toString() === "hello", 5_000)).toBe(true)

  // A room left by its only provider: the host keeps its document loaded a while.
  const carol = provider("idle", "carol")
  expect(await until(() => carol.synced, 5_000)).toBe(true)
  carol.doc.getText("t").insert(0, "kept")
  destroy(carol)
  expect(await until(() => liveFrom(/^core\/authority\/idle-documents\.ts/).length > 0, 5_000)).toBe(true)

  const armedBeforeClose = {
    keepalive: liveFrom(/^adapters\/yjs-server\/endpoint\.ts/).filter((a) => a.kind === "interval").length,
    idleKept: liveFrom(/^core\/authority\/idle-documents\.ts/).length,
    serverSweep: liveFrom(/this\.sweepTimer = setInterval/).length,
    routedSockets: route.connections,
  }
  expect(armedBeforeClose).toEqual({ keepalive: 1, idleKept: 1, serverSweep: 1, routedSockets: 2 })

  route.close()
  await server.close()
  await hub.close()
  await storage.close()
  for (const p of [alice, bob]) destroy(p)

  const { left: l, quietAfterMs } = await afterClose(base)
  figures("yjs route", { armedBeforeClose, quietAfterMs })
  expect(l).toEqual(QUIET)
}, 15_000)

test("automergeRoute with raw automerge-repo peers, one held by the CRDT work budget: quiet once the route, server and hub are closed", async () => {
  const base = baseline()
  const storage = new MemoryStorage()
  const hub = new Hub({
    machines: [], storage, runtime: systemRuntime, sync: false,
    // A tiny budget: after one change a principal is in debt for hours.
    crdt: { engines: [automergeDocEngine()], work: { burstMicros: 1, microsPerSecond: 1 } },
    authenticate: (hello) => ({ id: hello.credentials ?? "anonymous" }),
  })
  const route = automergeRoute(hub.crdtDocs, { pingMs: 100 })
  const server = await WsServer.start(hub, { listen: [{ host: "127.0.0.1", port: 0 }], routes: [route] })
  const url = `ws://127.0.0.1:${server.addresses()[0]!.port}/automerge`
  cleanup.push(() => hub.close(), () => server.close(), () => route.close())
  const documentId = parseAutomergeUrl(generateAutomergeUrl()).documentId
  const peers = { mallory: await openRaw(`${url}?token=mallory`), alice: await openRaw(`${url}?token=alice`) }
  const join = (who: keyof typeof peers) => peers[who].send(encodeRepoMessage({ type: "join", senderId: who, peerMetadata: {}, supportedProtocolVersions: ["1"] } as never))
  const sync = (who: keyof typeof peers, changes: Uint8Array[], heads: string[]) =>
    peers[who].send(encodeRepoMessage({ type: "sync", senderId: who, targetId: "canon-hub", documentId, data: A.encodeSyncMessage({ heads, need: [], have: [], changes }) } as never))
  join("mallory")
  join("alice")
  await until(() => route.connections === 2, 2_000)
  let m = A.change(A.init<Record<string, number>>({ actor: "0a".repeat(16) }), (d) => { d.m1 = 1 })
  sync("mallory", [A.getLastLocalChange(m)!], A.getHeads(m))
  const a = A.change(A.init<Record<string, number>>({ actor: "0b".repeat(16) }), (d) => { d.a = 1 })
  sync("alice", [A.getLastLocalChange(a)!], A.getHeads(a))
  // Mallory's second change waits off the debt of her first.
  m = A.change(m, (d) => { d.m2 = 1 })
  sync("mallory", [A.getLastLocalChange(m)!], A.getHeads(m))
  expect(await until(() => liveFrom(/^core\/crdt-docs\/work-budget\.ts/).length > 0, 5_000)).toBe(true)

  const armedBeforeClose = {
    workHoldMs: liveFrom(/^core\/crdt-docs\/work-budget\.ts/).map((x) => x.ms),
    ping: liveFrom(/^adapters\/automerge-server\/endpoint\.ts/).filter((x) => x.kind === "interval").length,
    serverSweep: liveFrom(/this\.sweepTimer = setInterval/).length,
  }
  expect(armedBeforeClose.ping).toBe(1)
  expect(armedBeforeClose.serverSweep).toBe(1)
  expect(Math.min(...armedBeforeClose.workHoldMs)).toBeGreaterThan(GRACE_MS)

  route.close()
  await server.close()
  await hub.close()
  await storage.close()

  const { left: l, quietAfterMs } = await afterClose(base)
  figures("automerge route", { armedBeforeClose, quietAfterMs })
  expect(l).toEqual(QUIET)
}, 15_000)
