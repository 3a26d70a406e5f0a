/**
 * The WebSocket server encodes a presence message the hub relays to many followers once, and
 * sends every one of them that frame (adapters/ws/server.ts `fanout`, as for `entries`). Before,
 * only entries frames were shared: 60 clients renewing a 4 KiB presence each made the hub encode
 * every relay once per receiver, quadratic in followers (review r15, finding 2, flood: 126 MiB/s
 * at 63% of a core). The hub sends one object per relayed presence (followers.ts); the test
 * counts how often the server reads that object's state, i.e. encodes it.
 *
 * Over real sockets on 127.0.0.1; every wait is bounded.
 */
import { WebSocket } from "ws"
import type { Connection, ConnectionAcceptor, ServerMessage } from "../core/index.js"
import { decodeServerMessage } from "../core/internal.js"
import { WsServer } from "../adapters/ws/index.js"
import { until } from "./support/ws.js"

const cleanup: Array<() => Promise<unknown> | void> = []
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f()
})

test("one presence message sent to many connections is encoded once, and each receives it whole", async () => {
  const conns: Array<Connection<ServerMessage>> = []
  const acceptor: ConnectionAcceptor = {
    accept: (conn) => {
      conns.push(conn)
      return { onMessage: () => {}, onClose: () => {} }
    },
  }
  const server = await WsServer.start(acceptor, { listen: [{ host: "127.0.0.1", port: 0 }] })
  cleanup.push(() => server.close())
  const received: ServerMessage[][] = []
  for (let i = 0; i < 5; i++) {
    const ws = new WebSocket(server.urls()[0]!, { perMessageDeflate: false })
    const got: ServerMessage[] = []
    received.push(got)
    ws.on("message", (data) => {
      const r = decodeServerMessage(new Uint8Array(data as Buffer), { version: 1 })
      if (r.ok === true) got.push(r.message)
    })
    ws.on("error", () => {})
    cleanup.push(() => ws.terminate())
    await new Promise((resolve, reject) => { ws.once("open", resolve); ws.once("error", reject) })
  }
  expect(await until(() => conns.length === 5, 2_000)).toBe(true)

  let encodes = 0
  const state = { cursor: "x".repeat(4000) }
  const message = {
    type: "presence", docId: "room", clientId: "someone",
    get state() {
      encodes++
      return state
    },
  } as ServerMessage
  for (const c of conns) c.send(message)
  expect(await until(() => received.every((r) => r.length === 1), 2_000)).toBe(true)
  for (const r of received) expect(r[0]).toEqual({ type: "presence", docId: "room", clientId: "someone", state })
  expect(encodes).toBe(1)
})
