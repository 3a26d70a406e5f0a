/**
 * Holds a port while the server behind it starts: every WebSocket upgrade is accepted and
 * closed at once with 1013 ("try again later").
 *
 * Why not an HTTP 503: stock clients of other projects (automerge-repo's websocket adapter)
 * throw a refused upgrade from their socket's error handler, an uncaught exception that ends
 * the client's process; every client reconnects after a close.
 */
import type * as http from "node:http"
import type { Duplex } from "node:stream"
import { WebSocketServer } from "ws"

/** The close code and reason a connection gets while the server starts. */
export const STARTING_CLOSE = { code: 1013, reason: "The server is starting; try again." } as const

/**
 * Until the returned function is called, closes every WebSocket upgrade on `server` with
 * 1013. Call it right before attaching the real endpoint (e.g. `new WsServer(hub, { server })`).
 *
 * @example
 * const server = http.createServer(pages)
 * server.listen(8787, "127.0.0.1")
 * const ready = closeUpgradesUntilReady(server)
 * const hub = new Hub({ machines, storage: await LevelStorage.open("./data"), runtime: systemRuntime })
 * ready()
 * new WsServer(hub, { server, path: "/sync" })
 */
export const closeUpgradesUntilReady = (server: http.Server): (() => void) => {
  // Nothing is read from these connections: the smallest payload limit.
  const wss = new WebSocketServer({ noServer: true, maxPayload: 125, perMessageDeflate: false })
  const onUpgrade = (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on("error", () => socket.destroy())
    wss.handleUpgrade(req, socket, head, (ws) => {
      ws.on("error", () => ws.terminate())
      ws.close(STARTING_CLOSE.code, STARTING_CLOSE.reason)
    })
  }
  server.on("upgrade", onUpgrade)
  let released = false
  return () => {
    if (released) return
    released = true
    server.off("upgrade", onUpgrade)
    wss.close()
  }
}
