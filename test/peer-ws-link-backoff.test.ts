/**
 * ATTACK (medium): reconnect storm. connectWsLink resets its backoff (`failures = 0`) in
 * onopen, i.e. as soon as the TCP+HTTP upgrade succeeds, not after the connection proved
 * stable. A server that accepts and then closes at once (the hub's own 4503 "unavailable"
 * and 1013 "too far behind" closes, an overloaded or hostile peer, or a listener whose 1 MiB
 * maxPayload closes with 1009 on every handshake because the doc outgrew it) is therefore
 * retried every 50-100 ms forever instead of backing off to 2.5 s: every client re-runs the
 * full handshake (step1, plus a full step2 answer) ~10-15 times a second, which is
 * exactly the load that made the server shed it. With N clients after a hub restart that is
 * a sustained N x 12 connections/s thundering herd.
 * Measured: 3 s against an accept-then-close(4503) server -> ~35-40 connections (expected with
 * the documented doubling backoff 100 ms..2.5 s, jittered: at most ~7).
 */
import { WebSocketServer, WebSocket } from "ws"
import { connectWsLink } from "../adapters/peer/index.js"
import { sleep } from "./support/ws.js"

test("a server that accepts then closes at once is retried with a growing backoff, not every ~75 ms", async () => {
  const wss = new WebSocketServer({ host: "127.0.0.1", port: 0 })
  await new Promise<void>((r) => wss.once("listening", () => r()))
  const port = (wss.address() as { port: number }).port
  let connections = 0
  wss.on("connection", (ws) => {
    connections++
    ws.close(4503, "unavailable")
  })
  const closes: number[] = []
  const link = connectWsLink(`ws://127.0.0.1:${port}/`, { WebSocket, onClose: (code) => closes.push(code) })
  try {
    await sleep(3_000)
    console.log(`${connections} connections in 3 s; close codes ${JSON.stringify([...new Set(closes)])}`)
    expect(connections).toBeLessThanOrEqual(10)
  } finally {
    link.close()
    for (const c of wss.clients) c.terminate()
    await new Promise<void>((r) => wss.close(() => r()))
  }
})
