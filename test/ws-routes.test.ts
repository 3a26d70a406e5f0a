/**
 * WsServer routes: other protocols mounted under path prefixes (the y-websocket endpoint
 * here) go through the same upgrade checks as Canon sockets: verifyUpgrade, the per-address
 * cap; the Canon `path` keeps working beside them; the hub's close reaches routed documents.
 */
import { WebSocket } from "ws"
import { Hub } from "../core/index.js"
import { MemoryStorage } from "../adapters/memory/index.js"
import { WsServer } from "../adapters/ws/index.js"
import { systemRuntime } from "../adapters/system/index.js"
import { yjsDocEngine, yjsRoute } from "../adapters/yjs-server/index.js"
import { decodeYMessage } from "../adapters/yjs-server/protocol.js"
import { until } from "./support/ws.js"

const connect = (url: string, headers: Record<string, string> = {}) =>
  new Promise<{ ws: WebSocket; status: number | undefined; first: Promise<Uint8Array> }>((resolve) => {
    const ws = new WebSocket(url, { headers })
    const first = new Promise<Uint8Array>((r) => ws.once("message", (d) => r(new Uint8Array(d as Buffer))))
    ws.once("open", () => resolve({ ws, status: undefined, first }))
    ws.once("unexpected-response", (_req, res) => {
      resolve({ ws, status: res.statusCode, first })
      res.resume()
    })
    ws.once("error", () => {})
  })

test("routed sockets pass verifyUpgrade and the per-address cap; the Canon path still works; hub.close ends them", async () => {
  const hub = new Hub({ machines: [], storage: new MemoryStorage(), runtime: systemRuntime, sync: false, crdt: { engines: [yjsDocEngine()] } })
  const route = yjsRoute(hub.crdtDocs)
  const server = await WsServer.start(hub, {
    listen: [{ host: "127.0.0.1", port: 0 }], path: "/sync", routes: [route], maxConnectionsPerAddress: 2,
    verifyUpgrade: (req) => req.headers["x-block"] === undefined,
  })
  const base = `ws://127.0.0.1:${server.addresses()[0]!.port}`
  try {
    expect((await connect(`${base}/yjs/r1`, { "x-block": "1" })).status).toBe(403)
    expect((await connect(`${base}/elsewhere`)).status).toBe(404)
    const one = await connect(`${base}/yjs/r1`)
    expect(one.status).toBeUndefined()
    expect(decodeYMessage(await one.first).type).toBe("step1")
    const two = await connect(`${base}/sync`)
    expect(two.status).toBeUndefined()
    expect((await connect(`${base}/yjs/r2`)).status).toBe(429)
    two.ws.close()
    await until(() => server.connectionsHeld() === 1, 5_000)
    const closed = new Promise<number>((r) => one.ws.once("close", (code) => r(code)))
    await hub.close()
    expect(await closed).toBe(1001)
  } finally {
    route.close()
    await server.close()
    await hub.close()
  }
})
