/**
 * Stalled readers on several addresses cannot make a hub hold unsent bytes without a bound
 * (adapters/ws/unsent-budget.ts). Each socket had a bound of its own (8 MiB plus the largest
 * message written to it) and nothing bounded their sum: 64 stalled /yjs readers of a 12 MB
 * room from one address took a hub from 327 to 801 MiB, and each further address added as
 * much (attack review s35, tenant2/s2).
 *
 * Here readers on four loopback addresses ask a real /yjs route for a 6 MB room and never
 * read. The kernel takes a few MB of each; the rest stays in the server. With
 * `maxUnsentBytes` at 12 MiB, what the route's sockets hold together stays within that plus
 * one message, stalled readers are cut, and a stock provider that reads still loads the room
 * in full.
 *
 * Who is cut matters as much: a reader on a slow link loading a larger room holds more than
 * any stalled reader, and stalled readers on many addresses hold little each. Cut by size, it
 * was the reader that reads; cut by who has read nothing, it keeps loading.
 */
import * as Y from "yjs"
import { WebSocket } from "ws"
import { WebsocketProvider } from "y-websocket"
import { Hub } from "../core/index.js"
import { MemoryStorage } from "../adapters/memory/index.js"
import { WsServer, type WsServerEvent } from "../adapters/ws/index.js"
import { systemRuntime } from "../adapters/system/index.js"
import { yjsDocEngine, yjsRoute } from "../adapters/yjs-server/index.js"
import { decodeYMessage, encodeStep1, encodeUpdate, EMPTY_STATE_VECTOR } from "../adapters/yjs-server/protocol.js"
import { until } from "./support/ws.js"
import { slowLink } from "./support/slow-link.js"

const LIMIT = 12 * 2 ** 20
const ROOM_BYTES = 6_000_000

const open = (url: string, localAddress: string) => new Promise<WebSocket>((resolve, reject) => {
  const ws = new WebSocket(url, { localAddress, perMessageDeflate: false })
  ws.once("open", () => resolve(ws))
  ws.once("error", reject)
})

/** Writes `bytes` of text to the room at `url` from 127.0.0.1; resolves once the room has it, with the writer's socket. */
const fillRoom = async (url: string, bytes: number): Promise<WebSocket> => {
  const doc = new Y.Doc()
  doc.getText("t").insert(0, "x".repeat(bytes))
  const writer = await open(url, "127.0.0.1")
  // The route answers a step 1 after the update before it: its step 2 says the room has it.
  const stored = new Promise<void>((resolve) => writer.on("message", (data) => {
    if (decodeYMessage(new Uint8Array(data as Buffer)).type === "step2") resolve()
  }))
  writer.send(encodeUpdate(Y.encodeStateAsUpdate(doc)))
  writer.send(encodeStep1(Y.encodeStateVector(doc)))
  await stored
  return writer
}

test("readers that stop reading, on four addresses, hold at most maxUnsentBytes plus one message; a stock provider that reads loads the room", async () => {
  const hub = new Hub({ machines: [], storage: new MemoryStorage(), runtime: systemRuntime, sync: false, crdt: { engines: [yjsDocEngine()] } })
  const route = yjsRoute(hub.crdtDocs)
  // The route's sockets, to read what each holds unsent (ws's own count, not the budget's).
  const accepted: WebSocket[] = []
  const events: WsServerEvent[] = []
  const server = await WsServer.start(hub, {
    listen: [{ host: "127.0.0.1", port: 0 }], maxUnsentBytes: LIMIT, onEvent: (e) => events.push(e),
    routes: [{ prefix: route.prefix, ...(route.maxFrameBytes !== undefined ? { maxFrameBytes: route.maxFrameBytes } : {}), accept: (ws, info) => (accepted.push(ws), route.accept(ws, info)) }],
  })
  const url = `ws://127.0.0.1:${server.addresses()[0]!.port}/yjs/big`
  const sockets: WebSocket[] = []
  const heldByServer = () => accepted.reduce((sum, ws) => sum + (ws.readyState === WebSocket.OPEN ? ws.bufferedAmount : 0), 0)
  try {
    sockets.push(await fillRoom(url, ROOM_BYTES))

    let most = 0
    for (let i = 0; i < 16; i++) {
      const reader = await open(url, `127.0.0.${2 + (i % 4)}`)
      sockets.push(reader)
      ;(reader as unknown as { _socket: { pause(): void } })._socket.pause() // never reads
      reader.send(encodeStep1(EMPTY_STATE_VECTOR))
      await new Promise((r) => setTimeout(r, 150))
      most = Math.max(most, heldByServer())
    }
    await new Promise((r) => setTimeout(r, 500))
    most = Math.max(most, heldByServer())
    // Sixteen readers of 6 MB, a few MB of each taken by the kernel: tens of MB without the bound.
    expect(most).toBeLessThanOrEqual(LIMIT + ROOM_BYTES + 1024)
    expect(server.unsentBytes.cuts).toBeGreaterThan(0)
    expect(events.some((e) => e.type === "unsent-full")).toBe(true)

    // A stock provider on a fifth address, which reconnects as y-websocket does: while the
    // stalled readers are new, its own first sync is what is refused; once they count as
    // stalled, they are cut for it, and it loads the whole room.
    class FromNinth extends WebSocket {
      constructor(address: string, protocols?: string | string[]) {
        super(address, protocols, { localAddress: "127.0.0.9", perMessageDeflate: false })
      }
    }
    const got = new Y.Doc()
    const provider = new WebsocketProvider(url.replace(/\/big$/, ""), "big", got, { WebSocketPolyfill: FromNinth as never, maxBackoffTime: 500, disableBc: true })
    try {
      expect(await until(() => got.getText("t").length === ROOM_BYTES, 20_000)).toBe(true)
    } finally {
      provider.destroy()
    }
  } finally {
    for (const ws of sockets) ws.terminate()
    route.close()
    await server.close()
    await hub.close()
  }
  // Every socket closed: nothing is counted as held.
  expect(server.unsentBytes.held).toBe(0)
}, 60_000)

test("one update relayed to readers that keep up is not counted past what their kernels did not take: a fan-out larger than the limit cuts nobody", async () => {
  const hub = new Hub({ machines: [], storage: new MemoryStorage(), runtime: systemRuntime, sync: false, crdt: { engines: [yjsDocEngine()] } })
  const route = yjsRoute(hub.crdtDocs)
  const limit = 8 * 2 ** 20
  const server = await WsServer.start(hub, { listen: [{ host: "127.0.0.1", port: 0 }], maxUnsentBytes: limit, routes: [route] })
  const url = `ws://127.0.0.1:${server.addresses()[0]!.port}/yjs/fan`
  const sockets: WebSocket[] = []
  try {
    const readers: Y.Doc[] = []
    for (let i = 0; i < 24; i++) {
      const ws = await open(url, `127.0.0.${2 + (i % 4)}`)
      sockets.push(ws)
      const got = new Y.Doc()
      readers.push(got)
      ws.on("message", (data) => {
        const m = decodeYMessage(new Uint8Array(data as Buffer))
        if (m.type === "step2" || m.type === "update") Y.applyUpdate(got, m.update)
      })
      ws.send(encodeStep1(EMPTY_STATE_VECTOR))
    }
    const doc = new Y.Doc()
    doc.getText("t").insert(0, "y".repeat(1_000_000))
    // 23 readers x 1 MB: over 2.7 times the limit, written in one synchronous relay.
    sockets[0]!.send(encodeUpdate(Y.encodeStateAsUpdate(doc)))
    // The first socket wrote it; the others get it relayed.
    expect(await until(() => readers.slice(1).every((r) => r.getText("t").length === 1_000_000), 20_000)).toBe(true)
    expect(server.unsentBytes.cuts).toBe(0)
    expect(sockets.every((ws) => ws.readyState === WebSocket.OPEN)).toBe(true)
  } finally {
    for (const ws of sockets) ws.terminate()
    route.close()
    await server.close()
    await hub.close()
  }
}, 60_000)

test("a slow reader loading a larger room is not cut for stalled readers on many addresses, before it or after it", async () => {
  const hub = new Hub({ machines: [], storage: new MemoryStorage(), runtime: systemRuntime, sync: false, crdt: { engines: [yjsDocEngine()] } })
  const route = yjsRoute(hub.crdtDocs)
  const server = await WsServer.start(hub, { listen: [{ host: "127.0.0.1", port: 0 }], maxUnsentBytes: LIMIT, routes: [route] })
  const port = server.addresses()[0]!.port
  const sockets: WebSocket[] = []
  const link = await slowLink(port, 2_000_000)
  try {
    sockets.push(await fillRoom(`ws://127.0.0.1:${port}/yjs/small`, ROOM_BYTES))
    sockets.push(await fillRoom(`ws://127.0.0.1:${port}/yjs/large`, 8_000_000))
    let address = 2
    const stall = async () => {
      const reader = await open(`ws://127.0.0.1:${port}/yjs/small`, `127.0.0.${address++}`)
      sockets.push(reader)
      ;(reader as unknown as { _socket: { pause(): void } })._socket.pause()
      reader.send(encodeStep1(EMPTY_STATE_VECTOR))
    }
    // Stalled readers before it, one per address, past the grace by the time it comes.
    for (let i = 0; i < 6; i++) await stall()
    await new Promise((r) => setTimeout(r, 5_500))

    const honest = await open(`ws://127.0.0.1:${link.port}/yjs/large`, "127.0.0.1")
    sockets.push(honest)
    const got = new Y.Doc()
    honest.on("message", (data) => {
      const m = decodeYMessage(new Uint8Array(data as Buffer))
      if (m.type === "step2" || m.type === "update") Y.applyUpdate(got, m.update)
    })
    let closed = false
    honest.on("close", () => (closed = true))
    honest.send(encodeStep1(EMPTY_STATE_VECTOR))
    // And more after it, one every 300 ms, each from a new address, while it loads (bounded: 40).
    const end = Date.now() + 30_000
    while (got.getText("t").length < 8_000_000 && !closed && Date.now() < end && address < 48) {
      await stall()
      await new Promise((r) => setTimeout(r, 300))
    }
    expect(await until(() => got.getText("t").length === 8_000_000 || closed, 30_000)).toBe(true)
    expect(closed).toBe(false)
    expect(got.getText("t").length).toBe(8_000_000)
    expect(server.unsentBytes.cuts).toBeGreaterThan(0)
  } finally {
    for (const ws of sockets) ws.terminate()
    link.close()
    route.close()
    await server.close()
    await hub.close()
  }
}, 90_000)

test("readers of one client that keep reading and fill the bound make room for a stock provider from another: it loads on its first connection", async () => {
  const hub = new Hub({ machines: [], storage: new MemoryStorage(), runtime: systemRuntime, sync: false, crdt: { engines: [yjsDocEngine()] } })
  const route = yjsRoute(hub.crdtDocs)
  const server = await WsServer.start(hub, { listen: [{ host: "127.0.0.1", port: 0 }], maxUnsentBytes: LIMIT, routes: [route] })
  const port = server.addresses()[0]!.port
  const sockets: WebSocket[] = []
  // Each reader through it reads 400 KB/s: never stalled, and what it holds leaves in seconds
  // (not slow). All of them reach the hub from the proxy's one address.
  const link = await slowLink(port, 400_000)
  let provider: WebsocketProvider | undefined
  try {
    sockets.push(await fillRoom(`ws://127.0.0.1:${port}/yjs/big`, ROOM_BYTES))
    for (let i = 0; i < 6; i++) {
      const reader = await open(`ws://127.0.0.1:${link.port}/yjs/big`, "127.0.0.1")
      sockets.push(reader)
      reader.send(encodeStep1(EMPTY_STATE_VECTOR))
      await new Promise((r) => setTimeout(r, 300))
    }
    expect(await until(() => server.unsentBytes.held > LIMIT - ROOM_BYTES, 10_000)).toBe(true)
    const cutBefore = server.unsentBytes.cuts

    class FromNinth extends WebSocket {
      constructor(address: string, protocols?: string | string[]) {
        super(address, protocols, { localAddress: "127.0.0.9", perMessageDeflate: false })
      }
    }
    const got = new Y.Doc()
    let connects = 0
    provider = new WebsocketProvider(`ws://127.0.0.1:${port}/yjs`, "big", got, { WebSocketPolyfill: FromNinth as never, maxBackoffTime: 500, disableBc: true })
    provider.on("status", (e: { status: string }) => void (e.status === "connected" && connects++))
    expect(await until(() => got.getText("t").length === ROOM_BYTES, 20_000)).toBe(true)
    // Room was made from the readers' client, over its share of the bound; the newcomer was not refused.
    expect(connects).toBe(1)
    expect(server.unsentBytes.cuts).toBeGreaterThan(cutBefore)
  } finally {
    provider?.destroy()
    for (const ws of sockets) ws.terminate()
    link.close()
    route.close()
    await server.close()
    await hub.close()
  }
}, 60_000)

test("a server refuses a bound under 8 MiB, naming it: below what one reader is sent while it reads, a large document never reaches it", () => {
  const hub = new Hub({ machines: [], storage: new MemoryStorage(), runtime: systemRuntime, sync: false })
  for (const bad of [1, 2 ** 20, 8 * 2 ** 20 - 1, Number.NaN]) {
    expect(() => new WsServer(hub, { listen: [{ host: "127.0.0.1", port: 0 }], maxUnsentBytes: bad })).toThrow(/maxUnsentBytes must be at least 8388608 bytes/)
  }
  expect(() => new WsServer(hub, { listen: [{ host: "127.0.0.1", port: 0 }], maxUnsentBytes: Infinity })).not.toThrow()
  return hub.close()
})
