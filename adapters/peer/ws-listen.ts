/**
 * The listening side of a WebSocket peer link (Node, on `ws`): each accepted socket becomes
 * a PeerLink handed to `onLink`. Two replicas in two processes: one listens, the other
 * connects with `connectWsLink`. Binds where it is told (127.0.0.1 in tests).
 */
import { WebSocketServer, type WebSocket } from "ws"
import { endedLink, type PeerLink, type PeerLinkListener } from "../../core/crdt-docs/peer-link.js"

export interface PeerListener {
  readonly port: number
  close(): Promise<void>
}

/** How far behind a peer may fall (bytes queued for it) before its socket is closed (1013). Default 8 MiB, as the hub. */
export const DEFAULT_MAX_BUFFERED_BYTES = 8 << 20

/**
 * Sockets open at once, by default. Each may be partway through a message of up to
 * `maxMessageBytes`, which `ws` holds until it is whole, so this bounds that memory too
 * (32 x 64 MiB); a replica has a few peers, not hundreds.
 */
export const DEFAULT_MAX_CONNECTIONS = 32

/**
 * Listens on `host:port`. `maxMessageBytes`: largest message a peer may send (default 64 MiB:
 * a fresh peer's whole document comes in one sync answer).
 * `maxBufferedBytes`: what may queue for a peer that does not read before it is dropped
 * (default 8 MiB); it reconnects and its handshake fetches what it missed.
 * `maxConnections`: sockets open at once (default 32); one more is closed at once with 1013
 * ("try again later") and never becomes a link.
 */
export const listenWsLinks = (address: { host: string; port: number; maxMessageBytes?: number; maxBufferedBytes?: number; maxConnections?: number }, onLink: (link: PeerLink) => void): Promise<PeerListener> =>
  new Promise((resolve, reject) => {
    const wss = new WebSocketServer({ host: address.host, port: address.port, maxPayload: address.maxMessageBytes ?? 64 << 20 })
    const maxConnections = address.maxConnections ?? DEFAULT_MAX_CONNECTIONS
    wss.once("error", reject)
    wss.on("connection", (ws) => {
      // wss.clients already counts this socket.
      if (wss.clients.size > maxConnections) return ws.close(1013, "Too many peers; try again later.")
      onLink(socketLink(ws, address.maxBufferedBytes ?? DEFAULT_MAX_BUFFERED_BYTES))
    })
    wss.once("listening", () => {
      const a = wss.address()
      resolve({
        port: typeof a === "string" || a === null ? 0 : a.port,
        close: () => new Promise<void>((r) => {
          for (const c of wss.clients) c.terminate()
          wss.close(() => r())
        }),
      })
    })
  })

/** An accepted socket as a PeerLink (open already; it does not reconnect: the other side does). */
const socketLink = (ws: WebSocket, maxBuffered: number): PeerLink => {
  const listeners = new Set<PeerLinkListener>()
  let open = true
  ws.on("message", (data, isBinary) => {
    if (!isBinary) return
    const bytes = Array.isArray(data) ? Buffer.concat(data) : data instanceof ArrayBuffer ? new Uint8Array(data) : data
    for (const l of listeners) l.message(bytes)
  })
  // An accepted socket never reopens: its close ends the link.
  const end = () => {
    if (!open) return
    open = false
    for (const l of listeners) l.close?.()
    for (const l of listeners) l.end?.()
    listeners.clear()
  }
  ws.on("close", end)
  ws.on("error", () => {})
  return {
    get isOpen() {
      return open
    },
    send(bytes) {
      if (!open) return
      // A peer that does not read is dropped, not buffered for without bound (one message
      // larger than the bound still goes when nothing waits: a whole document to a fresh peer).
      if (ws.bufferedAmount > 0 && ws.bufferedAmount + bytes.length > maxBuffered) {
        ws.close(1013, "Too far behind; reconnect.")
        return end()
      }
      ws.send(bytes)
    },
    subscribe(listener) {
      if (!open) return endedLink(listener)
      // Open from the start: sessions check isOpen when they begin.
      listeners.add(listener)
      return () => listeners.delete(listener)
    },
    close() {
      if (!open) return
      ws.close(1000, "closed")
      end()
    },
  }
}
