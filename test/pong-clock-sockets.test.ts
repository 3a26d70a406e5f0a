/**
 * The liveness rule's byte counts (adapters/ws/pong-clock.ts) on real sockets on 127.0.0.1,
 * plain and TLS: where a ping sits (`sentBytes`) and what left (`deliveredBytes`) are counted in
 * the same bytes, so a peer that answered a ping after many small frames has nothing left to
 * read and owes its next pong within the timeout. Over TLS, what left is counted in the TCP
 * socket's bytes (records and handshake included); a ping's place was counted in plaintext,
 * so what a pong showed read fell behind by some 22 bytes a frame, and after a few thousand
 * frames every wait had a long allowance for bytes that were never unread (review r22).
 */
import * as http from "node:http"
import * as https from "node:https"
import type { AddressInfo } from "node:net"
import { WebSocket, WebSocketServer } from "ws"
import { deliveredBytes, PongClock, sentBytes } from "../adapters/ws/pong-clock.js"
import { selfSigned } from "./support/self-signed.js"
import { until } from "./support/ws.js"

test.each([["ws://", false], ["wss://", true]])("%s: after a pong, a peer that has read everything owes its next pong within the timeout, however many frames came before", async (_name, secure) => {
  const tls = secure ? selfSigned() : undefined
  const app = tls !== undefined ? https.createServer(tls) : http.createServer()
  await new Promise<void>((resolve) => app.listen(0, "127.0.0.1", resolve))
  const wss = new WebSocketServer({ server: app, perMessageDeflate: false })
  const accepted = new Promise<WebSocket>((resolve) => wss.once("connection", resolve))
  const client = new WebSocket(`${secure ? "wss" : "ws"}://127.0.0.1:${(app.address() as AddressInfo).port}/`, { perMessageDeflate: false, ...(tls !== undefined ? { ca: tls.cert } : {}) })
  client.on("error", () => {})
  let received = 0
  client.on("message", () => received++)
  try {
    const ws = await accepted
    const clock = new PongClock()
    let answered = false
    ws.on("pong", (data) => { answered ||= clock.pong(data) })
    // 3,000 frames of 40 bytes, each written on its own (its own TLS record).
    const frames = 3_000
    for (let i = 0; i < frames; i++) {
      ws.send(Buffer.alloc(40, i))
      await new Promise((resolve) => setImmediate(resolve))
    }
    expect(await until(() => received === frames && ws.bufferedAmount === 0, 10_000)).toBe(true)
    const timeout = 30_000
    let now = 1_000_000
    expect(clock.overdue(ws, now, timeout)).toBe(false)
    clock.sendPing(ws, now)
    expect(await until(() => answered, 5_000)).toBe(true)
    // Everything was read, the ping included: a place and a count in the same bytes agree.
    expect(sentBytes(ws)).toBe(deliveredBytes(ws))
    // The peer falls silent from here (a half-open link): its next pong is owed in full.
    now += 1_000
    expect(clock.overdue(ws, now, timeout)).toBe(false)
    clock.ping(now, sentBytes(ws))
    expect(clock.owed(now + timeout)).toBeGreaterThan(timeout - 1_000)
  } finally {
    client.terminate()
    wss.close()
    app.closeAllConnections()
    await new Promise((resolve) => app.close(resolve))
  }
})
