/**
 * An honest client on a slow link loads a large document on /yjs. The hub sends the whole
 * document in one message, and its ping waits behind it: a reader at 1 MB/s takes about 10 s
 * for this 10 MB document, past the route's pong timeout (1.5 s here). With only a pong as a sign
 * of life, the hub terminated it before it got there, and again at every reconnect, since each
 * connection starts the document over: such a client never loaded the document (attack review
 * r16, finding 2: a stock provider at 128 KiB/s on a 5 MB document, closed at 36 s and 67 s).
 * Now what the hub sent leaving its buffers at a reader's pace counts too, and once they are
 * empty the reader is given time for what the kernel still holds at the pace it was seen
 * reading (adapters/ws/pong-clock.ts), so it stays connected and syncs in one connection.
 *
 * The slow link is a TCP proxy on 127.0.0.1 that reads the hub's socket at RATE, so what the
 * kernel's buffers cannot take stays in the hub, as on a real slow link. What the kernel
 * buffers on loopback (about 4 MB: 4 s at RATE) is itself past the pong timeout: without the
 * time given for it, the reader was dropped near the end.
 */
import * as net from "node:net"
import * as Y from "yjs"
import { WebSocket } from "ws"
import { WebsocketProvider } from "y-websocket"
import { yjsDocEngine, yjsRoute } from "../adapters/yjs-server/index.js"
import { crdtRoutesHub } from "./support/crdt-routes.js"
import { noise } from "./support/noise.js"
import { until } from "./support/ws.js"

const RATE = 1 << 20
const KEEPALIVE_MS = 500

/** A proxy to `port` that passes what the hub sends at `rate` bytes a second (what the client sends, at once). */
const slowLink = (port: number, rate: number) => new Promise<{ port: number; close(): void; sockets: Set<net.Socket> }>((resolve) => {
  const sockets = new Set<net.Socket>()
  const server = net.createServer((down) => {
    const up = net.connect(port, "127.0.0.1")
    sockets.add(up).add(down)
    down.on("data", (d) => up.write(d))
    up.on("data", (d) => {
      down.write(d)
      up.pause()
      setTimeout(() => up.resume(), (d.length / rate) * 1000)
    })
    const end = () => { up.destroy(); down.destroy() }
    for (const s of [up, down]) { s.on("close", end); s.on("error", end) }
  })
  server.listen(0, "127.0.0.1", () => resolve({
    port: (server.address() as net.AddressInfo).port,
    sockets,
    close: () => {
      for (const s of sockets) s.destroy()
      server.close()
    },
  }))
})

test("a stock provider reading at 1 MB/s loads a 10 MB document in one connection, its ping queued behind it", async () => {
  const { hub, server, stop } = await crdtRoutesHub([yjsDocEngine()], (host) => [yjsRoute(host, { keepaliveMs: KEEPALIVE_MS })])
  // The document, in two updates of 5 MB (each within the route's update limit).
  const source = new Y.Doc()
  const text = source.getText("t")
  const authority = await hub.crdtDocs.open<Y.Doc>("yjs", "big")
  for (let i = 0; i < 2; i++) {
    const before = Y.encodeStateVector(source)
    text.insert(text.length, noise(5 << 20, i + 1))
    expect((await authority.submit([Y.encodeStateAsUpdate(source, before)])).stored).toBe(1)
  }
  hub.crdtDocs.release(authority)
  const link = await slowLink(server.addresses()[0]!.port, RATE)
  const reader = new WebsocketProvider(`ws://127.0.0.1:${link.port}/yjs`, "big", new Y.Doc(), {
    WebSocketPolyfill: WebSocket as never, params: { token: "bob" }, disableBc: true, maxBackoffTime: 100,
  })
  let closes = 0
  reader.on("connection-close", () => closes++)
  try {
    const started = Date.now()
    // A hang bound: about 10 s at RATE.
    expect(await until(() => reader.doc.getText("t").length === text.length, 60_000)).toBe(true)
    const seconds = (Date.now() - started) / 1000
    // It took longer than the pong timeout, so a pong alone could not have kept it.
    expect(seconds * 1000).toBeGreaterThan(3 * KEEPALIVE_MS)
    expect(closes).toBe(0)
    expect(reader.doc.getText("t").toString()).toBe(text.toString())
  } finally {
    reader.destroy()
    reader.doc.destroy() // stops its awareness timer
    link.close()
    await stop()
  }
}, 120_000)
