/**
 * The raw `ws` server of the `wire` suite in its own process (as the Canon hub is): no Canon,
 * two paths on 127.0.0.1: /count counts 50-byte binary messages and answers a 4-byte ack
 * every `ackEvery`; /echo sends each message back.
 *
 * argv[2]: `{"ackEvery": 100, "messageBytes": 50}`
 */
import * as http from "node:http"
import { WebSocketServer, type RawData } from "ws"
import { serveParent } from "./wire-process.js"

const spec = JSON.parse(process.argv[2] ?? "{}") as { ackEvery: number; messageBytes: number }

const size = (data: RawData): number =>
  Array.isArray(data) ? data.reduce((n, b) => n + b.length, 0) : data instanceof ArrayBuffer ? data.byteLength : data.length

const server = http.createServer()
const wss = new WebSocketServer({ server, perMessageDeflate: false, clientTracking: true })
wss.on("connection", (ws, req) => {
  ws.on("error", () => {})
  if (req.url === "/echo") {
    ws.on("message", (data, isBinary) => ws.send(data as Buffer, { binary: isBinary }))
    return
  }
  let received = 0
  const ack = Buffer.alloc(4)
  ws.on("message", (data) => {
    // A wrong size is the parent's bug: close the connection so its run fails, not hangs.
    if (size(data) !== spec.messageBytes) return ws.close(1008, "wrong size")
    received++
    if (received % spec.ackEvery === 0) {
      ack.writeUInt32LE(received >>> 0)
      ws.send(ack)
    }
  })
})
const listening = new Promise<void>((resolve, reject) => {
  server.once("error", reject)
  server.listen(0, "127.0.0.1", () => resolve())
})

serveParent({
  ready: async () => {
    await listening
    return { url: `ws://127.0.0.1:${(server.address() as { port: number }).port}`, pid: process.pid }
  },
  close: async () => {
    for (const ws of wss.clients) ws.terminate()
    await new Promise<void>((resolve) => wss.close(() => resolve()))
    server.closeAllConnections()
    await new Promise<void>((resolve) => server.close(() => resolve()))
  },
})
