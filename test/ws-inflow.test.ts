/**
 * Input flow control of the CRDT routes (adapters/ws/inflow.ts): a peer that sends updates
 * faster than the hub's disk takes them is paused (TCP slows it), so the hub holds at most
 * about `maxInflowBytes` of its frames, and everything it sent is still taken, in order,
 * once the disk catches up. The disk here is slow on purpose.
 */
import * as Y from "yjs"
import * as A from "@automerge/automerge"
import { generateAutomergeUrl, parseAutomergeUrl } from "@automerge/automerge-repo"
import { WebSocket } from "ws"
import { MemoryStorage } from "../adapters/memory/index.js"
import type { WsRoute } from "../adapters/ws/index.js"
import { DEFAULT_MAX_INFLOW_BYTES } from "../adapters/ws/inflow.js"
import { systemRuntime } from "../adapters/system/index.js"
import { yjsDocEngine, yjsRoute, encodeUpdate, type YjsRoute } from "../adapters/yjs-server/index.js"
import { automergeDocEngine, automergeRoute, encodeRepoMessage, decodeRepoMessage, type AutomergeBox, type AutomergeRoute } from "../adapters/automerge-server/index.js"
import { until } from "./support/ws.js"
import { crdtRoutesHub } from "./support/crdt-routes.js"

const FRAMES = 64
const FRAME_BYTES = 128 * 1024
/** A quarter of the default bound, so the flood (four times the bound) is quick to send. */
const MAX_INFLOW_BYTES = DEFAULT_MAX_INFLOW_BYTES / 4

/** Text that does not compress (Automerge deflates its columns). */
const noise = (n: number, seed: number): string => {
  let x = seed
  let s = ""
  while (s.length < n) {
    x = (x * 1103515245 + 12345) >>> 0
    s += x.toString(36)
  }
  return s.slice(0, n)
}

/** `route`, remembering the hub's end of each socket it accepts. */
const recording = <R extends WsRoute>(route: R, sockets: WebSocket[]): R => {
  const accept = route.accept.bind(route)
  return Object.assign(route, { accept: (ws: WebSocket, info: Parameters<WsRoute["accept"]>[1]) => (sockets.push(ws), accept(ws, info)) })
}

/** A hub whose disk takes `diskMs` per batch. */
const start = async (diskMs: number) => {
  const storage = new MemoryStorage({ latency: { runtime: systemRuntime, ms: () => diskMs } })
  const hubSockets: WebSocket[] = []
  const { hub, url, stop, routes } = await crdtRoutesHub(
    [yjsDocEngine(), automergeDocEngine()],
    (host) => [recording(yjsRoute(host, { maxInflowBytes: MAX_INFLOW_BYTES }), hubSockets), recording(automergeRoute(host, { maxInflowBytes: MAX_INFLOW_BYTES }), hubSockets)] as const,
    { storage },
  )
  const [y, a] = routes
  /** Bytes the hub has read off its end of the newest socket (frames and their headers). */
  const bytesRead = (): number => (hubSockets[hubSockets.length - 1] as unknown as { _socket: { bytesRead: number } })._socket.bytesRead
  return { hub, y: y as YjsRoute, a: a as AutomergeRoute, base: url(""), stop, bytesRead }
}

const connect = async (url: string) => {
  const ws = new WebSocket(url)
  const got: Uint8Array[] = []
  ws.on("message", (d) => got.push(new Uint8Array(d as Buffer)))
  await new Promise((r, j) => { ws.once("open", r); ws.once("error", j) })
  return { ws, got }
}

/** The bytes of the first `n` frames. */
const sumOf = (sizes: number[], n: number): number => sizes.slice(0, n).reduce((x, y) => x + y, 0)

/**
 * Until all frames are stored (a frame per seq, in order; bounded in time), samples what the
 * hub has read and not stored yet every 2 ms: never much past the bound.
 */
const expectHeldWithinBound = async (read: () => number, sizes: number[], seq: () => number): Promise<void> => {
  let held = 0
  const end = Date.now() + 60_000
  while (seq() < sizes.length && Date.now() < end) {
    held = Math.max(held, read() - sumOf(sizes, seq()))
    await new Promise((r) => setTimeout(r, 2))
  }
  expect(seq()).toBe(sizes.length)
  // The bound, the frame that crossed it and what the socket had read past it before pausing.
  expect(held).toBeLessThanOrEqual(MAX_INFLOW_BYTES + 3 * FRAME_BYTES)
  expect(held).toBeGreaterThan(FRAME_BYTES)
}

test("y-websocket: a peer flooding updates is paused at the bound; all of them are taken once the disk catches up", async () => {
  // Slow: the route takes everything queued in one batch, so only a slow write lets input pile up.
  const { hub, y, base, stop, bytesRead } = await start(250)
  try {
    const c = await connect(`${base}/yjs/flood`)
    const doc = await hub.crdtDocs.open<Y.Doc>("yjs", "flood")
    const texts: string[] = []
    const sizes: number[] = []
    const before = bytesRead()
    for (let i = 0; i < FRAMES; i++) {
      const d = new Y.Doc()
      const text = noise(FRAME_BYTES, i + 1)
      d.getMap("m").set(`k${i}`, text)
      texts.push(text)
      const frame = encodeUpdate(Y.encodeStateAsUpdate(d))
      sizes.push(frame.length)
      c.ws.send(frame)
      d.destroy()
    }
    await expectHeldWithinBound(() => bytesRead() - before, sizes, () => doc.seq)
    expect(doc.doc.getMap("m").size).toBe(FRAMES)
    expect(doc.doc.getMap("m").get(`k${FRAMES - 1}`)).toBe(texts[FRAMES - 1])
    expect(y.pendingBytes).toBe(0)
    c.ws.close()
    hub.crdtDocs.release(doc)
  } finally {
    await stop()
  }
}, 90_000)

test("automerge-repo: a peer flooding changes is paused at the bound; all of them are taken once the disk catches up", async () => {
  // Each frame waits for the one before it to be durable.
  const { hub, a, base, stop, bytesRead } = await start(25)
  try {
    const c = await connect(`${base}/automerge`)
    c.ws.send(encodeRepoMessage({ type: "join", senderId: "flooder", peerMetadata: {}, supportedProtocolVersions: ["1"] }))
    expect(await until(() => c.got.some((m) => decodeRepoMessage(m)?.type === "peer"), 5_000)).toBe(true)
    const documentId = parseAutomergeUrl(generateAutomergeUrl()).documentId
    const doc = await hub.crdtDocs.open<AutomergeBox>("automerge", documentId)
    const sizes: number[] = []
    const before = bytesRead()
    let d = A.init<Record<string, Uint8Array>>()
    for (let i = 0; i < FRAMES; i++) {
      // A bytes value is one op (a string would be text, an op per character).
      d = A.change(d, (x) => { x[`k${i}`] = new TextEncoder().encode(noise(FRAME_BYTES - 1024, i + 1)) })
      const change = A.getLastLocalChange(d)!
      const data = A.encodeSyncMessage({ heads: A.getHeads(d), need: [], have: [], changes: [change] } as never)
      const frame = encodeRepoMessage({ type: "sync", senderId: "flooder", targetId: "canon-hub", documentId, data })
      sizes.push(frame.length)
      c.ws.send(frame)
    }
    await expectHeldWithinBound(() => bytesRead() - before, sizes, () => doc.seq)
    expect(A.getHeads(doc.doc.doc)).toEqual(A.getHeads(d))
    expect(a.pendingBytes).toBe(0)
    c.ws.close()
    hub.crdtDocs.release(doc)
  } finally {
    await stop()
  }
}, 90_000)
