/**
 * `@y/websocket-server` (the maintained server of y-websocket) in its own process, set up as
 * its bin (src/server.js) does: an http server whose upgrades go to a `ws` server (the `ws`
 * it depends on) and `setupWSConnection` from `@y/websocket-server/utils`, on 127.0.0.1. No
 * persistence (its default). Before it says it is ready it creates the room's document and
 * fills a Y.Map `notes` with the same ids and strings as the Canon document, so the parent's
 * baseline RSS includes the document itself. Loads nothing of Canon's.
 *
 * `node --expose-gc --import tsx bench/snapshots-yws.ts '{"room": ..., "notes": N, "bytesPerNote": B}'`
 */
import http from "node:http"
import type { AddressInfo } from "node:net"
import { createRequire } from "node:module"
import * as Y from "yjs"
import { noteId, noteText } from "./snapshots-content.js"
import { collect, serveParent } from "./snapshots-ipc.js"

const spec = JSON.parse(process.argv[2] ?? "{}") as { room: string; notes: number; bytesPerNote: number }

interface WsServerLike {
  handleUpgrade(req: http.IncomingMessage, socket: unknown, head: Buffer, cb: (ws: unknown) => void): void
  emit(event: string, ...args: unknown[]): boolean
  on(event: string, f: (...args: any[]) => void): void
  close(cb?: () => void): void
}

const main = async (): Promise<void> => {
  let ready: (v: unknown) => void
  const isReady = new Promise((r) => (ready = r))
  let server: http.Server | undefined
  let wss: WsServerLike | undefined
  serveParent({
    ready: () => isReady,
    close: async () => {
      wss?.close()
      server?.closeAllConnections()
      await new Promise<void>((r) => (server ? server.close(() => r()) : r()))
    },
  })
  // The `ws` that @y/websocket-server itself depends on (its bin's, not Canon's).
  const own = createRequire(import.meta.resolve("@y/websocket-server/package.json"))
  const WebSocket = own("ws") as { Server: new (o: { noServer: boolean }) => WsServerLike }
  const utils = (await import("@y/websocket-server/utils")) as unknown as {
    setupWSConnection: (conn: unknown, req: http.IncomingMessage) => void
    getYDoc: (name: string) => Y.Doc
  }
  const doc = utils.getYDoc(spec.room)
  const notes = doc.getMap<string>("notes")
  doc.transact(() => {
    for (let i = 0; i < spec.notes; i++) notes.set(noteId(i), noteText(i, spec.bytesPerNote))
  })
  wss = new WebSocket.Server({ noServer: true })
  server = http.createServer((_request, response) => {
    response.writeHead(200, { "Content-Type": "text/plain" })
    response.end("okay")
  })
  wss.on("connection", utils.setupWSConnection)
  server.on("upgrade", (request: http.IncomingMessage, socket: unknown, head: Buffer) => {
    wss!.handleUpgrade(request, socket, head, (ws) => {
      wss!.emit("connection", ws, request)
    })
  })
  await new Promise<void>((r) => server!.listen(0, "127.0.0.1", () => r()))
  const update = Y.encodeStateAsUpdate(doc).length
  collect()
  const port = (server.address() as AddressInfo).port
  ready!({ url: `ws://127.0.0.1:${port}`, rss: process.memoryUsage.rss(), update })
}

main().catch((e: unknown) => {
  console.error(e)
  process.exit(1)
})
