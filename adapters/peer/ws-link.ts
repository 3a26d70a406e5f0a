/**
 * A PeerLink over a WebSocket, client side: connects to `url` and reconnects with backoff
 * (100 ms doubling to 2.5 s, jittered) until closed. The backoff starts over only after a
 * connection stayed open `stableMs` (a server that accepts and closes at once, shedding
 * load, is not retried ten times a second). `open` fires on each connect, so a sync
 * session re-runs its handshake after every reconnect. Works with the browser's WebSocket or
 * Node's `ws` (pass `WebSocket`). Used replica to replica (the other side listens, see
 * ws-listen.ts) and replica to hub (the hub's y-websocket endpoint, see open-ydoc.ts).
 */
import { endedLink, type PeerLink, type PeerLinkListener } from "../../core/crdt-docs/peer-link.js"

/** The part of the WebSocket API this link uses (browser WebSocket and `ws` both have it). */
export interface WebSocketLike {
  binaryType: string
  readonly readyState: number
  readonly bufferedAmount: number
  send(data: Uint8Array<ArrayBuffer>): void
  close(code?: number, reason?: string): void
  onopen: Handler<unknown> | null
  onclose: Handler<{ code: number; reason: string }> | null
  onerror: Handler<unknown> | null
  onmessage: Handler<{ data: unknown }> | null
}

/**
 * An event handler, declared as a method so that its parameter is compared both ways: the
 * `ws` package's and the DOM's sockets take handlers of their own, richer event types, and
 * are still WebSocketLike (a plain function type made `connectWsLink(url, { WebSocket })`
 * with `ws`'s WebSocket a type error).
 */
type Handler<E> = { handle(ev: E): void }["handle"]

export type WebSocketConstructor = new (url: string) => WebSocketLike

export interface WsLinkOptions {
  /** Default: the global WebSocket (browsers, Node >= 22). On Node 20 pass `ws`'s. */
  readonly WebSocket?: WebSocketConstructor
  /** Reconnect after a close. Default true. */
  readonly reconnect?: boolean
  readonly maxBackoffMs?: number
  /** What may queue unsent before the connection is dropped and made again (the handshake then sends what the other side lacks). Default 8 MiB. */
  readonly maxBufferedBytes?: number
  /** How long a connection must stay open for the backoff to start over. Default 5 s. */
  readonly stableMs?: number
  /** A close with one of these codes is final (default: 4400-4499, as y-websocket). */
  readonly isPermanent?: (code: number) => boolean
  /** Each close, with its code and reason (a refusal by the hub, for one). */
  readonly onClose?: (code: number, reason: string) => void
}

export interface WsLink extends PeerLink {
  /** Reconnects now (after a permanent close, or to skip the backoff). */
  reconnect(): void
}

const toBytes = (data: unknown): Uint8Array | undefined => {
  if (data instanceof Uint8Array) return data
  if (data instanceof ArrayBuffer) return new Uint8Array(data)
  if (Array.isArray(data)) return new Uint8Array(Buffer.concat(data as Uint8Array[]))
  return undefined
}

export const connectWsLink = (url: string, options: WsLinkOptions = {}): WsLink => {
  const Ctor = options.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket
  if (Ctor === undefined) throw new TypeError("No WebSocket here: pass `WebSocket` (e.g. from the `ws` package).")
  const permanent = options.isPermanent ?? ((code: number) => code >= 4400 && code < 4500)
  const listeners = new Set<PeerLinkListener>()
  let ws: WebSocketLike | undefined
  let open = false
  let closed = false
  let failures = 0
  let openedAt = 0
  let timer: ReturnType<typeof setTimeout> | undefined

  const connect = () => {
    if (closed) return
    const sock = new Ctor(url)
    ws = sock
    sock.binaryType = "arraybuffer"
    sock.onopen = () => {
      if (ws !== sock) return
      open = true
      openedAt = performance.now()
      for (const l of listeners) l.open?.()
    }
    sock.onmessage = (ev) => {
      if (ws !== sock) return
      const bytes = toBytes(ev.data)
      if (bytes !== undefined) for (const l of listeners) l.message(bytes)
    }
    sock.onerror = () => {}
    sock.onclose = (ev) => {
      if (ws !== sock) return
      const wasOpen = open
      open = false
      if (wasOpen && performance.now() - openedAt >= (options.stableMs ?? 5_000)) failures = 0
      ws = undefined
      options.onClose?.(ev.code, ev.reason)
      if (wasOpen) for (const l of listeners) l.close?.()
      if (closed || options.reconnect === false || permanent(ev.code)) return
      const delay = Math.min(options.maxBackoffMs ?? 2_500, 100 * 2 ** failures++) * (0.5 + Math.random() / 2)
      timer = setTimeout(connect, delay)
    }
  }
  connect()

  return {
    get isOpen() {
      return open
    },
    send(bytes) {
      if (!open || ws === undefined) return
      if (ws.bufferedAmount > 0 && ws.bufferedAmount + bytes.length > (options.maxBufferedBytes ?? 8 << 20)) {
        // The other side does not read: drop this connection (onclose reconnects with backoff).
        ws.close(4000, "Too far behind; reconnecting.")
        return
      }
      // (Encoders here make bytes over plain ArrayBuffers; the DOM's send types only those.)
      ws.send(bytes as Uint8Array<ArrayBuffer>)
    },
    subscribe(listener) {
      if (closed) return endedLink(listener)
      listeners.add(listener)
      return () => listeners.delete(listener)
    },
    reconnect() {
      if (closed || ws !== undefined) return
      clearTimeout(timer)
      failures = 0
      connect()
    },
    close() {
      if (closed) return
      closed = true
      clearTimeout(timer)
      const sock = ws
      ws = undefined
      if (open) for (const l of listeners) l.close?.()
      open = false
      for (const l of listeners) l.end?.()
      listeners.clear()
      sock?.close(1000, "closed")
    },
  }
}
