/**
 * The WebSocket server transport, on the `ws` package: every socket becomes a
 * `Connection<ServerMessage>` handed to the acceptor (a Hub).
 *
 * - Where it listens is separate from where clients are told to connect: bind
 *   `listen: [{ host: "0.0.0.0", port: 8787 }]` (several addresses, IPv6 `::1` included) and
 *   publish `publicUrl: "wss://sync.example.com/sync"`; or attach to your own `http`/`https`
 *   server (`server`, with a `path`), so TLS uses your certificates.
 * - Frames are binary, one message each, at most `maxFrameBytes` (the `ws` library refuses
 *   bigger ones with close code 1009 before reading them). A frame that does not decode, or
 *   a text frame, gets an `error` message (`protocol-error`) and the socket is closed (4002);
 *   other connections never notice.
 * - Heartbeat: the server pings each socket every `pingIntervalMs`; a peer that does not
 *   answer one with a pong within `pongTimeoutMs` is terminated and the hub is told
 *   `timeout`, so half-open connections do not linger. As on the CRDT routes
 *   (pong-clock.ts), only signs that the peer reads count: a pong echoing the ping's nonce,
 *   or what the hub sent leaving its buffers at a reader's pace (a slow reader working
 *   through a snapshot window has its ping queued behind it). A peer can send without
 *   reading, and one that never reads must not stay (what the hub answers it would wait
 *   unread). Time the hub holds the socket unread (input flow control) does not count, up to
 *   120 s a wait: its pong is not read meanwhile. Node's `ws` and browsers answer pings by themselves.
 * - `bufferedAmount` is the socket's unsent bytes: the hub's backpressure watches it.
 * - Close codes: see shared.ts (Canon codes travel as 4000-4999 plus the reason's prefix).
 *
 * Resource limits (a hub faces untrusted peers):
 * - At most `maxConnectionsPerAddress` sockets (default 64) per client address, and at most
 *   `maxConnections` in all (default: no cap). A socket counts from the moment its upgrade
 *   is taken until it closes, so a burst of upgrades cannot get past the cap. Over a cap the
 *   upgrade is refused before any WebSocket exists: HTTP 429 (per address) or 503 (in all)
 *   with `Retry-After` and a one-line body saying which limit. The Node client reports it as
 *   `unreachable` with that line and retries with backoff; a browser sees a failed connect.
 *   Many users behind one NAT share one address: raise the cap for such deployments. An
 *   IPv6 client counts as its /64 network (`ipv6Prefix`), the block one subscriber is given:
 *   per address it could otherwise open 2^64 times the cap.
 * - The client address is the socket's peer, unless `trustProxy` says the peer is a reverse
 *   proxy: then it is the right-most untrusted `X-Forwarded-For` hop (remote-address.ts). A
 *   forged header from a peer that is not a trusted proxy changes nothing. Behind a proxy,
 *   set `trustProxy`, or every client shares the proxy's address and its cap. The address
 *   reaches the acceptor as `ConnectionInfo.remoteAddress` (`peerAddress` is the socket's;
 *   `limitKey` the network an IPv6 address is counted as).
 * - A socket that says nothing: on the addresses it binds itself the server closes a socket
 *   that has not sent its whole upgrade request `requestTimeoutMs` (default 10 s) after
 *   connecting, also one that sends no byte at all (Node's own defaults never time that one
 *   out, and allow 60 s for headers). An attached server is the app's to configure: pass it
 *   `requestDeadlines(ms)` at creation, call `server.setTimeout(ms)` and
 *   `boundPipelining(server)` (a socket with more than 16 requests waiting for their responses
 *   is destroyed) and attach a `SocketCap` (every TCP socket counted per address as it
 *   connects, upgraded or not), as apps/hub does; on its own addresses the server does all
 *   of this itself.
 *   After the upgrade, the hub closes a connection that does not say hello in time.
 *
 * @example
 * ```ts
 * const hub = new Hub({ machines: [Todo], storage, runtime: systemRuntime })
 * const server = await WsServer.start(hub, { listen: [{ host: "0.0.0.0", port: 8787 }], publicUrl: "wss://sync.example.com" })
 * // or: await WsServer.start(hub, { server: myHttpsServer, path: "/sync" })
 * ...
 * await server.close()
 * await hub.close()
 * ```
 */
import * as http from "node:http"
import * as https from "node:https"
import type { Duplex } from "node:stream"
import { WebSocket, WebSocketServer, type PerMessageDeflateOptions, type RawData } from "ws"
import { DEFAULT_MAX_FRAME_BYTES, type ClientMessage, type CloseInfo, type Connection, type ConnectionAcceptor, type ConnectionInfo, type ConnectionListener, type ServerMessage } from "../../core/index.js"
import { decodeClientMessage, encodeServerMessage, CodecSession } from "../../core/internal.js"
import { encodeFrame, fromWsClose, isEncodeFailure, toWsClose } from "./shared.js"
import { addressGroup, checkIpv6Prefix, clientAddress, normalizeAddress, proxyTrust, type ProxyTrust, type TrustProxy } from "./remote-address.js"
import { ConnectionCounter, checkCap } from "./connection-limits.js"
import { PongClock, SweepLateness, deliveredBytes } from "./pong-clock.js"
import { boundPipelining } from "./pipelining.js"
import { SocketCap, socketCapFor } from "./socket-cap.js"
import { DEFAULT_MAX_UNSENT_BYTES, MIN_MAX_UNSENT_BYTES, UnsentBudget, budgetedWebSocket } from "./unsent-budget.js"

export interface ListenAddress {
  readonly host: string
  /** 0 picks a free port; `addresses()` says which. */
  readonly port: number
}

export interface WsServerOptions {
  /** Addresses to bind (each gets its own HTTP server that only upgrades). */
  readonly listen?: ReadonlyArray<ListenAddress>
  /** An existing http(s) server to attach to (it is not closed by `close`). */
  readonly server?: http.Server | https.Server
  /** Only upgrade requests for this path (e.g. "/sync"). Default: any path. */
  readonly path?: string
  /** The URL clients are told to use (behind a proxy, in a container); separate from where it binds. */
  readonly publicUrl?: string
  /**
   * Largest frame in either direction. Default DEFAULT_MAX_FRAME_BYTES (1 MiB). Keep it at
   * least that for Canon clients: one sends outbox parts of up to 512 KiB and a command of up
   * to its `maxCommandBytes` (less than 1 MiB) in one frame, and learns no lower limit, from
   * the hub or from its own transport's option. A frame over it ends the connection, and the
   * client sends it again on the next.
   */
  readonly maxFrameBytes?: number
  /** Ping every socket this often. Default 15,000 ms. */
  readonly pingIntervalMs?: number
  /**
   * Terminate a socket that gives no sign of reading this long after a ping (a pong to it, or
   * what the hub sent leaving: pong-clock.ts; time the hub holds the socket unread does not
   * count, up to 120 s a wait). Default 15,000 ms.
   */
  readonly pongTimeoutMs?: number
  /** After a close frame is sent, wait this long for the peer's before dropping the socket. Default 5,000 ms. */
  readonly closeTimeoutMs?: number
  /** Sockets one client address may hold at once (see the header). Default 64; Infinity for no cap. */
  readonly maxConnectionsPerAddress?: number
  /** Sockets the server holds at once. Default Infinity (no cap). */
  readonly maxConnections?: number
  /**
   * Bytes written to the server's sockets (every route's) that have not left yet, in all.
   * Past it, sockets are cut in unsent-budget.ts's order: first those from which nothing
   * reached the network for 5 s, last the newest. A client that stops reading cannot make the server
   * hold memory without end. Default DEFAULT_MAX_UNSENT_BYTES (256 MiB), at least
   * MIN_MAX_UNSENT_BYTES (8 MiB); Infinity for no bound.
   */
  readonly maxUnsentBytes?: number
  /**
   * Whether the socket's peer is a reverse proxy whose `X-Forwarded-For` names the client:
   * `true` (the peer, one hop), or the proxies' addresses and CIDR ranges. Default false.
   */
  readonly trustProxy?: TrustProxy
  /**
   * How many leading bits of an IPv6 client address are the client, for the per-address caps
   * (here and the hub's): default 64, since one subscriber is given a whole /64 and could
   * otherwise count as 2^64 clients; 128 counts each address on its own. IPv4 is per address.
   */
  readonly ipv6Prefix?: number
  /**
   * On the addresses it binds: a socket must have sent its whole upgrade request this long
   * after connecting (one that sends nothing included), or it is closed. Default 10,000 ms.
   */
  readonly requestTimeoutMs?: number
  /** permessage-deflate. Default off (small binary frames gain little; it costs CPU and memory per socket). */
  readonly perMessageDeflate?: boolean | PerMessageDeflateOptions
  /**
   * Decide on an upgrade request before it becomes a connection (origin checks, IP lists).
   * Return false (or a status code, or a status and the sentence the refused client reads)
   * to refuse it. Authentication belongs in the hub's `authenticate` hook; this is for what
   * must be refused before any frame is read.
   */
  readonly verifyUpgrade?: (request: http.IncomingMessage) => boolean | number | { readonly status: number; readonly reason: string }
  /** Diagnostics. */
  readonly onEvent?: (event: WsServerEvent) => void
  /**
   * Other protocols on the same server, by path prefix (e.g. the y-websocket endpoint at
   * "/yjs", see adapters/yjs-server): an upgrade whose path is the prefix or starts with
   * prefix + "/" goes to that route's `accept` instead of the Canon protocol (and ignores
   * `path`). verifyUpgrade and the connection caps apply to routed sockets as to any other.
   */
  readonly routes?: ReadonlyArray<WsRoute>
}

/** A protocol mounted under a path prefix: it gets the raw socket after the upgrade checks passed. */
export interface WsRoute {
  readonly prefix: string
  /**
   * Largest frame the route's sockets take (default: the server's `maxFrameBytes`). The CRDT
   * routes take larger ones: a stock client sends everything it did offline in one message.
   */
  readonly maxFrameBytes?: number
  accept(ws: WebSocket, info: WsConnectionInfo): void
}

export type WsServerEvent =
  | { readonly type: "connection"; readonly remoteAddress: string | undefined }
  /** An upgrade refused over a connection cap (`status` 429: per address, 503: in all). */
  | { readonly type: "refused"; readonly remoteAddress: string; readonly status: number; readonly reason: string }
  | { readonly type: "protocol-error"; readonly remoteAddress: string | undefined; readonly message: string }
  | { readonly type: "timeout"; readonly remoteAddress: string | undefined }
  /** A socket cut to keep the server's unsent bytes within `maxUnsentBytes`: it held `unsentBytes`. */
  | { readonly type: "unsent-full"; readonly remoteAddress: string | undefined; readonly unsentBytes: number }
  | { readonly type: "encode-failed"; readonly remoteAddress: string | undefined; readonly message: string }
  | { readonly type: "socket-error"; readonly remoteAddress: string | undefined; readonly error: Error }
  | { readonly type: "listener-error"; readonly remoteAddress: string | undefined; readonly error: unknown }

/** What the server tells the acceptor about a connection (ConnectionInfo plus the upgrade request). */
export interface WsConnectionInfo extends ConnectionInfo {
  /** The client's address: the socket's peer, or the client a trusted proxy names (see `trustProxy`). */
  readonly remoteAddress: string | undefined
  /** The socket's peer (a proxy's address behind a trusted proxy). */
  readonly peerAddress: string | undefined
  /** The upgrade request's path and query. */
  readonly url: string
  /** The upgrade request's headers (cookies, origin, a proxy's X-Forwarded-For). */
  readonly headers: http.IncomingHttpHeaders
}

export interface BoundAddress {
  readonly host: string
  readonly port: number
  readonly family: "IPv4" | "IPv6"
}

export const DEFAULT_PING_INTERVAL_MS = 15_000
export const DEFAULT_PONG_TIMEOUT_MS = 15_000
export const DEFAULT_CLOSE_TIMEOUT_MS = 5_000
export const DEFAULT_MAX_CONNECTIONS_PER_ADDRESS = 64
export const DEFAULT_REQUEST_TIMEOUT_MS = 10_000

/**
 * Options for `http.createServer` that bound how long a request may take to arrive: its
 * headers (an upgrade request is nothing else) within `ms`, checked every second or so.
 * Node's defaults allow 60 s for headers and 300 s per request, checked every 30 s. A socket
 * that sends no byte at all is not covered: `server.setTimeout(ms)` closes that one.
 */
export const requestDeadlines = (ms: number): http.ServerOptions => ({
  headersTimeout: ms,
  requestTimeout: ms,
  connectionsCheckingInterval: Math.max(50, Math.min(1_000, Math.floor(ms / 4))),
})

/** One socket and what the server knows of it. */
interface Peer {
  readonly ws: WebSocket
  readonly remoteAddress: string | undefined
  listener: ConnectionListener<ClientMessage> | undefined
  /** The acceptor closed it, or it was told the connection ended: it hears nothing more. */
  done: boolean
  /** Protocol version agreed in the handshake. */
  version: number | undefined
  /** What this end remembers across frames (protocol 2's compact frames). */
  readonly session: CodecSession
  /** When the last ping was sent (pings go out every pingIntervalMs, whatever the traffic). */
  lastPingAt: number
  /** How long it has owed a sign that it reads (pong-clock.ts). */
  readonly pongs: PongClock
  readonly closed: Promise<void>
}

const KEEPALIVE_FRAME = encodeServerMessage({ type: "keepalive" })

export class WsServer {
  private readonly wss: WebSocketServer
  private readonly owned: http.Server[] = []
  private readonly peers = new Set<Peer>()
  /** Upgraders for routes whose frame limit is not the server's, by that limit. */
  private readonly routeUpgraders = new Map<number, WebSocketServer>()
  /** Sockets handed to a route (closed with the server). */
  private readonly routed = new Set<WebSocket>()
  private readonly maxFrameBytes: number
  private readonly pingIntervalMs: number
  private readonly pongTimeoutMs: number
  private readonly closeTimeoutMs: number
  private readonly requestTimeoutMs: number
  private readonly counter: ConnectionCounter
  /** What every socket holds unsent, together. */
  private readonly unsent: UnsentBudget
  private readonly socketClass: typeof WebSocket
  /** The TCP sockets of the addresses it binds (an attached server is the app's: see above). */
  private readonly socketCap: SocketCap
  private readonly trust: ProxyTrust
  private readonly ipv6Prefix: number
  private readonly sweepTimer: ReturnType<typeof setInterval>
  /** Time the process stalled past a sweep's period: no peer owes it (pong-clock.ts). */
  private readonly sweepLateness: SweepLateness
  /**
   * The hub fans one `entries` or `presence` message object out to every follower that gets
   * it: encode it once per protocol version. Keyed by the message object (hub messages are
   * never mutated after sending), then the version.
   */
  private readonly fanout = new WeakMap<ServerMessage, Map<number | undefined, Uint8Array>>()
  private closing: Promise<void> | undefined
  /** Resolves once every address is bound; rejects if one fails (`close()` then releases the others; `start` does it for you). */
  readonly ready: Promise<void>

  /** Starts a server and waits until it listens. */
  static async start(acceptor: ConnectionAcceptor, options: WsServerOptions): Promise<WsServer> {
    const server = new WsServer(acceptor, options)
    try {
      await server.ready
    } catch (e) {
      await server.close()
      throw e
    }
    return server
  }

  constructor(private readonly acceptor: ConnectionAcceptor, private readonly options: WsServerOptions) {
    if ((options.listen === undefined || options.listen.length === 0) && options.server === undefined) {
      throw new TypeError("WsServer needs `listen` addresses or a `server` to attach to.")
    }
    this.maxFrameBytes = options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES
    this.pingIntervalMs = options.pingIntervalMs ?? DEFAULT_PING_INTERVAL_MS
    this.pongTimeoutMs = options.pongTimeoutMs ?? DEFAULT_PONG_TIMEOUT_MS
    this.closeTimeoutMs = options.closeTimeoutMs ?? DEFAULT_CLOSE_TIMEOUT_MS
    this.requestTimeoutMs = options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS
    const caps = {
      perAddress: checkCap("maxConnectionsPerAddress", options.maxConnectionsPerAddress, DEFAULT_MAX_CONNECTIONS_PER_ADDRESS),
      total: checkCap("maxConnections", options.maxConnections, Infinity),
    }
    this.counter = new ConnectionCounter(caps)
    const maxUnsent = options.maxUnsentBytes ?? DEFAULT_MAX_UNSENT_BYTES
    if (!(maxUnsent >= MIN_MAX_UNSENT_BYTES)) {
      throw new TypeError(`maxUnsentBytes must be at least ${MIN_MAX_UNSENT_BYTES} bytes (${MIN_MAX_UNSENT_BYTES / 2 ** 20} MiB), not ${String(maxUnsent)}: below what one reader is sent while it reads, a large document never reaches it.`)
    }
    this.unsent = new UnsentBudget(maxUnsent)
    this.socketClass = budgetedWebSocket(this.unsent)
    this.trust = proxyTrust(options.trustProxy)
    this.ipv6Prefix = checkIpv6Prefix(options.ipv6Prefix)
    // On the addresses it binds, sockets before their upgrade count too (socket-cap.ts): at
    // twice the WebSocket caps, so the 429 or 503 over those still reaches its socket.
    this.socketCap = new SocketCap({ perAddress: socketCapFor(caps.perAddress), total: socketCapFor(caps.total), ipv6Prefix: this.ipv6Prefix, exempt: this.trust.isProxy })
    this.wss = this.upgrader(this.maxFrameBytes)
    for (const route of options.routes ?? []) {
      const max = route.maxFrameBytes
      if (max === undefined || max === this.maxFrameBytes) continue
      if (!Number.isSafeInteger(max) || max < 1) throw new TypeError(`Route ${route.prefix}: maxFrameBytes must be a positive integer (bytes), not ${String(max)}.`)
      if (!this.routeUpgraders.has(max)) this.routeUpgraders.set(max, this.upgrader(max))
    }
    if (options.server !== undefined) options.server.on("upgrade", this.onAttachedUpgrade)
    const binds = (options.listen ?? []).map((address) => this.bind(address))
    this.ready = Promise.all(binds).then(() => undefined)
    this.ready.catch(() => {})
    // One timer for every socket; checks often enough to honour both durations.
    const tick = Math.max(5, Math.min(this.pingIntervalMs, this.pongTimeoutMs) / 4)
    this.sweepLateness = new SweepLateness(tick, performance.now())
    this.sweepTimer = setInterval(() => this.sweep(), tick)
    this.sweepTimer.unref()
  }

  private bind(address: ListenAddress): Promise<void> {
    const server = http.createServer(requestDeadlines(this.requestTimeoutMs), (_req, res) => {
      const body = "This address only speaks WebSocket (Canon sync).\n"
      res.writeHead(426, { "Content-Type": "text/plain", "Content-Length": Buffer.byteLength(body), "Upgrade": "websocket" })
      res.end(body)
    })
    // A socket that sends nothing is not a request yet, so the deadlines above never see it.
    // (An upgraded socket is no longer the http server's: `ws` clears this timeout on it.)
    server.setTimeout(this.requestTimeoutMs)
    boundPipelining(server)
    // Sockets before their upgrade count too (socket-cap.ts), at twice the WebSocket caps.
    this.socketCap.attach(server)
    server.on("upgrade", (req: http.IncomingMessage, socket: Duplex, head: Buffer) => this.upgrade(req, socket, head, false))
    this.owned.push(server)
    return new Promise<void>((resolve, reject) => {
      const fail = (e: Error) => reject(new Error(`Cannot listen on ${address.host}:${address.port}: ${e.message}`))
      server.once("error", fail)
      server.listen(address.port, address.host, () => {
        server.off("error", fail)
        server.on("error", (error) => this.options.onEvent?.({ type: "socket-error", remoteAddress: undefined, error }))
        resolve()
      })
    })
  }

  /** Where it listens (the ports picked for port 0 included): its own addresses, then the attached server's. */
  addresses(): BoundAddress[] {
    return this.bound().map(({ address }) => address)
  }

  /** ws:// URLs of the bound addresses (wss:// for an attached https server). */
  urls(): string[] {
    const path = this.options.path ?? "/"
    return this.bound().map(({ address: a, secure }) => `${secure ? "wss" : "ws"}://${a.family === "IPv6" ? `[${a.host}]` : a.host}:${a.port}${path}`)
  }

  private bound(): Array<{ address: BoundAddress; secure: boolean }> {
    const servers: Array<[http.Server | https.Server, boolean]> = this.owned.map((s) => [s, false])
    if (this.options.server !== undefined) servers.push([this.options.server, this.options.server instanceof https.Server])
    const out: Array<{ address: BoundAddress; secure: boolean }> = []
    for (const [s, secure] of servers) {
      const a = s.address()
      if (a === null || typeof a === "string") continue
      out.push({ address: { host: a.address, port: a.port, family: a.family === "IPv6" || (a.family as unknown) === 6 ? "IPv6" : "IPv4" }, secure })
    }
    return out
  }

  /** The URL clients should use: `publicUrl`, else the first bound address. */
  get publicUrl(): string | undefined {
    return this.options.publicUrl ?? this.urls()[0]
  }

  /** Open sockets. */
  get connectionCount(): number {
    return this.peers.size
  }

  /** Bytes written to the sockets that have not left yet, in all (bounded by `maxUnsentBytes`), and the sockets cut to keep it so. */
  get unsentBytes(): { readonly held: number; readonly limit: number; readonly cuts: number } {
    return { held: this.unsent.unsent, limit: this.unsent.limit, cuts: this.unsent.cuts }
  }

  /** Sockets counted against the caps (upgrades in progress included): in all, or from one client address. */
  connectionsHeld(address?: string): number {
    return this.counter.held(address === undefined ? undefined : addressGroup(address, this.ipv6Prefix))
  }

  /** The open sockets, for diagnostics and tests (e.g. `terminate()` one to simulate a drop). */
  sockets(): WebSocket[] {
    return [...this.peers].map((p) => p.ws)
  }

  // ---- upgrades ----

  /** Upgrades sockets whose frames are at most `maxPayload` bytes (ws refuses larger ones with 1009). */
  private upgrader(maxPayload: number): WebSocketServer {
    return new WebSocketServer({
      noServer: true,
      clientTracking: false,
      maxPayload,
      perMessageDeflate: this.options.perMessageDeflate ?? false,
      WebSocket: this.socketClass,
      // Not in the typings: how long a started close waits for the peer's close frame.
      ...({ closeTimeout: this.closeTimeoutMs } as object),
    })
  }

  private readonly onAttachedUpgrade = (req: http.IncomingMessage, socket: Duplex, head: Buffer): void => this.upgrade(req, socket, head, true)

  private upgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer, attached: boolean): void {
    socket.on("error", () => {})
    const path = this.options.path
    const route = routeOf(this.options.routes, pathOf(req.url))
    if (route === undefined && path !== undefined && pathOf(req.url) !== path) {
      // Someone else's path: leave it to their upgrade listener if the server has one.
      if (attached && this.options.server!.listenerCount("upgrade") > 1) return
      return refuse(socket, 404)
    }
    if (this.closing !== undefined) return refuse(socket, 503)
    const remoteAddress = clientAddress(req, this.trust)
    // No peer address: the socket closed while its request was read.
    if (remoteAddress === undefined) return void socket.destroy()
    const verdict = this.options.verifyUpgrade?.(req) ?? true
    if (verdict !== true) return typeof verdict === "object" ? refuse(socket, verdict.status, verdict.reason) : refuse(socket, typeof verdict === "number" ? verdict : 403)
    const info = this.infoOf(req, remoteAddress)
    const place = this.counter.admit(info.limitKey ?? remoteAddress)
    if (!place.ok) {
      this.options.onEvent?.({ type: "refused", remoteAddress, status: place.status, reason: place.reason })
      return refuse(socket, place.status, place.reason, { "Retry-After": "5" })
    }
    // Released when the socket closes, whoever closes it (a socket gone already: at once).
    if (socket.destroyed) return place.release()
    socket.once("close", place.release)
    const upgrader = (route?.maxFrameBytes !== undefined ? this.routeUpgraders.get(route.maxFrameBytes) : undefined) ?? this.wss
    upgrader.handleUpgrade(req, socket, head, (ws) => (route !== undefined ? this.adoptRouted(route, ws, remoteAddress, info) : this.adopt(ws, remoteAddress, info)))
  }

  private infoOf(req: http.IncomingMessage, remoteAddress: string): WsConnectionInfo {
    const limitKey = addressGroup(remoteAddress, this.ipv6Prefix)
    return {
      remoteAddress, ...(limitKey !== remoteAddress ? { limitKey } : {}),
      peerAddress: normalizeAddress(req.socket.remoteAddress) ?? req.socket.remoteAddress, url: req.url ?? "/", headers: req.headers,
    }
  }

  /**
   * Counts what `ws` holds unsent against the server's bound (unsent-budget.ts). A cut
   * terminates it (a close frame would wait behind what it does not read); `cut` tells its
   * acceptor.
   */
  private countUnsent(ws: WebSocket, remoteAddress: string, info: WsConnectionInfo, cut?: (held: number) => void): void {
    this.unsent.track(ws, {
      owner: info.limitKey ?? remoteAddress,
      unsent: () => ws.bufferedAmount,
      delivered: () => deliveredBytes(ws),
      open: () => ws.readyState === WebSocket.OPEN,
      cut: (held) => {
        this.options.onEvent?.({ type: "unsent-full", remoteAddress, unsentBytes: held })
        ws.terminate()
        cut?.(held)
      },
    })
  }

  private adoptRouted(route: WsRoute, ws: WebSocket, remoteAddress: string, info: WsConnectionInfo): void {
    this.routed.add(ws)
    this.countUnsent(ws, remoteAddress, info)
    ws.on("close", () => {
      this.routed.delete(ws)
      this.unsent.release(ws)
    })
    ws.on("error", (error) => this.options.onEvent?.({ type: "socket-error", remoteAddress, error }))
    if (this.closing !== undefined) return void ws.close(1001, "The server is shutting down.")
    this.options.onEvent?.({ type: "connection", remoteAddress })
    try {
      route.accept(ws, info)
    } catch (e) {
      this.options.onEvent?.({ type: "listener-error", remoteAddress, error: e })
      ws.close(1011, "The server could not take the connection.")
    }
  }

  private adopt(ws: WebSocket, remoteAddress: string, info: WsConnectionInfo): void {
    let resolveClosed!: () => void
    const peer: Peer = {
      ws, remoteAddress, listener: undefined, done: false, version: undefined, session: new CodecSession(),
      lastPingAt: performance.now(), pongs: new PongClock(), closed: new Promise<void>((r) => (resolveClosed = r)),
    }
    this.peers.add(peer)
    this.countUnsent(ws, remoteAddress, info, (held) =>
      this.notify(peer, { code: "slow-consumer", reason: `The hub's unsent bytes were full, and this connection had stalled or was the newest (${held} bytes unread); reconnect to catch up.` }))
    let error: Error | undefined
    ws.on("error", (e) => {
      error ??= e
      this.options.onEvent?.({ type: "socket-error", remoteAddress, error: e })
    })
    ws.on("close", (code, reason) => {
      this.peers.delete(peer)
      this.unsent.release(ws)
      resolveClosed()
      // The ws library closed it for a receive error (1009: frame too big, 1002...): say so.
      this.notify(peer, (error !== undefined ? receiveError(error) : undefined) ?? closeInfo(code, reason))
    })
    ws.on("message", (data, isBinary) => this.receive(peer, data, isBinary))
    // A pong counts only if it echoes one of the hub's pings; a frame from the peer says it sends, not that it reads.
    ws.on("pong", (data) => peer.pongs.pong(data))
    if (this.closing !== undefined) {
      ws.close(1001, toWsClose("going-away", "The server is shutting down.").reason)
      return
    }
    this.options.onEvent?.({ type: "connection", remoteAddress })
    const conn = this.connection(peer)
    try {
      peer.listener = this.acceptor.accept(conn, info)
    } catch (e) {
      this.options.onEvent?.({ type: "listener-error", remoteAddress, error: e })
      conn.close("internal-error", "The hub could not take the connection.")
    }
  }

  private connection(peer: Peer): Connection<ServerMessage> {
    const server = this
    return {
      send(message) {
        if (peer.done || peer.ws.readyState !== WebSocket.OPEN) return
        // One frame per entries message for every peer, except compact ones (their channel
        // numbers belong to each connection), and per presence message (the hub relays one
        // object to every follower that sees it: encoded once, not once per receiver).
        const shared = (message.type === "entries" && message.compact !== true) || message.type === "presence"
        const frames = shared ? server.fanout.get(message) : undefined
        const cached = frames?.get(peer.version)
        const frame = cached ?? encodeFrame(encodeServerMessage, message, server.maxFrameBytes, peer.version, peer.session)
        if (isEncodeFailure(frame)) {
          // The protocol cannot carry it (over the frame limit...): the peer would miss a
          // message, so the connection ends; never a throw into the hub.
          server.options.onEvent?.({ type: "encode-failed", remoteAddress: peer.remoteAddress, message: frame.reason })
          server.end(peer, frame.code === "too-large" ? "too-large" : "internal-error", frame.reason)
          return
        }
        if (shared && cached === undefined) {
          if (frames === undefined) server.fanout.set(message, new Map([[peer.version, frame]]))
          else frames.set(peer.version, frame)
        }
        if (message.type === "welcome") peer.version = message.protocol
        peer.ws.send(frame)
      },
      close(code = "closed", reason = "Closed by the hub.") {
        if (peer.done) return
        peer.done = true
        const frame = toWsClose(code, reason)
        peer.ws.close(frame.code, frame.reason)
      },
      get bufferedAmount() {
        return peer.ws.bufferedAmount
      },
      // The hub's input flow control: the socket is not read while paused (nor its pongs:
      // that time does not count against the pong timeout).
      pause: () => {
        peer.pongs.paused(performance.now())
        peer.ws.pause()
      },
      resume: () => {
        peer.pongs.resumed(performance.now())
        peer.ws.resume()
      },
    }
  }

  private receive(peer: Peer, data: RawData, isBinary: boolean): void {
    if (peer.done) return
    if (!isBinary) return this.protocolError(peer, "A text frame; Canon frames are binary.")
    const frame = Array.isArray(data) ? Buffer.concat(data) : data instanceof ArrayBuffer ? new Uint8Array(data) : data
    const decoded = decodeClientMessage(frame, { maxFrameBytes: this.maxFrameBytes, session: peer.session, ...(peer.version !== undefined ? { version: peer.version } : {}) })
    if (decoded.ok === "ignore") return
    if (decoded.ok === false) return this.protocolError(peer, `An undecodable frame (${decoded.error.code}): ${decoded.error.message}`)
    try {
      peer.listener?.onMessage(decoded.message)
    } catch (e) {
      this.options.onEvent?.({ type: "listener-error", remoteAddress: peer.remoteAddress, error: e })
      this.end(peer, "internal-error", "The hub failed on a message.")
    }
  }

  private protocolError(peer: Peer, message: string): void {
    this.options.onEvent?.({ type: "protocol-error", remoteAddress: peer.remoteAddress, message })
    if (peer.ws.readyState === WebSocket.OPEN) {
      try {
        peer.ws.send(encodeServerMessage({ type: "error", code: "protocol-error", message }, { maxFrameBytes: this.maxFrameBytes }))
      } catch {
        // An error message always encodes; nothing to add if it somehow did not.
      }
    }
    this.end(peer, "protocol-error", message)
  }

  /** The transport ends a connection: close the socket and tell the acceptor why. */
  private end(peer: Peer, code: string, reason: string): void {
    const frame = toWsClose(code, reason)
    if (peer.ws.readyState === WebSocket.OPEN) peer.ws.close(frame.code, frame.reason)
    this.notify(peer, { code, reason })
  }

  /** Tells the acceptor once that the connection is over (asynchronously, never inside its own calls). */
  private notify(peer: Peer, info: CloseInfo): void {
    if (peer.done) return
    peer.done = true
    const listener = peer.listener
    if (listener === undefined) return
    setImmediate(() => {
      try {
        listener.onClose(info)
      } catch (e) {
        this.options.onEvent?.({ type: "listener-error", remoteAddress: peer.remoteAddress, error: e })
      }
    })
  }

  // ---- heartbeat ----

  private sweep(): void {
    // What each socket holding bytes delivered since it was last looked at: the unsent bound's stalls.
    this.unsent.refresh()
    const now = performance.now()
    const late = this.sweepLateness.at(now)
    for (const peer of this.peers) {
      if (peer.ws.readyState !== WebSocket.OPEN) continue
      // No sign that it reads for the timeout, counting only the time it was read (pong-clock.ts).
      if (peer.pongs.overdue(peer.ws, now, this.pongTimeoutMs, late)) {
        this.options.onEvent?.({ type: "timeout", remoteAddress: peer.remoteAddress })
        peer.ws.terminate()
        this.notify(peer, { code: "timeout", reason: `No answer to a ping within ${this.pongTimeoutMs} ms.` })
      } else if (now - peer.lastPingAt >= this.pingIntervalMs) {
        // Every interval, even to a chatty peer: the ping (unless MAX_UNANSWERED_PINGS wait
        // unanswered) and the keepalive are the traffic a quiet hub sends, which the client's
        // idle timer relies on.
        peer.lastPingAt = now
        peer.pongs.sendPing(peer.ws, now)
        // Pages cannot see pings: this frame is what keeps a browser's idle timer quiet.
        peer.ws.send(KEEPALIVE_FRAME)
      }
    }
  }

  // ---- shutdown ----

  /**
   * Stops accepting, closes every socket with `going-away` (terminating those that do not
   * finish the closing handshake within `closeTimeoutMs`) and unbinds its own addresses. An
   * attached server is left running. The acceptor hears `going-away` for each connection.
   */
  close(): Promise<void> {
    this.closing ??= this.shutdown()
    return this.closing
  }

  private async shutdown(): Promise<void> {
    clearInterval(this.sweepTimer)
    this.options.server?.off("upgrade", this.onAttachedUpgrade)
    await this.ready.catch(() => {})
    const unbound = this.owned.map((s) => new Promise<void>((resolve) => {
      if (!s.listening) return resolve()
      s.close(() => resolve())
      s.closeIdleConnections()
    }))
    const peers = [...this.peers]
    for (const peer of peers) {
      this.notify(peer, { code: "going-away", reason: "The server is shutting down." })
      const frame = toWsClose("going-away", "The server is shutting down.")
      if (peer.ws.readyState === WebSocket.OPEN) peer.ws.close(frame.code, frame.reason)
    }
    // Routed sockets (other protocols): a going-away close, terminated with the rest.
    const routed = [...this.routed]
    for (const ws of routed) if (ws.readyState === WebSocket.OPEN) ws.close(1001, "The server is shutting down.")
    const routedClosed = routed.map((ws) => new Promise<void>((r) => (ws.readyState === WebSocket.CLOSED ? r() : ws.once("close", () => r()))))
    const all = Promise.all([...peers.map((p) => p.closed), ...routedClosed])
    let timer: ReturnType<typeof setTimeout> | undefined
    const late = new Promise<void>((resolve) => (timer = setTimeout(resolve, this.closeTimeoutMs)))
    await Promise.race([all, late])
    clearTimeout(timer)
    for (const peer of peers) peer.ws.terminate()
    for (const ws of routed) ws.terminate()
    await all
    this.wss.close()
    for (const upgrader of this.routeUpgraders.values()) upgrader.close()
    for (const s of this.owned) s.closeAllConnections()
    await Promise.all(unbound)
  }
}

const pathOf = (url: string | undefined): string => {
  const u = url ?? "/"
  const q = u.indexOf("?")
  return q < 0 ? u : u.slice(0, q)
}

const routeOf = (routes: ReadonlyArray<WsRoute> | undefined, path: string): WsRoute | undefined =>
  routes?.find((r) => path === r.prefix || path.startsWith(r.prefix.endsWith("/") ? r.prefix : `${r.prefix}/`))

/** Answers an upgrade request with an HTTP error and a one-line body (the status text, or `line`). */
const refuse = (socket: Duplex, status: number, line?: string, headers: Readonly<Record<string, string>> = {}): void => {
  const text = http.STATUS_CODES[status] ?? "Refused"
  const body = `${line ?? text}\n`
  const extra = Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join("")
  socket.once("finish", () => socket.destroy())
  socket.end(`HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\n${extra}Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`)
}

/** A received close, in Canon terms (the peer is a client: it had opened). */
const closeInfo = (code: number, reason: Buffer): CloseInfo => fromWsClose(code, reason.toString(), true)

/** What the `ws` library's receive errors mean for the acceptor. */
const receiveError = (error: Error): CloseInfo | undefined => {
  const code = (error as { code?: unknown }).code
  if (typeof code !== "string" || !code.startsWith("WS_ERR_")) return undefined
  if (code === "WS_ERR_UNSUPPORTED_MESSAGE_LENGTH" || code === "WS_ERR_UNSUPPORTED_DATA_PAYLOAD_LENGTH") return { code: "too-large", reason: error.message }
  return { code: "protocol-error", reason: error.message }
}
