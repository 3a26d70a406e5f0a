/**
 * Child process of test/client-hostile-hub.test.ts: a raw WebSocket "hub" on 127.0.0.1 that
 * welcomes a CanonClient (Node's ws transport), then sends its document a state frame of bytes
 * that are no canonical value. Prints "survived: <the document's error code>" and exits 0 if
 * the client process lives through it; an uncaught exception exits 1 with the stack.
 */
import { WebSocketServer } from "ws"
import { CanonClient } from "../../core/index.js"
import { encodeServerMessage } from "../../core/internal.js"
import { MemoryStorage } from "../../adapters/memory/index.js"
import { systemRuntime } from "../../adapters/system/index.js"
import { wsClientTransport } from "../../adapters/ws/index.js"
import { Todo } from "./machines.js"

const wss = new WebSocketServer({ host: "127.0.0.1", port: 0 })
await new Promise((r) => wss.on("listening", r))
const { port } = wss.address() as { port: number }
wss.on("connection", (ws) => {
  ws.on("message", () => {})
  ws.send(encodeServerMessage({ type: "welcome", protocol: 1, clientId: "c1" }))
  setTimeout(() => ws.send(encodeServerMessage({ type: "state", docId: "list", seq: 3, hash: "x", state: Uint8Array.of(0xff, 0xff) })), 50)
})
const giveUp = setTimeout(() => {
  console.log("no error event within 10 s")
  process.exit(2)
}, 10_000)
const client = await CanonClient.open({ transport: wsClientTransport(`ws://127.0.0.1:${port}/`), runtime: systemRuntime, storage: new MemoryStorage(), clientId: "c1", machines: [Todo] })
const doc = await client.open(Todo, "list")
doc.on("error", (e) => {
  // Let the rest of the frame's handling run: a throw after the event would still kill us.
  setTimeout(async () => {
    clearTimeout(giveUp)
    console.log(`survived: ${e.code}`)
    await client.close()
    wss.close()
    process.exit(0)
  }, 200)
})
