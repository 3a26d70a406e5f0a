/**
 * ATTACK (high): a peer that stops reading makes a listening replica buffer without bound.
 *
 * Mechanism: socketLink.send (ws-listen.ts) and connectWsLink's send call ws.send with no look
 * at bufferedAmount, and nothing (no ping, no idle timeout, no "too far behind" close like
 * the hub's maxBufferedBytes = 8 MiB) ever drops a peer that does not drain. A peer connects,
 * stops reading its socket (TCP window closes), and keeps the connection open: every update
 * the victim makes or relays from other peers, plus every step1 the attacker sends (each
 * answered with the whole document, see peer-attack-step1-amplification.test.ts), is queued
 * in the victim's process memory for as long as the attacker likes.
 * Measured: victim makes 240 edits of 200 KB (48 MB) while the peer is stalled; when the
 * peer finally reads, 48 MB had been queued for it (the victim's arrayBuffers grew ~50 MB
 * during the stall). Expected once fixed: a stalled peer is dropped (or sends skipped and the
 * handshake re-run) past a bound of a few MiB, as the hub does.
 */
import * as Y from "yjs"
import { WebSocket } from "ws"
import type { Socket } from "node:net"
import { YSyncSession } from "../adapters/peer/index.js"
import { listenWsLinks } from "../adapters/peer/ws-listen.js"
import { sleep } from "./support/ws.js"

test("a peer that never reads cannot make the victim queue tens of MB for it", async () => {
  const doc = new Y.Doc()
  const listener = await listenWsLinks({ host: "127.0.0.1", port: 0 }, (link) => new YSyncSession(doc, link))
  const ws = new WebSocket(`ws://127.0.0.1:${listener.port}/`)
  ws.on("error", () => {})
  try {
    let received = 0
    let closed = false
    ws.on("message", (d: Buffer) => { received += d.length })
    ws.on("close", () => { closed = true })
    await new Promise<void>((r) => ws.once("open", () => r()))
    await sleep(50)
    // The attacker stops reading (the connection stays open).
    ;(ws as unknown as { _socket: Socket })._socket.pause()
    received = 0
    const ab0 = process.memoryUsage().arrayBuffers
    const map = doc.getMap<string>("m")
    for (let i = 0; i < 240; i++) {
      map.set(`k${i}`, String.fromCharCode(97 + (i % 26)).repeat(200_000))
      if (i % 20 === 0) await sleep(5)
    }
    await sleep(300)
    const grown = process.memoryUsage().arrayBuffers - ab0
    // Now it reads: how much had the victim kept for it?
    ;(ws as unknown as { _socket: Socket })._socket.resume()
    let last = -1
    const end = Date.now() + 10_000
    while (received !== last && Date.now() < end) { last = received; await sleep(300) }
    console.log(`victim queued ${(received / 1e6).toFixed(1)} MB for a stalled peer (arrayBuffers +${(grown / 1e6).toFixed(1)} MB during the stall); closed by victim: ${closed}`)
    expect(received).toBeLessThanOrEqual(24e6)
    // It was dropped (1013); a peer that reads again reconnects and its handshake fetches what it missed.
    expect(closed).toBe(true)
  } finally {
    ws.terminate()
    await listener.close()
  }
}, 30_000)
