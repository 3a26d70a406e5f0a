/**
 * Guards adapters/ws/pong-clock.ts's cap on unanswered pings (MAX_UNANSWERED_PINGS) against
 * the client it exists for: a stock `ws` client (8.23 on, Canon's Node transport) terminates
 * itself when more than 60 pings reach it before it has sent their pongs (`maxPendingAutoPongs`),
 * which is what happens when pings queue behind something on the way (a large message, a
 * stalled proxy) and arrive at once. The hub sends none past the cap, so such a client, late
 * but within the pong timeout, stays; one that stays silent past the timeout is dropped by the
 * hub, not before. The unit tests count pings against the constant itself; nothing held the
 * cap under ws's real limit on a real socket: the /sync route's sweep pinging on its own past
 * the cap (`peer.ws.ping(peer.pongs.ping(now))`) went unnoticed (mutation review).
 *
 * A real WsServer on 127.0.0.1 with 10-50 ms pings; between it and the client a TCP proxy that
 * can hold what the hub sends and release it in one write, counting the frames (pings, and the
 * keepalive every interval sends). Waits are bounded and keyed on counts, not on timings.
 */
import * as net from "node:net"
import type { WebSocket } from "ws"
import { CanonClient, Hub } from "../core/index.js"
import { MemoryStorage } from "../adapters/memory/index.js"
import { systemRuntime } from "../adapters/system/index.js"
import { WsServer, wsClientTransport, type WsServerEvent } from "../adapters/ws/index.js"
import { MAX_UNANSWERED_PINGS } from "../adapters/ws/pong-clock.js"
import { Counter } from "./support/machines.js"
import { until } from "./support/ws.js"

const cleanup: Array<() => Promise<unknown> | void> = []
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f()
})

/** ws's `maxPendingAutoPongs` default (8.23): the 61st ping with 60 pongs unsent terminates the client. */
const WS_MAX_PENDING_AUTO_PONGS = 60

/**
 * A proxy to `port` (one connection): what the client sends passes at once; what the hub sends
 * passes too, unless held (`hold`), then goes in one write (`release`). Counts the hub's frames
 * (after the upgrade response) by opcode: pings (0x9) and binary (0x2, the keepalives).
 */
const holdingProxy = (port: number) => new Promise<{
  port: number
  counts: { pings: number; binary: number }
  hold(): void
  release(): void
  close(): void
}>((resolve) => {
  const sockets = new Set<net.Socket>()
  const counts = { pings: 0, binary: 0 }
  let held: Buffer[] | undefined
  let down: net.Socket | undefined
  const server = net.createServer((client) => {
    down = client
    const up = net.connect(port, "127.0.0.1")
    sockets.add(up).add(client)
    client.on("data", (d) => up.write(d))
    let head = true
    let pending = Buffer.alloc(0)
    up.on("data", (d) => {
      if (held !== undefined) held.push(d)
      else client.write(d)
      pending = Buffer.concat([pending, d])
      if (head) {
        const end = pending.indexOf("\r\n\r\n")
        if (end < 0) return
        pending = pending.subarray(end + 4)
        head = false
      }
      // Server frames are unmasked: opcode, then a 7-bit length (126: 16-bit, 127: 64-bit).
      for (;;) {
        if (pending.length < 2) break
        const opcode = pending[0]! & 0x0f
        let len = pending[1]! & 0x7f
        let at = 2
        if (len === 126) {
          if (pending.length < 4) break
          len = pending.readUInt16BE(2)
          at = 4
        } else if (len === 127) {
          if (pending.length < 10) break
          len = Number(pending.readBigUInt64BE(2))
          at = 10
        }
        if (pending.length < at + len) break
        if (opcode === 0x9) counts.pings++
        else if (opcode === 0x2) counts.binary++
        pending = pending.subarray(at + len)
      }
    })
    const end = () => { up.destroy(); client.destroy() }
    for (const s of [up, client]) { s.on("close", end); s.on("error", end) }
  })
  server.listen(0, "127.0.0.1", () => resolve({
    port: (server.address() as net.AddressInfo).port,
    counts,
    hold: () => void (held ??= []),
    release: () => {
      const all = Buffer.concat(held ?? [])
      held = undefined
      down?.write(all)
    },
    close: () => {
      for (const s of sockets) s.destroy()
      server.close()
    },
  }))
})

/** A hub on a real WebSocket server on 127.0.0.1; what the server reports is recorded. */
const start = async (pingIntervalMs: number, pongTimeoutMs: number) => {
  const events: WsServerEvent[] = []
  const hub = new Hub({ machines: [Counter], storage: new MemoryStorage(), runtime: systemRuntime })
  const server = await WsServer.start(hub, { listen: [{ host: "127.0.0.1", port: 0 }], pingIntervalMs, pongTimeoutMs, onEvent: (e) => void events.push(e) })
  cleanup.push(() => hub.close(), () => server.close())
  return { hub, server, events }
}

/**
 * A Canon client (the Node transport: stock `ws`) through a holding proxy to `server`, online
 * with a document open. Each socket it opens is recorded with the pings it saw and its close.
 */
const clientThroughProxy = async (server: WsServer) => {
  const url = new URL(server.urls()[0]!)
  const proxy = await holdingProxy(Number(url.port))
  cleanup.push(() => proxy.close())
  url.port = String(proxy.port)
  const sockets: Array<{ pings: number; closed?: number }> = []
  const onSocket = (ws: WebSocket) => {
    const s: { pings: number; closed?: number } = { pings: 0 }
    sockets.push(s)
    ws.on("ping", () => void s.pings++)
    ws.on("close", (code) => void (s.closed = code))
  }
  const client = await CanonClient.open({ transport: wsClientTransport(url.toString(), { idleTimeoutMs: 60_000, onSocket }), runtime: systemRuntime, machines: [Counter] })
  cleanup.push(() => client.close())
  const doc = await client.open(Counter, "d")
  expect(await until(() => client.status === "online", 5_000)).toBe(true)
  await doc.submit("incr", { by: 1 })
  return { client, doc, proxy, sockets }
}

test("a stock ws client that gets more than 60 ping intervals' traffic at once, within the pong timeout, is sent at most MAX_UNANSWERED_PINGS pings and stays connected", async () => {
  // Pings every 10 ms; a pong timeout far past the hold (the hub must not drop it either).
  const { server, events } = await start(10, 20_000)
  const { client, doc, proxy, sockets } = await clientThroughProxy(server)
  expect(sockets).toHaveLength(1)

  // Hold what the hub sends until more than 60 intervals have gone by (a keepalive each), with a margin.
  const before = { ...proxy.counts }
  proxy.hold()
  const intervals = WS_MAX_PENDING_AUTO_PONGS + 20
  expect(await until(() => proxy.counts.binary - before.binary >= intervals, 15_000)).toBe(true)
  const heldPings = proxy.counts.pings - before.pings
  const pingsSeen = sockets[0]!.pings
  proxy.release()

  // The client reads them all at once: every held ping reaches it, it answers, and the hub
  // pings again (the pong to the last answered them all).
  expect(await until(() => sockets[0]!.closed !== undefined || sockets[0]!.pings >= pingsSeen + heldPings + 5, 10_000)).toBe(true)
  expect(sockets[0]!.closed).toBeUndefined() // it did not terminate itself
  expect(heldPings).toBeGreaterThan(0)
  expect(heldPings).toBeLessThanOrEqual(MAX_UNANSWERED_PINGS)
  expect(MAX_UNANSWERED_PINGS).toBeLessThanOrEqual(WS_MAX_PENDING_AUTO_PONGS)

  // Still the one connection, and it works.
  await doc.submit("incr", { by: 1 })
  expect(doc.state).toEqual({ value: 2 })
  expect(sockets).toHaveLength(1)
  expect(sockets[0]!.closed).toBeUndefined()
  expect(client.status).toBe("online")
  expect(events.filter((e) => e.type === "timeout")).toEqual([])
}, 30_000)

test("a stock ws client silent past the pong timeout is dropped by the hub, not before; one that answers late within it stays", async () => {
  const pingIntervalMs = 50
  const pongTimeoutMs = 1_000
  const { hub, server, events } = await start(pingIntervalMs, pongTimeoutMs)
  const late = await clientThroughProxy(server)
  const deaf = await clientThroughProxy(server)
  expect(await until(() => hub.stats().connections === 2, 5_000)).toBe(true)

  // Both stop hearing the hub (so stop answering its pings); the late one for a few intervals.
  const heldAt = performance.now()
  late.proxy.hold()
  deaf.proxy.hold()
  const deafBefore = deaf.proxy.counts.binary
  const lateBefore = late.proxy.counts.binary
  expect(await until(() => late.proxy.counts.binary - lateBefore >= 5, 5_000)).toBe(true)
  late.proxy.release()

  // The deaf one is dropped by the hub (a timeout, no close frame: its socket ends), after
  // at least the pong timeout (less the interval: the oldest ping it owed may predate the hold).
  expect(await until(() => events.some((e) => e.type === "timeout"), 10_000)).toBe(true)
  const droppedAfter = performance.now() - heldAt
  expect(droppedAfter).toBeGreaterThanOrEqual(pongTimeoutMs - pingIntervalMs)
  // And at about the pong timeout, counted in the hub's own ping intervals (a keepalive each,
  // never more than one per interval of wall time): some 20, not many more.
  expect(deaf.proxy.counts.binary - deafBefore).toBeLessThanOrEqual((1.5 * pongTimeoutMs) / pingIntervalMs)
  expect(await until(() => deaf.sockets[0]!.closed !== undefined, 5_000)).toBe(true)
  expect(events.filter((e) => e.type === "timeout")).toHaveLength(1)

  // The late one is still on its first socket, a pong timeout later, and works.
  const until2 = performance.now() + pongTimeoutMs
  expect(await until(() => late.sockets[0]!.closed !== undefined || performance.now() >= until2, pongTimeoutMs + 1_000)).toBe(true)
  expect(late.sockets).toHaveLength(1)
  expect(late.sockets[0]!.closed).toBeUndefined()
  await late.doc.submit("incr", { by: 1 })
  expect(late.doc.state.value).toBeGreaterThanOrEqual(3)
  expect(events.filter((e) => e.type === "timeout")).toHaveLength(1)
}, 30_000)
