/**
 * automerge-repo route (adapters/automerge-server/endpoint.ts), what the hub sends a peer:
 * every send goes through one backpressure gate, liveness comes from pongs only, and an
 * ephemeral message opens no document.
 *
 * A receiver that stops reading its socket (TCP level) while it keeps sending made the hub
 * buffer everything relayed to it, for as long as it kept sending: one sender flooding 60 KiB
 * ephemeral messages took a hub from 132 MiB to 2.7 GiB in 15 s with 4 such receivers.
 *
 * Real sockets on 127.0.0.1; honest peers are stock automerge-repo `Repo`s. Every load loop is
 * bounded in count and time; waits are bounded polls.
 */
import * as A from "@automerge/automerge"
import { Repo, type DocHandle } from "@automerge/automerge-repo"
import { Encoder } from "cbor-x"
import { randomBytes } from "node:crypto"
import { WebSocket } from "ws"
import { automergeDocEngine, automergeRoute, type AutomergeRoute, type AutomergeRouteOptions } from "../adapters/automerge-server/index.js"
import { addressTo, decodeRepoMessage, encodeRepoMessage, type RepoMessage } from "../adapters/automerge-server/protocol.js"
import type { CrdtDocHost } from "../core/crdt-docs/host.js"
import type { HubEvent } from "../core/index.js"
import { StoppableClientAdapter } from "./support/automerge-client.js"
import { crdtRoutesHub } from "./support/crdt-routes.js"
import { sleep, until } from "./support/ws.js"

interface Note {
  text: string
}

const MiB = 1 << 20
/** The gate's documented limits (defaults): ephemeral dropped past 1 MiB unsent, closed past 8 MiB. */
const SOFT = 1 * MiB
const HARD = 8 * MiB
const cbor = new Encoder({ tagUint8Array: false, useRecords: false })

/** A hub with the automerge route; records the sockets the route accepts, the documents it opens, and the hub's events. */
const start = async (options: AutomergeRouteOptions) => {
  const serverSockets: WebSocket[] = []
  const opened: string[] = []
  const events: HubEvent[] = []
  /** Close codes the hub sent, per server-side socket. */
  const closeCodes = new Map<WebSocket, number>()
  let route!: AutomergeRoute
  const hub = await crdtRoutesHub([automergeDocEngine()], (host: CrdtDocHost) => {
    const open = host.open.bind(host)
    host.open = ((kind: string, docId: string) => {
      opened.push(docId)
      return open(kind, docId)
    }) as CrdtDocHost["open"]
    route = automergeRoute(host, options)
    return [{
      prefix: route.prefix,
      accept: (ws: WebSocket, info: Parameters<AutomergeRoute["accept"]>[1]) => {
        serverSockets.push(ws)
        const close = ws.close.bind(ws)
        ws.close = ((code?: number, reason?: string) => {
          if (code !== undefined && !closeCodes.has(ws)) closeCodes.set(ws, code)
          close(code, reason)
        }) as WebSocket["close"]
        route.accept(ws, info)
      },
      close: () => route.close(),
    }]
  }, { onEvent: (e) => events.push(e) })
  /** The hub's end of a client's socket (matched by port). */
  const serverOf = (client: WebSocket): WebSocket => {
    const port = (client as unknown as { _socket: { localPort: number } })._socket.localPort
    const s = serverSockets.find((w) => (w as unknown as { _socket: { remotePort: number } | null })._socket?.remotePort === port)
    if (s === undefined) throw new Error(`no server socket for port ${port}`)
    return s
  }
  return { ...hub, base: hub.url("/automerge"), route: () => route, serverOf, opened, events, closeCodes }
}

/** A peer speaking the protocol by hand. */
interface RawPeer {
  readonly ws: WebSocket
  readonly peerId: string
  readonly got: Array<RepoMessage | undefined>
  closed: number | undefined
}

const rawPeer = async (base: string, peerId: string, token = peerId): Promise<RawPeer> => {
  const ws = new WebSocket(`${base}?token=${token}`)
  const p: RawPeer = { ws, peerId, got: [], closed: undefined }
  ws.on("message", (d) => p.got.push(decodeRepoMessage(new Uint8Array(d as Buffer))))
  ws.on("close", (code) => (p.closed = code))
  ws.on("error", () => {})
  await new Promise((ok, fail) => { ws.once("open", ok); ws.once("error", fail) })
  ws.send(encodeRepoMessage({ type: "join", senderId: peerId, peerMetadata: {}, supportedProtocolVersions: ["1"] }))
  expect(await until(() => p.got.some((m) => m?.type === "peer"), 5_000)).toBe(true)
  return p
}

/** The sync message of a peer that has nothing of the document. */
const emptySync = (): Uint8Array => A.generateSyncMessage(A.init(), A.initSyncState())[1]!

/** Asks for a document and waits until the hub answers it with its state. */
const follow = async (p: RawPeer, documentId: string): Promise<void> => {
  p.ws.send(encodeRepoMessage({ type: "request", senderId: p.peerId, targetId: "canon-hub", documentId, data: emptySync() }))
  expect(await until(() => p.got.some((m) => m?.type === "sync" && m.documentId === documentId), 10_000)).toBe(true)
}

const ephemeral = (p: RawPeer, documentId: string, count: number, data: Uint8Array): Uint8Array =>
  encodeRepoMessage({ type: "ephemeral", senderId: p.peerId, targetId: "canon-hub", documentId, count, sessionId: `s-${p.peerId}`, data })

/** Stops reading the socket at TCP level: what the hub sends it stays in the hub's buffers. */
const stopReading = (p: RawPeer): void => (p.ws as unknown as { _socket: { pause(): void } })._socket.pause()

const repos: Repo[] = []
const adapters: StoppableClientAdapter[] = []
const repo = (url: string, peerId: string): Repo => {
  const adapter = new StoppableClientAdapter(url, 200)
  adapters.push(adapter)
  const r = new Repo({ network: [adapter], peerId: peerId as never })
  repos.push(r)
  return r
}

/** Waits (bounded) until the hub answers a request for the document with its state, not doc-unavailable. */
const hubHas = async (base: string, documentId: string): Promise<boolean> => {
  const end = Date.now() + 15_000
  for (let i = 0; Date.now() < end; i++) {
    const probe = await rawPeer(base, `probe-${i}`, "probe")
    probe.ws.send(encodeRepoMessage({ type: "request", senderId: probe.peerId, targetId: "canon-hub", documentId, data: emptySync() }))
    await until(() => probe.got.some((m) => (m?.type === "sync" || m?.type === "doc-unavailable") && m.documentId === documentId), 3_000)
    probe.ws.terminate()
    if (probe.got.some((m) => m?.type === "sync")) return true
    await sleep(50)
  }
  return false
}

/** Two stock repos on one document: `a` made it, `b` loaded it by URL; both hear ephemeral messages. */
const honestPair = async (base: string) => {
  const ra = repo(`${base}?token=alice`, "peer-a")
  const a = ra.create<Note>({ text: "start" })
  expect(await hubHas(base, a.documentId)).toBe(true)
  const rb = repo(`${base}?token=bob`, "peer-b")
  const b = await rb.find<Note>(a.url)
  expect(await until(() => b.doc()?.text === "start", 10_000)).toBe(true)
  const heard = { a: [] as unknown[], b: [] as unknown[] }
  a.on("ephemeral-message", (e) => heard.a.push(e.message))
  b.on("ephemeral-message", (e) => heard.b.push(e.message))
  return { a, b, heard }
}

/** An honest edit and broadcast still get through, both ways. */
const honestStillWork = async (a: DocHandle<Note>, b: DocHandle<Note>, heard: { a: unknown[]; b: unknown[] }) => {
  a.change((d) => A.splice(d, ["text"], 0, 0, "A:"))
  expect(await until(() => b.doc()?.text === "A:start", 10_000)).toBe(true)
  b.change((d) => A.splice(d, ["text"], d.text.length, 0, ":B"))
  expect(await until(() => a.doc()?.text === "A:start:B", 10_000)).toBe(true)
  a.broadcast({ marker: "from-a" })
  b.broadcast({ marker: "from-b" })
  expect(await until(() => heard.b.some((m) => (m as { marker?: string }).marker === "from-a"), 10_000)).toBe(true)
  expect(await until(() => heard.a.some((m) => (m as { marker?: string }).marker === "from-b"), 10_000)).toBe(true)
}

/** Shuts the stock repos down while their hub still runs (a stock adapter shut down mid-connect throws). */
const shutdownRepos = async (): Promise<void> => {
  await until(() => adapters.every((a) => a.socket === undefined || a.socket.readyState === WebSocket.OPEN), 10_000)
  for (const r of repos.splice(0)) await r.shutdown().catch(() => {})
  adapters.splice(0)
}

test("a receiver that stops reading is sent ephemeral messages only up to the soft limit; honest peers still get them", async () => {
  // No ping sweep in this test: the bound must hold without liveness closing the reader.
  const hub = await start({ pingMs: 600_000 })
  const raws: RawPeer[] = []
  try {
    const { a, b, heard } = await honestPair(hub.base)
    const docId = a.documentId
    const stuck = await rawPeer(hub.base, "stuck")
    const sender = await rawPeer(hub.base, "flooder")
    raws.push(stuck, sender)
    await follow(stuck, docId)
    await follow(sender, docId)
    stopReading(stuck)
    const stuckOnHub = hub.serverOf(stuck.ws)
    let maxBuffered = 0
    const sample = setInterval(() => (maxBuffered = Math.max(maxBuffered, stuckOnHub.bufferedAmount)), 2)
    // 400 messages of 60 KiB (24 MiB), paced by the sender's own socket; at most 30 s.
    const data = cbor.encode(new Uint8Array(60 * 1024).fill(7))
    const end = Date.now() + 30_000
    let sent = 0
    while (sent < 400 && Date.now() < end) {
      if (sender.ws.bufferedAmount > 2 * MiB) {
        await sleep(2)
        continue
      }
      sender.ws.send(ephemeral(sender, docId, ++sent, data))
      if (sent % 16 === 0) await sleep(0)
    }
    expect(sent).toBe(400)
    // The hub has handled every frame of the flood.
    expect(await until(() => hub.route().pendingBytes === 0 && sender.ws.bufferedAmount === 0, 20_000)).toBe(true)
    await sleep(50)
    clearInterval(sample)
    maxBuffered = Math.max(maxBuffered, stuckOnHub.bufferedAmount)
    // Past the soft limit an ephemeral message is dropped: at most the limit plus one message waits.
    expect(maxBuffered).toBeLessThanOrEqual(SOFT + 128 * 1024)
    // The honest receivers heard the flood (some of it may be dropped if they fall behind).
    expect(heard.a.length + heard.b.length).toBeGreaterThan(0)
    await honestStillWork(a, b, heard)
  } finally {
    for (const p of raws) p.ws.terminate()
    await shutdownRepos()
    await hub.stop()
  }
}, 90_000)

test("a receiver that sends but never reads is taken for dead; honest peers stay", async () => {
  const hub = await start({ pingMs: 150 })
  const raws: RawPeer[] = []
  let keep: NodeJS.Timeout | undefined
  try {
    const { a, b, heard } = await honestPair(hub.base)
    const stuck = await rawPeer(hub.base, "stuck")
    raws.push(stuck)
    await follow(stuck, a.documentId)
    stopReading(stuck)
    const stuckOnHub = hub.serverOf(stuck.ws)
    // It keeps sending a frame (a repeated ephemeral, dropped as a duplicate) every 30 ms.
    const tick = ephemeral(stuck, a.documentId, 1, cbor.encode({ here: true }))
    keep = setInterval(() => {
      if (stuck.ws.readyState === WebSocket.OPEN) stuck.ws.send(tick)
    }, 30)
    // Ping sweeps every 150 ms: it answers no ping, so it is gone after two (waited for at most 10 s).
    expect(await until(() => stuckOnHub.readyState === WebSocket.CLOSED, 10_000)).toBe(true)
    // Stock repos answer pings: still connected, still syncing.
    await honestStillWork(a, b, heard)
    expect(hub.route().connections).toBe(2)
  } finally {
    clearInterval(keep)
    for (const p of raws) p.ws.terminate()
    await shutdownRepos()
    await hub.stop()
  }
}, 60_000)

test("a receiver that stops reading sync messages is closed (1013) past the hard limit; its buffer stays bounded", async () => {
  const hub = await start({ pingMs: 600_000 })
  const raws: RawPeer[] = []
  try {
    const { a, b, heard } = await honestPair(hub.base)
    // A second document of 600 KiB (incompressible bytes), which the hub sends whole to a peer
    // that says it has nothing.
    const writer = await rawPeer(hub.base, "writer")
    raws.push(writer)
    const bigId = "big-doc"
    const big = A.change(A.init<{ blob?: Uint8Array }>(), (d) => (d.blob = new Uint8Array(randomBytes(600 * 1024))))
    const change = A.getLastLocalChange(big)!
    writer.ws.send(encodeRepoMessage({
      type: "sync", senderId: "writer", targetId: "canon-hub", documentId: bigId,
      data: A.encodeSyncMessage({ heads: A.getHeads(big), need: [], have: [], changes: [change] }),
    }))
    const stuck = await rawPeer(hub.base, "stuck")
    raws.push(stuck)
    await follow(stuck, bigId)
    stopReading(stuck)
    const stuckOnHub = hub.serverOf(stuck.ws)
    let maxBuffered = 0
    const sample = setInterval(() => (maxBuffered = Math.max(maxBuffered, stuckOnHub.bufferedAmount)), 2)
    // "I have nothing", 60 times (36 MiB of answers); at most 30 s.
    const end = Date.now() + 30_000
    for (let i = 0; i < 60 && Date.now() < end && stuck.ws.readyState === WebSocket.OPEN; i++) {
      stuck.ws.send(encodeRepoMessage({ type: "sync", senderId: "stuck", targetId: "canon-hub", documentId: bigId, data: emptySync() }))
      await sleep(10)
    }
    expect(await until(() => hub.route().pendingBytes === 0, 20_000)).toBe(true)
    await sleep(50)
    clearInterval(sample)
    maxBuffered = Math.max(maxBuffered, stuckOnHub.bufferedAmount)
    // At most the hard limit and one answer (the whole document) wait for it.
    expect(maxBuffered).toBeLessThanOrEqual(HARD + MiB)
    expect(hub.closeCodes.get(stuckOnHub)).toBe(1013)
    expect(hub.events.some((e) => e.type === "crdt" && e.event.type === "refused" && e.event.code === "slow-consumer")).toBe(true)
    await honestStillWork(a, b, heard)
  } finally {
    for (const p of raws) p.ws.terminate()
    await shutdownRepos()
    await hub.stop()
  }
}, 90_000)

test("an ephemeral message for a document the socket has not requested opens nothing and is not relayed", async () => {
  const hub = await start({ pingMs: 600_000 })
  const raws: RawPeer[] = []
  try {
    const { a, b, heard } = await honestPair(hub.base)
    const p = await rawPeer(hub.base, "roamer")
    raws.push(p)
    const before = hub.opened.length
    // Fresh ids nobody has: nothing is opened for them.
    for (let i = 0; i < 20; i++) p.ws.send(ephemeral(p, `fresh-${i}`, i + 1, cbor.encode({ i })))
    // A document that exists, which this socket has not requested: not relayed to its peers.
    p.ws.send(ephemeral(p, a.documentId, 100, cbor.encode({ uninvited: true })))
    // A document nobody has, requested (doc-unavailable), then an ephemeral message for it.
    p.ws.send(encodeRepoMessage({ type: "request", senderId: "roamer", targetId: "canon-hub", documentId: "nobody-has-it", data: emptySync() }))
    expect(await until(() => p.got.some((m) => m?.type === "doc-unavailable" && m.documentId === "nobody-has-it"), 10_000)).toBe(true)
    p.ws.send(ephemeral(p, "nobody-has-it", 101, cbor.encode({ after: true })))
    // Once requested, its ephemeral messages are relayed (the frames above were handled before it).
    await follow(p, a.documentId)
    p.ws.send(ephemeral(p, a.documentId, 102, cbor.encode({ invited: true })))
    expect(await until(() => heard.b.some((m) => (m as { invited?: boolean }).invited === true), 10_000)).toBe(true)
    expect(heard.a.concat(heard.b).some((m) => (m as { uninvited?: boolean }).uninvited === true)).toBe(false)
    expect(hub.opened.slice(before).filter((id) => id.startsWith("fresh-"))).toEqual([])
    expect(hub.opened.slice(before).filter((id) => id === "nobody-has-it")).toEqual(["nobody-has-it"])
    expect(p.closed).toBeUndefined()
    await honestStillWork(a, b, heard)
  } finally {
    for (const p of raws) p.ws.terminate()
    await shutdownRepos()
    await hub.stop()
  }
}, 60_000)

test("addressTo: the head and the shared body decode as the message with its targetId, whatever the map header's form", () => {
  for (const extra of [0, 17, 18, 30, 300]) {
    const m: Record<string, unknown> = { type: "ephemeral", senderId: "s", documentId: "d", count: 3, sessionId: "x", data: new Uint8Array([1, 2]) }
    for (let i = 0; i < extra; i++) m[`k${i}`] = i
    const encoded = encodeRepoMessage(m)
    const frame = addressTo(encoded, "peer-b")!
    expect(frame.body.buffer).toBe(encoded.buffer)
    const whole = new Uint8Array(frame.head.length + frame.body.length)
    whole.set(frame.head)
    whole.set(frame.body, frame.head.length)
    expect(cbor.decode(whole)).toEqual({ ...m, targetId: "peer-b" })
  }
  expect(addressTo(encodeRepoMessage([1, 2] as never), "p")).toBeUndefined()
  expect(addressTo(new Uint8Array(0), "p")).toBeUndefined()
})

test("a peer whose pong waits unread through a stall of the hub's process stays: the first sweep after it does not judge that time", async () => {
  // Pong timeout 3 x 150 ms.
  const hub = await start({ pingMs: 150 })
  const raws: RawPeer[] = []
  try {
    const p = await rawPeer(hub.base, "stalled")
    raws.push(p)
    const onHub = hub.serverOf(p.ws)
    // ws answers the ping at once; then this process (the hub's too) blocks for 5 pong
    // timeouts. After it the timers run before the sockets are read: before, the sweep found
    // the pong late and terminated the socket.
    await new Promise<void>((resolve) => p.ws.once("ping", () => {
      const end = Date.now() + 2_500
      while (Date.now() < end) { /* busy */ }
      resolve()
    }))
    await sleep(600)
    expect(onHub.readyState).toBe(WebSocket.OPEN)
    expect(p.closed).toBeUndefined()
  } finally {
    for (const p of raws) p.ws.terminate()
    await hub.stop()
  }
}, 30_000)
