/**
 * The listening side of a WebSocket peer link (Node, on `ws`): each accepted socket becomes
 * a PeerLink handed to `onLink`. Two replicas in two processes: one listens, the other
 * connects with `connectWsLink`. Binds where it is told (127.0.0.1 in tests).
 *
 * A listener has a few slots (`maxConnections`), and whoever reaches the port is untrusted, so
 * nothing keeps a slot without showing it is alive and reads, by the hub's rules
 * (adapters/ws/):
 * - the upgrade request must arrive within `requestTimeoutMs` of connecting (`requestDeadlines`);
 * - the peer's first message within `firstMessageTimeoutMs` of the upgrade: both sync sessions
 *   send their handshake the moment the link opens, so a socket that says nothing is no peer;
 * - a ping every `pingIntervalMs`, and a socket with no sign that it reads for `pongTimeoutMs`
 *   is terminated (`PongClock`: a pong echoing the ping's nonce, or what was sent to it leaving
 *   at a reader's pace; a message from it is no sign, it can send without reading);
 * - one client address (an IPv6 one counted by its /64) holds at most
 *   `maxConnectionsPerAddress` sockets (`ConnectionCounter`), so one host cannot take them all;
 * - every TCP socket counts where it enters, before its upgrade request is read
 *   (`SocketCap`, at twice both caps): one that has not upgraded yet is counted by nothing
 *   above, so a host could otherwise hold any number of them, a new batch every
 *   `requestTimeoutMs`, until the process ran out of descriptors;
 * - a close that the peer does not finish within `closeTimeoutMs` is cut, so a socket being
 *   dropped gives its slot back within that.
 * Node's `ws` and browsers answer pings by themselves: `connectWsLink` needs nothing more.
 */
import * as http from "node:http"
import { WebSocketServer, WebSocket } from "ws"
import { endedLink, type PeerLink, type PeerLinkListener } from "../../core/crdt-docs/peer-link.js"
import { ConnectionCounter, checkCap, type Admission } from "../ws/connection-limits.js"
import { SocketCap, socketCapFor } from "../ws/socket-cap.js"
import { addressGroup, normalizeAddress } from "../ws/remote-address.js"
import { PongClock, SweepLateness } from "../ws/pong-clock.js"
import { MAX_CLOSE_REASON_BYTES, truncateUtf8 } from "../ws/shared.js"
import { DEFAULT_CLOSE_TIMEOUT_MS, DEFAULT_PING_INTERVAL_MS, DEFAULT_PONG_TIMEOUT_MS, DEFAULT_REQUEST_TIMEOUT_MS, requestDeadlines } from "../ws/server.js"

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
 * Sockets one client address may hold, by default: a quarter of the slots, so a host that
 * fills its share leaves the rest to others. Replicas on one machine seldom dial one listener
 * more than a few times. Loopback peers (127.0.0.0/8, ::1: this machine's own processes) are
 * held to it only when `maxConnectionsPerAddress` is set.
 */
export const DEFAULT_MAX_CONNECTIONS_PER_ADDRESS = 8

/**
 * How long after the upgrade a peer has to send its first message, by default: as the hub's
 * hello deadline. Both sync sessions send their handshake (a few bytes to a few KB) the moment
 * the link opens, so this is ample on a slow link.
 */
export const DEFAULT_FIRST_MESSAGE_TIMEOUT_MS = 10_000

export interface ListenWsOptions {
  readonly host: string
  /** 0 picks a free port (`PeerListener.port` says which). */
  readonly port: number
  /** Largest message a peer may send. Default 64 MiB: a fresh peer's whole document comes in one sync answer. */
  readonly maxMessageBytes?: number
  /**
   * What may queue for a peer that does not read before it is dropped (1013). Default 8 MiB;
   * it reconnects and its handshake fetches what it missed.
   */
  readonly maxBufferedBytes?: number
  /**
   * Sockets open at once (default 32, `DEFAULT_MAX_CONNECTIONS`). One more is closed at once
   * with 1013 ("try again later") and never becomes a link.
   */
  readonly maxConnections?: number
  /**
   * Sockets one client address may hold at once (an IPv6 address counts as its /64). One more
   * is closed at once with 1013 and a reason naming the limit. Default 8
   * (`DEFAULT_MAX_CONNECTIONS_PER_ADDRESS`), loopback peers exempt unless this is set;
   * Infinity for no cap.
   */
  readonly maxConnectionsPerAddress?: number
  /** A socket must have sent its whole upgrade request this long after connecting, or it is closed. Default 10,000 ms, as the hub. */
  readonly requestTimeoutMs?: number
  /**
   * A peer that sends no message this long after its socket opens is closed (1008, the reason
   * says why). Default 10,000 ms (`DEFAULT_FIRST_MESSAGE_TIMEOUT_MS`).
   */
  readonly firstMessageTimeoutMs?: number
  /** Ping every socket this often. Default 15,000 ms, as the hub. */
  readonly pingIntervalMs?: number
  /**
   * Terminate a socket that gives no sign of reading this long after a ping (a pong to it, or
   * what was sent to it leaving: adapters/ws/pong-clock.ts). Default 15,000 ms, as the hub: a
   * peer that stopped reading loses its slot within about 30 s.
   */
  readonly pongTimeoutMs?: number
  /** After a close frame is sent, wait this long for the peer's before cutting the socket. Default 5,000 ms, as the hub. */
  readonly closeTimeoutMs?: number
}

/** A duration option: a positive integer of milliseconds that a timer can hold. */
const checkMs = (name: string, value: number | undefined, fallback: number): number => {
  const v = value ?? fallback
  if (Number.isInteger(v) && v > 0 && v <= 2 ** 31 - 1) return v
  throw new TypeError(`${name} must be a positive whole number of milliseconds (at most 2147483647), not ${String(value)}.`)
}

const isLoopback = (address: string): boolean => address.startsWith("127.") || address === "::1"

/** A close reason fits in a control frame. */
const closeReason = (text: string): string => truncateUtf8(text, MAX_CLOSE_REASON_BYTES)

/** One accepted socket and what keeps it honest. */
interface Peer {
  readonly ws: WebSocket
  readonly pongs: PongClock
  lastPingAt: number
  /** Ends the link and closes the socket (`terminate`: no close handshake, for one that does not read). */
  readonly drop: (code: number, reason: string, terminate?: boolean) => void
}

/**
 * Listens on `address.host:address.port` (see ListenWsOptions for the limits) and hands each
 * accepted socket to `onLink` as a PeerLink. Options that are out of range throw a TypeError.
 */
export const listenWsLinks = (address: ListenWsOptions, onLink: (link: PeerLink) => void): Promise<PeerListener> => {
  const maxConnections = checkCap("maxConnections", address.maxConnections, DEFAULT_MAX_CONNECTIONS)
  const perAddressSet = address.maxConnectionsPerAddress !== undefined
  const perAddress = checkCap("maxConnectionsPerAddress", address.maxConnectionsPerAddress, DEFAULT_MAX_CONNECTIONS_PER_ADDRESS)
  const requestTimeoutMs = checkMs("requestTimeoutMs", address.requestTimeoutMs, DEFAULT_REQUEST_TIMEOUT_MS)
  const firstMessageTimeoutMs = checkMs("firstMessageTimeoutMs", address.firstMessageTimeoutMs, DEFAULT_FIRST_MESSAGE_TIMEOUT_MS)
  const pingIntervalMs = checkMs("pingIntervalMs", address.pingIntervalMs, DEFAULT_PING_INTERVAL_MS)
  const pongTimeoutMs = checkMs("pongTimeoutMs", address.pongTimeoutMs, DEFAULT_PONG_TIMEOUT_MS)
  const closeTimeoutMs = checkMs("closeTimeoutMs", address.closeTimeoutMs, DEFAULT_CLOSE_TIMEOUT_MS)
  const maxBuffered = address.maxBufferedBytes ?? DEFAULT_MAX_BUFFERED_BYTES
  // In all, and per address: two counters, so loopback can be held to the total alone.
  const total = new ConnectionCounter({ total: maxConnections, perAddress: Infinity })
  const byAddress = new ConnectionCounter({ total: Infinity, perAddress })
  const admit = (client: string): Admission => {
    const all = total.admit(client)
    if (!all.ok) return all
    if (!perAddressSet && isLoopback(client)) return all
    const mine = byAddress.admit(addressGroup(client))
    if (mine.ok) return { ok: true, release: () => (all.release(), mine.release()) }
    all.release()
    return mine
  }

  const server = http.createServer(requestDeadlines(requestTimeoutMs), (_req, res) => {
    const body = "This address only speaks WebSocket (a Canon peer link).\n"
    res.writeHead(426, { "Content-Type": "text/plain", "Content-Length": Buffer.byteLength(body), "Upgrade": "websocket" })
    res.end(body)
  })
  // A socket that sends nothing is no request yet, so the deadlines above never see it (`ws` clears this on an upgraded one).
  server.setTimeout(requestTimeoutMs)
  // Sockets before their upgrade, as many again as the WebSocket slots: the 1013 over a slot cap still reaches its socket.
  new SocketCap({
    total: socketCapFor(maxConnections), perAddress: socketCapFor(perAddress),
    exempt: (client) => !perAddressSet && isLoopback(client),
  }).attach(server)
  const wss = new WebSocketServer({
    server,
    maxPayload: address.maxMessageBytes ?? 64 << 20,
    // Not in the typings: how long a started close waits for the peer's close frame.
    ...({ closeTimeout: closeTimeoutMs } as object),
  })
  wss.on("error", () => {})
  const peers = new Set<Peer>()

  wss.on("connection", (ws, req) => {
    ws.on("error", () => {})
    const client = normalizeAddress(req.socket.remoteAddress) ?? req.socket.remoteAddress
    // No peer address: the socket closed already.
    if (client === undefined) return ws.terminate()
    const place = admit(client)
    if (!place.ok) return ws.close(1013, closeReason(place.reason))
    const { link, drop } = socketLink(ws, maxBuffered)
    const peer: Peer = { ws, pongs: new PongClock(), lastPingAt: performance.now(), drop }
    peers.add(peer)
    // The slot is held until the socket is gone, however it ends.
    ws.once("close", () => {
      clearTimeout(deadline)
      peers.delete(peer)
      place.release()
    })
    const deadline = setTimeout(() => drop(1008, closeReason(`No message within ${firstMessageTimeoutMs} ms of connecting; a peer sends its sync handshake first.`)), firstMessageTimeoutMs)
    ws.once("message", () => clearTimeout(deadline))
    // Only a pong echoing one of our pings counts: a frame from the peer says it sends, not that it reads.
    ws.on("pong", (data) => peer.pongs.pong(data))
    onLink(link)
  })

  // One timer for every socket, often enough to honour both durations (as the hub's WsServer).
  const tick = Math.max(5, Math.min(pingIntervalMs, pongTimeoutMs) / 4)
  const lateness = new SweepLateness(tick, performance.now())
  const sweep = setInterval(() => {
    const now = performance.now()
    const late = lateness.at(now)
    for (const peer of peers) {
      if (peer.ws.readyState !== WebSocket.OPEN) continue
      // It does not read: a close frame would wait unread, so cut it.
      if (peer.pongs.overdue(peer.ws, now, pongTimeoutMs, late)) peer.drop(1001, "No answer to a ping.", true)
      else if (now - peer.lastPingAt >= pingIntervalMs) {
        peer.lastPingAt = now
        peer.pongs.sendPing(peer.ws, now)
      }
    }
  }, tick)
  sweep.unref()

  return new Promise((resolve, reject) => {
    server.once("error", (e) => {
      clearInterval(sweep)
      wss.close()
      reject(e)
    })
    server.listen(address.port, address.host, () => {
      server.on("error", () => {})
      const a = server.address()
      resolve({
        port: typeof a === "string" || a === null ? 0 : a.port,
        close: () => new Promise<void>((r) => {
          clearInterval(sweep)
          for (const c of wss.clients) c.terminate()
          wss.close()
          server.close(() => r())
          server.closeAllConnections()
        }),
      })
    })
  })
}

/** An accepted socket as a PeerLink (open already; it does not reconnect: the other side does), and how the listener drops it. */
const socketLink = (ws: WebSocket, maxBuffered: number): { link: PeerLink; drop: (code: number, reason: string, terminate?: boolean) => void } => {
  const listeners = new Set<PeerLinkListener>()
  let open = true
  ws.on("message", (data, isBinary) => {
    if (!isBinary || !open) return
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
  const drop = (code: number, reason: string, terminate = false) => {
    if (terminate) ws.terminate()
    else ws.close(code, reason)
    end()
  }
  const link: PeerLink = {
    get isOpen() {
      return open
    },
    send(bytes) {
      if (!open) return
      // A peer that does not read is dropped, not buffered for without bound (one message
      // larger than the bound still goes when nothing waits: a whole document to a fresh peer).
      if (ws.bufferedAmount > 0 && ws.bufferedAmount + bytes.length > maxBuffered) return drop(1013, "Too far behind; reconnect.")
      ws.send(bytes)
    },
    subscribe(listener) {
      if (!open) return endedLink(listener)
      // Open from the start: sessions check isOpen when they begin.
      listeners.add(listener)
      return () => listeners.delete(listener)
    },
    close() {
      if (open) drop(1000, "closed")
    },
  }
  return { link, drop }
}
