/**
 * Stock y-websocket clients (WebsocketProvider from npm `y-websocket`) against a hub with the
 * y-websocket endpoint, run as a child process on LevelDB (test/support/crdt-serve.ts):
 * sync, awareness, offline edits, concurrent edits, a hub restart, auth, hostile updates.
 */
import * as Y from "yjs"
import { WebSocket } from "ws"
import { WebsocketProvider } from "y-websocket"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { startCrdtServer, type CrdtChild } from "./support/crdt-child.js"
import { sleep, until } from "./support/ws.js"
import { crdtRoutesHub } from "./support/crdt-routes.js"
import { LevelStorage } from "../adapters/level/index.js"
import { CrdtDocStore } from "../core/crdt-docs/index.js"
import { yjsDocEngine } from "../adapters/yjs-server/index.js"
import { encodeStep1, encodeStep2, encodeUpdate, decodeYMessage, encodeAwareness, encodeAwarenessUpdate, encodeQueryAwareness, decodeAwarenessUpdate } from "../adapters/yjs-server/protocol.js"
import { yjsRoute, MAX_AWARENESS_BYTES_PER_ROOM, MAX_AWARENESS_STATES_PER_SOCKET } from "../adapters/yjs-server/index.js"
import { Hub } from "../core/index.js"
import { MemoryStorage } from "../adapters/memory/index.js"
import { WsServer } from "../adapters/ws/index.js"
import { systemRuntime } from "../adapters/system/index.js"

const providers: WebsocketProvider[] = []
const open = (url: string, room: string, doc = new Y.Doc(), params: Record<string, string> = { token: "writer-t" }): WebsocketProvider => {
  const p = new WebsocketProvider(url, room, doc, {
    WebSocketPolyfill: WebSocket as never, params, maxBackoffTime: 200,
    // Providers of one room in one process would otherwise sync over BroadcastChannel, not through the hub.
    disableBc: true,
  })
  providers.push(p)
  return p
}
const synced = (p: WebsocketProvider) => until(() => p.synced, 10_000)

let dir: string
let hub: CrdtChild
let url: string

// One hub for the file (starting a child is slow on a shared machine); each test has its rooms.
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "canon-yjs-"))
  hub = await startCrdtServer(dir, 0, true)
  url = `ws://127.0.0.1:${hub.port}/yjs`
}, 60_000)

afterEach(() => {
  // A Y.Doc's awareness keeps an interval running until the doc itself is destroyed.
  for (const p of providers.splice(0)) {
    p.destroy()
    p.doc.destroy()
  }
})

afterAll(async () => {
  await hub.stop()
  rmSync(dir, { recursive: true, force: true })
})

/** A raw socket speaking the protocol by hand; collects what the hub sends and how it closes. */
const rawClient = async (room: string, token: string | null = "writer-raw") => {
  const ws = new WebSocket(`${url}/${room}${token !== null ? `?token=${token}` : ""}`)
  const got: Uint8Array[] = []
  let closed: number | undefined
  ws.on("message", (d) => got.push(new Uint8Array(d as Buffer)))
  ws.on("close", (code) => (closed = code))
  await new Promise((r, j) => { ws.once("open", r); ws.once("error", j) })
  return { ws, got, closed: () => closed }
}

test("two stock providers sync text and awareness through the hub", async () => {
  const a = open(url, "room-1")
  const b = open(url, "room-1")
  expect(await synced(a)).toBe(true)
  expect(await synced(b)).toBe(true)
  a.doc.getText("t").insert(0, "hello")
  expect(await until(() => b.doc.getText("t").toString() === "hello", 5_000)).toBe(true)
  b.doc.getText("t").insert(5, " world")
  expect(await until(() => a.doc.getText("t").toString() === "hello world", 5_000)).toBe(true)

  a.awareness.setLocalState({ user: "ann", cursor: 3 })
  expect(await until(() => (b.awareness.getStates().get(a.doc.clientID) as { user?: string } | undefined)?.user === "ann", 5_000)).toBe(true)
  // A newcomer gets the text and the awareness states the hub holds.
  const c = open(url, "room-1")
  expect(await synced(c)).toBe(true)
  expect(c.doc.getText("t").toString()).toBe("hello world")
  expect(await until(() => c.awareness.getStates().has(a.doc.clientID), 5_000)).toBe(true)
  // Leaving removes the client's awareness at the others.
  a.destroy()
  expect(await until(() => !b.awareness.getStates().has(a.doc.clientID), 5_000)).toBe(true)
})

test("offline edits reach the hub on reconnect and concurrent edits converge", async () => {
  const a = open(url, "room-2")
  const b = open(url, "room-2")
  await synced(a)
  await synced(b)
  a.doc.getText("t").insert(0, "base.")
  await until(() => b.doc.getText("t").toString() === "base.", 5_000)
  b.disconnect()
  // Both edit at once; b is offline.
  b.doc.getText("t").insert(0, "[offline b]")
  a.doc.getText("t").insert(5, "[online a]")
  await sleep(200)
  expect(a.doc.getText("t").toString()).not.toContain("offline b")
  b.connect()
  const want = (s: string) => s.includes("[offline b]") && s.includes("[online a]") && s.includes("base.")
  expect(await until(() => want(a.doc.getText("t").toString()) && want(b.doc.getText("t").toString()), 10_000)).toBe(true)
  expect(a.doc.getText("t").toString()).toBe(b.doc.getText("t").toString())
  // A third client that never saw either gets the merged text from the hub alone.
  const c = open(url, "room-2")
  await synced(c)
  expect(c.doc.getText("t").toString()).toBe(a.doc.getText("t").toString())
})

test("the document survives a hub restart on LevelDB (compacted), and a provider resyncs", async () => {
  const a = open(url, "room-3")
  await synced(a)
  const text = a.doc.getText("t")
  // Enough keystrokes to pass the test hub's 4 KiB compaction threshold.
  for (let i = 0; i < 600; i++) text.insert(text.length, String.fromCharCode(97 + (i % 26)))
  text.delete(0, 100)
  const expected = text.toString()
  const probe = open(url, "room-3")
  await until(() => probe.doc.getText("t").toString() === expected, 10_000)
  probe.destroy()
  const port = hub.port
  await hub.stop()
  a.doc.getText("t").insert(0, "while-down:")
  hub = await startCrdtServer(dir, port, true)
  const fresh = open(url, "room-3")
  const all = "while-down:" + expected
  expect(await until(() => fresh.doc.getText("t").toString() === all, 15_000)).toBe(true)
  expect(a.doc.getText("t").toString()).toBe(all)
  // What LevelDB holds: a compacted base (Yjs V2 state) and a short tail.
  await hub.stop()
  const storage = await LevelStorage.open(dir)
  try {
    const stored = await new CrdtDocStore(storage).load("room-3")
    expect(stored?.meta.kind).toBe("yjs")
    expect(stored!.meta.baseSeq).toBeGreaterThan(0)
    expect(stored!.entries.length).toBeLessThan(600)
    const reloaded = yjsDocEngine().load(stored!.base!)
    Y.applyUpdate(reloaded, Y.mergeUpdates(stored!.entries.map((e) => e.update)))
    expect(reloaded.getText("t").toString()).toBe(all)
  } finally {
    await storage.close()
  }
  hub = await startCrdtServer(dir, port, true)
}, 90_000)

test("hostile and malformed updates are refused, the socket closed, and the hub keeps serving", async () => {
  const ok = open(url, "room-4")
  await synced(ok)
  ok.doc.getText("t").insert(0, "safe")

  // Garbage inside a sync update.
  const g = await rawClient("room-4")
  g.ws.send(encodeUpdate(new Uint8Array([0xff, 0xff, 0xff, 0x01, 0x02])))
  expect(await until(() => g.closed() !== undefined, 5_000)).toBe(true)
  expect(g.closed()).toBe(4400)

  // The 26-byte V2 update (1e8 structs from RLE runs) that made Yjs allocate until Node died:
  // the hub reads V1 only, where these bytes are an empty update; nothing happens.
  const bomb = new Uint8Array([0, 0, 2, 141, 1, 0, 0, 1, 0, 1, 0, 0, 0, 5, 65, 128, 194, 215, 47, 1, 128, 194, 215, 47, 0, 0])
  const h = await rawClient("room-4")
  h.ws.send(encodeUpdate(bomb))
  await sleep(300)
  expect(h.closed()).toBeUndefined()
  h.ws.close()

  // A valid update whose dependencies the hub does not have, as a step2 (an answer to the
  // hub's state vector cannot lack what the hub lacks): refused.
  const src = new Y.Doc()
  src.getText("t").insert(0, "ab")
  const first = Y.encodeStateAsUpdate(src)
  const sv = Y.encodeStateVector(src)
  src.getText("t").insert(1, "X")
  const second = Y.encodeStateAsUpdate(src, sv)
  const m = await rawClient("room-4")
  m.ws.send(encodeStep2(second))
  expect(await until(() => m.closed() !== undefined, 5_000)).toBe(true)
  expect(m.closed()).toBe(4400)
  void first
  // As an update it is dropped and the socket asked for what the hub lacks, not closed: a stock
  // provider typing as it reconnects sends one ahead of its step2 (yjs-server-reconnect-typing.test.ts).
  const n = await rawClient("room-4")
  n.ws.send(encodeUpdate(second))
  await sleep(300)
  expect(n.closed()).toBeUndefined()
  n.ws.close()

  // An undecodable frame.
  const u = await rawClient("room-4")
  u.ws.send(new Uint8Array([0, 0x80]))
  expect(await until(() => u.closed() !== undefined, 5_000)).toBe(true)

  // The hub is alive and the document intact.
  const later = open(url, "room-4")
  expect(await synced(later)).toBe(true)
  expect(await until(() => later.doc.getText("t").toString() === "safe", 5_000)).toBe(true)
  expect(hub.child.exitCode).toBeNull()
})

test("writing as another user's clientID is refused (4400); that user's next edits land and everyone sees the same text", async () => {
  const ann = open(url, "room-writers", new Y.Doc(), { token: "writer-ann" })
  const bob = open(url, "room-writers", new Y.Doc(), { token: "writer-bob" })
  await synced(ann)
  await synced(bob)
  ann.doc.getText("t").insert(0, "ann")
  expect(await until(() => bob.doc.getText("t").toString() === "ann", 5_000)).toBe(true)

  // Mallory (another principal) takes ann's clientID and the clock of ann's next edit.
  const forger = new Y.Doc()
  Y.applyUpdate(forger, Y.encodeStateAsUpdate(ann.doc))
  const sv = Y.encodeStateVector(forger)
  forger.clientID = ann.doc.clientID
  forger.getText("t").insert(3, " FORGED")
  const m = await rawClient("room-writers", "writer-mallory")
  m.ws.send(encodeUpdate(Y.encodeStateAsUpdate(forger, sv)))
  expect(await until(() => m.closed() !== undefined, 5_000)).toBe(true)
  expect(m.closed()).toBe(4400)

  // Ann's next edit (the clock mallory tried to take) reaches bob, and both read the same.
  ann.doc.getText("t").insert(3, "!")
  expect(await until(() => bob.doc.getText("t").toString() === "ann!", 5_000)).toBe(true)
  const later = open(url, "room-writers", new Y.Doc(), { token: "writer-carol" })
  expect(await synced(later)).toBe(true)
  expect(await until(() => later.doc.getText("t").toString() === "ann!", 5_000)).toBe(true)
  expect(ann.doc.getText("t").toString()).toBe("ann!")
})

test("awareness as another user is dropped: a live socket's state stays its own, and a clientID's document owner keeps it after it leaves", async () => {
  const ann = open(url, "room-aw-owner", new Y.Doc(), { token: "writer-ann" })
  const bob = open(url, "room-aw-owner", new Y.Doc(), { token: "writer-bob" })
  await synced(ann)
  await synced(bob)
  ann.awareness.setLocalState({ user: "ann" })
  const annSeen = () => (bob.awareness.getStates().get(ann.doc.clientID) as { user?: string } | undefined)?.user
  expect(await until(() => annSeen() === "ann", 5_000)).toBe(true)
  ann.doc.getText("t").insert(0, "ann wrote this")
  expect(await until(() => bob.doc.getText("t").toString() === "ann wrote this", 5_000)).toBe(true)

  // Mallory announces ann's clientID at a newer clock, as "MALLORY".
  const fake = (clock: number) => encodeAwareness(encodeAwarenessUpdate([{ clientID: ann.doc.clientID, clock, state: '{"user":"MALLORY"}' }]))
  const m = await rawClient("room-aw-owner", "writer-mallory")
  m.ws.send(fake(1_000))
  // A probe behind it (handled in order): by its answer the fake was handled.
  m.ws.send(encodeStep1(Y.encodeStateVector(new Y.Doc())))
  expect(await until(() => m.got.some((f) => decodeYMessage(f).type === "step2"), 5_000)).toBe(true)
  const late = open(url, "room-aw-owner", new Y.Doc(), { token: "writer-carol" })
  expect(await synced(late)).toBe(true)
  expect(await until(() => late.awareness.getStates().has(ann.doc.clientID), 5_000)).toBe(true)
  expect((late.awareness.getStates().get(ann.doc.clientID) as { user?: string }).user).toBe("ann")
  expect(annSeen()).toBe("ann")

  // Ann leaves (her state is removed); her clientID's document writes are hers, so mallory still cannot show it.
  ann.destroy()
  expect(await until(() => !bob.awareness.getStates().has(ann.doc.clientID), 5_000)).toBe(true)
  m.ws.send(fake(2_000))
  m.ws.send(encodeStep1(Y.encodeStateVector(new Y.Doc())))
  const answers = () => m.got.filter((f) => decodeYMessage(f).type === "step2").length
  expect(await until(() => answers() >= 2, 5_000)).toBe(true)
  const joiner = open(url, "room-aw-owner", new Y.Doc(), { token: "writer-dan" })
  expect(await synced(joiner)).toBe(true)
  joiner.awareness.setLocalState({ user: "dan" })
  expect(await until(() => bob.awareness.getStates().has(joiner.doc.clientID), 5_000)).toBe(true)
  expect(joiner.awareness.getStates().has(ann.doc.clientID)).toBe(false)
  expect(bob.awareness.getStates().has(ann.doc.clientID)).toBe(false)
  expect(m.closed()).toBeUndefined()
})

test("the hub sends SyncStep1 first, and does not echo an update to its sender", async () => {
  const r = await rawClient("room-5")
  expect(await until(() => r.got.length > 0, 5_000)).toBe(true)
  expect(decodeYMessage(r.got[0]!).type).toBe("step1")
  r.ws.send(encodeStep1(Y.encodeStateVector(new Y.Doc())))
  const other = open(url, "room-5")
  await synced(other)
  const src = new Y.Doc()
  src.getText("t").insert(0, "mine")
  const before = r.got.length
  r.ws.send(encodeUpdate(Y.encodeStateAsUpdate(src)))
  expect(await until(() => other.doc.getText("t").toString() === "mine", 5_000)).toBe(true)
  await sleep(100)
  const echoed = r.got.slice(before).map(decodeYMessage).filter((m) => m.type === "update")
  expect(echoed).toEqual([])
  r.ws.close()
})

describe("authentication", () => {
  test("no token: closed 4401 and the stock client stops retrying; a reader syncs but cannot write", async () => {
    const anon = await rawClient("secret", null)
    expect(await until(() => anon.closed() !== undefined, 5_000)).toBe(true)
    expect(anon.closed()).toBe(4401)
    const noToken = open(url, "secret", new Y.Doc(), {})
    let closes = 0
    noToken.on("connection-close", () => closes++)
    await sleep(1_000)
    expect(noToken.synced).toBe(false)
    expect(closes).toBe(1)

    const writer = open(url, "secret", new Y.Doc(), { token: "writer-1" })
    await synced(writer)
    writer.doc.getText("t").insert(0, "from writer")
    const reader = open(url, "secret", new Y.Doc(), { token: "reader-1" })
    await synced(reader)
    expect(await until(() => reader.doc.getText("t").toString() === "from writer", 5_000)).toBe(true)
    reader.doc.getText("t").insert(0, "reader edit ")
    await sleep(300)
    const check = open(url, "secret", new Y.Doc(), { token: "reader-2" })
    await synced(check)
    await sleep(100)
    expect(check.doc.getText("t").toString()).toBe("from writer")
    expect(writer.doc.getText("t").toString()).toBe("from writer")
  })
})

describe("awareness bounds (in process)", () => {
  const start = async (options: Parameters<typeof yjsRoute>[1] = {}) => {
    const reports: string[] = []
    const hub = new Hub({ machines: [], storage: new MemoryStorage(), runtime: systemRuntime, sync: false, crdt: { engines: [yjsDocEngine()] }, onEvent: (e) => { if (e.type === "crdt" && e.event.type === "refused") reports.push(e.event.code) } })
    const route = yjsRoute(hub.crdtDocs, options)
    const server = await WsServer.start(hub, { listen: [{ host: "127.0.0.1", port: 0 }], routes: [route] })
    const base = `ws://127.0.0.1:${server.addresses()[0]!.port}/yjs`
    const sockets: WebSocket[] = []
    const connect = async (room: string) => {
      const ws = new WebSocket(`${base}/${room}`)
      sockets.push(ws)
      const got: Uint8Array[] = []
      let closed: number | undefined
      ws.on("message", (d) => got.push(new Uint8Array(d as Buffer)))
      ws.on("close", (c) => (closed = c))
      await new Promise((r, j) => { ws.once("open", r); ws.once("error", j) })
      await until(() => got.length > 0, 5_000)
      return { ws, got, closed: () => closed }
    }
    const stop = async () => {
      for (const ws of sockets) ws.close()
      route.close()
      await server.close()
      await hub.close()
    }
    return { connect, stop, reports }
  }
  /** Awareness states (clientIDs with a non-null state) in frames. */
  const states = (frames: Uint8Array[]): Set<number> => {
    const out = new Set<number>()
    for (const f of frames) {
      const m = decodeYMessage(f)
      if (m.type === "awareness") for (const e of decodeAwarenessUpdate(m.update, 1e9)) if (e.state !== "null") out.add(e.clientID)
    }
    return out
  }
  const announce = (ids: number[], clock = 1) => encodeAwareness(encodeAwarenessUpdate(ids.map((clientID) => ({ clientID, clock, state: `{"user":${clientID}}` }))))

  test("one socket flooding new clientIDs is closed (4400) at the per-socket bound; joiners and queries get a bounded set", async () => {
    const { connect, stop, reports } = await start()
    try {
      const attacker = await connect("flood")
      for (let i = 0; i < 200; i++) attacker.ws.send(announce(Array.from({ length: 1024 }, (_, k) => 1_000_000 + i * 1024 + k)))
      expect(await until(() => attacker.closed() !== undefined, 5_000)).toBe(true)
      expect(attacker.closed()).toBe(4400)
      expect(reports).toContain("presence-limit")
      const joiner = await connect("flood")
      await sleep(200)
      const before = joiner.got.length
      joiner.ws.send(encodeQueryAwareness())
      await sleep(300)
      expect(states(joiner.got).size).toBeLessThanOrEqual(MAX_AWARENESS_STATES_PER_SOCKET)
      expect(joiner.got.slice(before).reduce((n, f) => n + f.length, 0)).toBeLessThan(MAX_AWARENESS_BYTES_PER_ROOM)
      expect(joiner.closed()).toBeUndefined()
    } finally {
      await stop()
    }
  }, 30_000)

  test("a full room drops new states (not relayed, reported once per socket) and keeps serving; a leaving socket makes room", async () => {
    const { connect, stop, reports } = await start({ maxAwarenessStates: 6, maxAwarenessStatesPerSocket: 2 })
    try {
      const watcher = await connect("full")
      const fillers: Array<Awaited<ReturnType<typeof connect>>> = []
      for (let s = 0; s < 3; s++) {
        const c = await connect("full")
        c.ws.send(announce([100 + 2 * s, 101 + 2 * s]))
        fillers.push(c)
      }
      expect(await until(() => states(watcher.got).size === 6, 5_000)).toBe(true)
      // The room is full: a newcomer's state is dropped, its socket stays and syncs.
      const late = await connect("full")
      late.ws.send(announce([500]))
      late.ws.send(announce([500], 2))
      late.ws.send(encodeStep1(Y.encodeStateVector(new Y.Doc())))
      expect(await until(() => late.got.some((m) => decodeYMessage(m).type === "step2"), 5_000)).toBe(true)
      await sleep(200)
      expect(states(watcher.got).has(500)).toBe(false)
      expect(reports.filter((r) => r === "presence-limit")).toHaveLength(1)
      expect(late.closed()).toBeUndefined()
      const joiner = await connect("full")
      await sleep(200)
      expect([...states(joiner.got)].sort()).toEqual([100, 101, 102, 103, 104, 105])
      // A filler leaves (its states removed): the newcomer's next announcement is taken and relayed.
      fillers[0]!.ws.close()
      await sleep(200)
      late.ws.send(announce([500], 3))
      expect(await until(() => states(watcher.got.slice(-2)).has(500), 5_000)).toBe(true)
      // Updating a held state is always taken; a socket past its own bound is closed.
      fillers[1]!.ws.send(announce([102, 103, 900]))
      expect(await until(() => fillers[1]!.closed() !== undefined, 5_000)).toBe(true)
      expect(fillers[1]!.closed()).toBe(4400)
    } finally {
      await stop()
    }
  }, 30_000)

  test("a socket relaying removals of others' states (a stock client's 30 s timeout) is not charged for them", async () => {
    const { connect, stop } = await start({ maxAwarenessStatesPerSocket: 2 })
    try {
      const owners = [await connect("echo"), await connect("echo"), await connect("echo")]
      owners.forEach((o, i) => o.ws.send(announce([10 + 2 * i, 11 + 2 * i])))
      const relay = await connect("echo")
      relay.ws.send(announce([99]))
      expect(await until(() => states(relay.got).size === 6, 5_000)).toBe(true)
      // The relay sends back the removal of all six others' states, at their clock.
      const removals = encodeAwareness(encodeAwarenessUpdate([10, 11, 12, 13, 14, 15].map((clientID) => ({ clientID, clock: 1, state: "null" }))))
      relay.ws.send(removals)
      relay.ws.send(announce([99], 2))
      await sleep(300)
      expect(relay.closed()).toBeUndefined()
      // Each owner still holds its own two: a new state of its own is taken without a close.
      owners[0]!.ws.send(announce([10, 11], 2))
      await sleep(200)
      expect(owners[0]!.closed()).toBeUndefined()
    } finally {
      await stop()
    }
  }, 30_000)
})

test("bindWriters: false (users relaying each other's edits outside the hub): another principal may write under a clientID", async () => {
  const { hub, url, stop } = await crdtRoutesHub([yjsDocEngine()], (host) => [yjsRoute(host, { bindWriters: false })])
  const base = url("/yjs/relayed")
  const sockets: WebSocket[] = []
  try {
    const doc = await hub.crdtDocs.open<Y.Doc>("yjs", "relayed")
    const write = async (token: string, text: string) => {
      const ws = new WebSocket(`${base}?token=${token}`)
      sockets.push(ws)
      let closed: number | undefined
      ws.on("close", (c) => (closed = c))
      await new Promise((r, j) => { ws.once("open", r); ws.once("error", j) })
      const d = new Y.Doc()
      Y.applyUpdate(d, Y.encodeStateAsUpdate(doc.doc))
      const sv = Y.encodeStateVector(d)
      d.clientID = 77
      d.getText("t").insert(d.getText("t").length, text)
      const seq = doc.seq
      ws.send(encodeUpdate(Y.encodeStateAsUpdate(d, sv)))
      expect(await until(() => doc.seq > seq || closed !== undefined, 5_000)).toBe(true)
      return closed
    }
    expect(await write("ann", "ann's")).toBeUndefined()
    expect(await write("bob", " and bob's")).toBeUndefined()
    expect(doc.doc.getText("t").toString()).toBe("ann's and bob's")
    expect(doc.ownerOf("77")).toBeUndefined()
    hub.crdtDocs.release(doc)
  } finally {
    for (const ws of sockets) ws.close()
    await stop()
  }
})
