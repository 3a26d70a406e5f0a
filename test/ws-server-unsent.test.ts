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
 * one message, the addresses' largest readers are cut, and a reader that reads still loads
 * the room in full.
 */
import * as Y from "yjs"
import { WebSocket } from "ws"
import { Hub } from "../core/index.js"
import { MemoryStorage } from "../adapters/memory/index.js"
import { WsServer, type WsServerEvent } from "../adapters/ws/index.js"
import { systemRuntime } from "../adapters/system/index.js"
import { yjsDocEngine, yjsRoute } from "../adapters/yjs-server/index.js"
import { decodeYMessage, encodeStep1, encodeUpdate, EMPTY_STATE_VECTOR } from "../adapters/yjs-server/protocol.js"
import { until } from "./support/ws.js"

const LIMIT = 12 * 2 ** 20
const ROOM_BYTES = 6_000_000

const open = (url: string, localAddress: string) => new Promise<WebSocket>((resolve, reject) => {
  const ws = new WebSocket(url, { localAddress, perMessageDeflate: false })
  ws.once("open", () => resolve(ws))
  ws.once("error", reject)
})

test("readers that stop reading, on four addresses, hold at most maxUnsentBytes plus one message; a reader that reads loads the room", async () => {
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
    const doc = new Y.Doc()
    doc.getText("t").insert(0, "x".repeat(ROOM_BYTES))
    const writer = await open(url, "127.0.0.1")
    sockets.push(writer)
    // The route answers a step 1 after the update before it: its step 2 says the room has it.
    const stored = new Promise<void>((resolve) => writer.on("message", (data) => {
      if (decodeYMessage(new Uint8Array(data as Buffer)).type === "step2") resolve()
    }))
    writer.send(encodeUpdate(Y.encodeStateAsUpdate(doc)))
    writer.send(encodeStep1(Y.encodeStateVector(doc)))
    await stored

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

    // A reader that reads, on a fifth address, gets the whole room.
    const honest = await open(url, "127.0.0.9")
    sockets.push(honest)
    const got = new Y.Doc()
    honest.on("message", (data) => {
      const m = decodeYMessage(new Uint8Array(data as Buffer))
      if (m.type === "step2" || m.type === "update") Y.applyUpdate(got, m.update)
    })
    honest.send(encodeStep1(EMPTY_STATE_VECTOR))
    expect(await until(() => got.getText("t").length === ROOM_BYTES, 20_000)).toBe(true)
    expect(honest.readyState).toBe(WebSocket.OPEN)
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
  const limit = 4 * 2 ** 20
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
    // 23 readers x 1 MB: over five times the limit, written in one synchronous relay.
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
