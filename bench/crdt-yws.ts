/**
 * Stock y-websocket clients (WebsocketProvider) syncing a document through the Canon hub's
 * /yjs endpoint (Hub + WsServer + yjsRoute, MemoryStorage) and through @y/websocket-server
 * (its utils' setupWSConnection on an http server, as its bin does; no persistence), both in
 * this process on 127.0.0.1, TCP payload counted at the server's sockets (frames included).
 *
 * One run, per server: a writer and a reader provider join a new room; the writer types the
 * trace prefix (one transaction per edit, yielding to the event loop every 64 edits, as a
 * fast typist's provider sends); timed until the reader holds the final text. Then a third
 * provider joins and syncs the whole document from the server (initial sync), timed until it
 * holds the text. Bytes: everything on the server's sockets during each phase.
 */
import http from "node:http"
import { createRequire } from "node:module"
import * as Y from "yjs"
import { WebSocket } from "ws"
import { WebsocketProvider } from "y-websocket"
import { Hub } from "../core/index.js"
import { MemoryStorage } from "../adapters/memory/index.js"
import { systemRuntime } from "../adapters/system/index.js"
import { WsServer } from "../adapters/ws/index.js"
import { yjsDocEngine, yjsRoute } from "../adapters/yjs-server/index.js"
import { check, now } from "./harness.js"
import { CountingServer, UNLIMITED, turn, waitFor } from "./peers-common.js"
import type { Trace } from "./peers-text.js"

export interface YwsRun {
  readonly liveMs: number
  readonly liveBytes: number
  readonly joinMs: number
  readonly joinBytes: number
}

export interface YwsServer {
  /** The URL a WebsocketProvider is given (the room is appended). */
  readonly url: string
  readonly counting: CountingServer
  close(): Promise<void>
}

export const canonYws = async (): Promise<YwsServer> => {
  const counting = await CountingServer.start()
  const hub = new Hub({ machines: [], storage: new MemoryStorage(), runtime: systemRuntime, sync: false, limits: UNLIMITED, crdt: { engines: [yjsDocEngine()] } })
  const route = yjsRoute(hub.crdtDocs)
  const ws = await WsServer.start(hub, { server: counting.server, routes: [route] })
  return {
    url: `${counting.url}yjs`,
    counting,
    close: async () => {
      route.close()
      await ws.close()
      await hub.close()
      await counting.close()
    },
  }
}

interface WsServerLike {
  handleUpgrade(req: http.IncomingMessage, socket: unknown, head: Buffer, cb: (ws: unknown) => void): void
  emit(event: string, ...args: unknown[]): boolean
  on(event: string, f: (...args: any[]) => void): void
  close(cb?: () => void): void
}

export const stockYws = async (): Promise<YwsServer> => {
  const counting = await CountingServer.start()
  // The `ws` that @y/websocket-server itself depends on.
  const own = createRequire(import.meta.resolve("@y/websocket-server/package.json"))
  const WsLib = own("ws") as { Server: new (o: { noServer: boolean }) => WsServerLike }
  const utils = (await import("@y/websocket-server/utils")) as unknown as {
    setupWSConnection: (conn: unknown, req: http.IncomingMessage) => void
    docs: Map<string, Y.Doc>
  }
  const wss = new WsLib.Server({ noServer: true })
  wss.on("connection", utils.setupWSConnection)
  counting.server.on("upgrade", (req: http.IncomingMessage, socket: unknown, head: Buffer) => {
    wss.handleUpgrade(req, socket, head, (ws) => wss.emit("connection", ws, req))
  })
  return {
    url: counting.url.replace(/\/$/, ""),
    counting,
    close: async () => {
      await new Promise<void>((r) => wss.close(() => r()))
      await counting.close()
      // Without persistence the server keeps every room's document (and its awareness
      // interval) after the last client left: destroy them, or the process never exits.
      for (const d of utils.docs.values()) d.destroy()
      utils.docs.clear()
    },
  }
}

const provider = (url: string, room: string): WebsocketProvider =>
  new WebsocketProvider(url, room, new Y.Doc(), { WebSocketPolyfill: WebSocket as never, disableBc: true })

const drop = (p: WebsocketProvider): void => {
  p.destroy()
  p.doc.destroy()
}

let rooms = 0

export const ywsRun = async (server: YwsServer, trace: Trace): Promise<YwsRun> => {
  const room = `paper-${++rooms}`
  const writer = provider(server.url, room)
  const reader = provider(server.url, room)
  const providers = [writer, reader]
  try {
    await waitFor(() => writer.synced && reader.synced, "both providers to sync", 30_000)
    await server.counting.quiet()
    server.counting.mark()
    const t = writer.doc.getText("t")
    const got = reader.doc.getText("t")
    const t0 = now()
    let i = 0
    for (const [pos, del, ins] of trace.edits) {
      writer.doc.transact(() => {
        if (del > 0) t.delete(pos, del)
        if (ins.length > 0) t.insert(pos, ins)
      })
      if (++i % 64 === 0) await turn()
    }
    await waitFor(() => got.length === trace.text.length && got.toString() === trace.text, "the reader to hold the final text", 300_000)
    const liveMs = now() - t0
    await server.counting.quiet()
    const live = server.counting.since()
    server.counting.mark()
    const t1 = now()
    const joiner = provider(server.url, room)
    providers.push(joiner)
    const joined = joiner.doc.getText("t")
    await waitFor(() => joiner.synced && joined.length === trace.text.length && joined.toString() === trace.text, "the joiner to hold the text", 60_000)
    const joinMs = now() - t1
    await server.counting.quiet()
    const join = server.counting.since()
    check(t.toString() === trace.text, "the writer's text equals the trace's")
    return { liveMs, liveBytes: live.up + live.down, joinMs, joinBytes: join.up + join.down }
  } finally {
    for (const p of providers) drop(p)
  }
}
