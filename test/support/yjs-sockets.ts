/**
 * Clients of a y-websocket route for tests: a raw socket that records every frame the hub
 * sends it and how it closed, and a stock `WebsocketProvider` that counts its closes. Each is
 * pushed onto the caller's list, for the test to close at its end.
 */
import * as Y from "yjs"
import { WebSocket } from "ws"
import { WebsocketProvider } from "y-websocket"
import { until } from "./ws.js"

export interface RawYSocket {
  readonly ws: WebSocket
  /** Every frame the hub sent, in order. */
  readonly got: Uint8Array[]
  /** How the socket closed, once it has. */
  closed(): { readonly code: number; readonly reason: string } | undefined
}

/** Opens `url` with `?token=`, and resolves once the hub's first frame (its step1) is in. */
export const rawYSocket = async (url: string, token: string, sockets: WebSocket[]): Promise<RawYSocket> => {
  const ws = new WebSocket(`${url}?token=${token}`)
  sockets.push(ws)
  const got: Uint8Array[] = []
  let closed: { code: number; reason: string } | undefined
  ws.on("message", (d) => got.push(new Uint8Array(d as Buffer)))
  ws.on("close", (code, reason) => (closed = { code, reason: reason.toString() }))
  await new Promise((r, j) => { ws.once("open", r); ws.once("error", j) })
  await until(() => got.length > 0, 5_000)
  return { ws, got, closed: () => closed }
}

/** A stock provider of the room at `url` (…/yjs/<room>), reconnecting quickly, with its close count. */
export const stockProvider = (url: string, token: string, providers: WebsocketProvider[]): { readonly p: WebsocketProvider; closes(): number } => {
  const at = url.lastIndexOf("/")
  const p = new WebsocketProvider(url.slice(0, at), url.slice(at + 1), new Y.Doc(), {
    WebSocketPolyfill: WebSocket as never, params: { token }, maxBackoffTime: 200, disableBc: true,
  })
  providers.push(p)
  let closes = 0
  p.on("connection-close", () => closes++)
  return { p, closes: () => closes }
}
