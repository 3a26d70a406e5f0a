/**
 * In-memory transport with fault injection: the simulator's network.
 *
 * Each connection is two FIFO directions; a message arrives after a (seeded) delay, never
 * before one sent earlier on the same direction. Faults:
 * - `drop(client)`: connections of that client are reset; messages in flight are lost and
 *   each side learns of it after its own delay (as with a TCP reset).
 * - `partition(client)`: the same, and new connections from it fail until `heal(client)`.
 * - `stall(client)`: the client stops reading; messages to it pile up (bufferedAmount grows)
 *   until `unstall(client)`.
 * - `stopServer()`: the hub "process" is gone: every connection resets, connects fail until
 *   `listen` is called with the new hub.
 * `bufferedAmount` counts messages in flight, or with `encode` and `countBytes` their frames'
 * bytes, as a socket does (what the hub's and the client's byte limits are written for).
 * Messages are passed as values (structuredClone'd, so no object is shared across peers).
 */
import type {
  ClientMessage, ClientTransport, CloseInfo, Connection, ConnectionAcceptor, ConnectionListener, Runtime, ServerMessage,
} from "../../core/index.js"
import { CodecSession, DEFAULT_MAX_FRAME_BYTES, decodeClientMessage, decodeServerMessage, encodeClientMessage, encodeServerMessage } from "../../core/protocol/codec.js"

export interface MemoryNetworkOptions {
  /** Delay of each message, ms (default 0). */
  readonly latency?: () => number
  /** Clone messages on send (default true): catches accidental sharing between peers. */
  readonly clone?: boolean
  /** Send real frames through the protocol codec instead of cloning (default false). */
  readonly encode?: boolean
  /**
   * With `encode`: the largest frame either end carries (default 1 MiB, the codec's). A
   * message over it ends its connection with `too-large` on both ends, as the WebSocket
   * transports do; the sender's `send` never throws.
   */
  readonly maxFrameBytes?: number
  /** With `encode`: `bufferedAmount` counts frame bytes, not messages (default false). */
  readonly countBytes?: boolean
  /** Told of each message the frame limit refused (the simulator fails on an honest peer's). */
  readonly onRefused?: (refused: RefusedFrame) => void
}

/** A message over the frame limit, which ended its connection. */
export interface RefusedFrame {
  /** The transport name of the connection's client. */
  readonly client: string
  readonly from: "client" | "hub"
  readonly type: string
  readonly bytes: number
}

interface Direction<T> {
  lastAt: number
  inflight: number
  listener: ConnectionListener<T> | undefined
}

class Link {
  open = true
  readonly toServer: Direction<ClientMessage> = { lastAt: 0, inflight: 0, listener: undefined }
  readonly toClient: Direction<ServerMessage> = { lastAt: 0, inflight: 0, listener: undefined }
  /** Bumped on reset: deliveries scheduled before it are dropped. */
  epoch = 0
  readonly clientSession = new CodecSession()
  readonly serverSession = new CodecSession()
  /** The protocol version the handshake agreed (1 until the welcome passes). */
  version = 1
  /** The hub stopped reading this link (input flow control). */
  paused = false
  /** Messages to the hub waiting, in order, while it is paused and until delivered after `resume`. */
  held: Array<() => void> | undefined
  constructor(readonly client: string) {}
}

/**
 * Through the codec and back, as a real transport would: a decode failure is a bug here. Each
 * end of a link has its session (what compact frames refer to), encoding what it sends and
 * decoding what it receives, in order. The message comes back as the other end decodes it,
 * with its frame's size; a frame over `maxFrameBytes` comes back as its size alone.
 */
const roundTrip = <T>(link: Link, toServer: boolean, message: T, maxFrameBytes: number): { readonly message: T; readonly bytes: number } | number => {
  const version = link.version
  const unbounded = { version, maxFrameBytes: Number.MAX_SAFE_INTEGER }
  const frame = toServer
    ? encodeClientMessage(message as ClientMessage, { ...unbounded, session: link.clientSession })
    : encodeServerMessage(message as ServerMessage, { ...unbounded, session: link.serverSession })
  if (frame.length > maxFrameBytes) return frame.length
  const decoded = toServer
    ? decodeClientMessage(frame, { version, maxFrameBytes, session: link.serverSession })
    : decodeServerMessage(frame, { version, maxFrameBytes, session: link.clientSession })
  if (decoded.ok !== true) throw new Error(`Codec round trip failed: ${decoded.ok === false ? decoded.error.message : "ignored"}`)
  const m = decoded.message as T
  if ((m as ServerMessage).type === "welcome") link.version = (m as ServerMessage & { type: "welcome" }).protocol
  return { message: m, bytes: frame.length }
}

export class MemoryNetwork {
  private acceptor: ConnectionAcceptor | undefined
  private readonly links = new Set<Link>()
  /** Connections on their way to the hub (not accepted yet): a drop loses them too. */
  private readonly connecting = new Set<Link>()
  private readonly partitioned = new Set<string>()
  /** Clients that stopped reading: messages to them wait (and count as buffered). */
  private readonly stalled = new Map<string, Array<() => void>>()
  private readonly latency: () => number
  private readonly clone: boolean
  private readonly encode: boolean
  private readonly countBytes: boolean
  private readonly maxFrameBytes: number
  private readonly onRefused: ((refused: RefusedFrame) => void) | undefined
  /** Messages delivered, for tests and benchmarks. */
  delivered = 0
  /** The most any connection held unread (bufferedAmount) each way, for tests and the simulator. */
  readonly peak = { toServer: 0, toClient: 0 }

  constructor(private readonly runtime: Runtime, options: MemoryNetworkOptions = {}) {
    this.latency = options.latency ?? (() => 0)
    this.clone = options.clone ?? true
    this.encode = options.encode ?? false
    this.countBytes = this.encode && options.countBytes === true
    this.maxFrameBytes = options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES
    this.onRefused = options.onRefused
  }

  /** Attaches the hub (again, after a restart). */
  listen(acceptor: ConnectionAcceptor): void {
    this.acceptor = acceptor
  }

  /** The hub process is gone: reset every connection; connects fail until `listen`. */
  stopServer(): void {
    this.acceptor = undefined
    for (const link of [...this.links]) this.reset(link, "reset", "The hub went away.")
  }

  /** Resets the connections of `client` (or every client). */
  drop(client?: string): void {
    for (const link of [...this.links]) if (client === undefined || link.client === client) this.reset(link, "reset", "Connection lost.")
    // Not accepted yet: the hub never sees it (as a connection reset before the handshake).
    for (const link of [...this.connecting]) {
      if (client !== undefined && link.client !== client) continue
      this.connecting.delete(link)
      link.open = false
      const toClient = link.toClient.listener
      this.runtime.setTimer(this.latency(), () => toClient?.onClose({ code: "reset", reason: "Connection lost." }))
    }
  }

  partition(client: string): void {
    this.partitioned.add(client)
    this.drop(client)
  }

  heal(client?: string): void {
    if (client === undefined) this.partitioned.clear()
    else this.partitioned.delete(client)
  }

  /** The client stops reading: messages to it pile up in its connection's buffer. */
  stall(client: string): void {
    if (!this.stalled.has(client)) this.stalled.set(client, [])
  }

  /** The client reads again: what piled up is delivered in order. */
  unstall(client: string): void {
    const held = this.stalled.get(client)
    this.stalled.delete(client)
    for (const deliver of held ?? []) deliver()
  }

  isStalled(client: string): boolean {
    return this.stalled.has(client)
  }

  isPartitioned(client: string): boolean {
    return this.partitioned.has(client)
  }

  get connectionCount(): number {
    return this.links.size
  }

  /** A transport for one client; `name` is what faults address. */
  transport(name: string): ClientTransport {
    return { connect: (listener) => this.connect(name, listener) }
  }

  private deliver<T>(link: Link, dir: Direction<T>, message: T): void {
    if (!link.open) return
    const epoch = link.epoch
    const toServer = dir === (link.toServer as Direction<unknown>)
    const framed = this.encode ? roundTrip(link, toServer, message, this.maxFrameBytes) : undefined
    if (typeof framed === "number") {
      // As the WebSocket transports: the connection ends, both ends hear why, the sender is not thrown at.
      const type = (message as { type: string }).type
      this.onRefused?.({ client: link.client, from: toServer ? "client" : "hub", type, bytes: framed })
      return this.reset(link, "too-large", `A ${type} message of ${framed} bytes is over the frame limit of ${this.maxFrameBytes} bytes.`)
    }
    const payload = framed !== undefined ? framed.message : this.clone ? structuredClone(message) : message
    const weight = this.countBytes && framed !== undefined ? framed.bytes : 1
    const now = this.runtime.now()
    const at = Math.max(dir.lastAt, now + this.latency())
    dir.lastAt = at
    dir.inflight += weight
    if (toServer) this.peak.toServer = Math.max(this.peak.toServer, dir.inflight)
    else this.peak.toClient = Math.max(this.peak.toClient, dir.inflight)
    const arrive = () => {
      dir.inflight -= weight
      if (link.epoch !== epoch) return
      this.delivered++
      dir.listener?.onMessage(payload)
    }
    this.runtime.setTimer(at - now, () => {
      const held = dir === (link.toClient as Direction<unknown>) ? this.stalled.get(link.client) : link.held
      if (held !== undefined) held.push(arrive)
      else arrive()
    })
  }

  private reset(link: Link, code: string, reason: string): void {
    if (!link.open) return
    link.open = false
    link.epoch++
    this.links.delete(link)
    const info: CloseInfo = { code, reason }
    const toServer = link.toServer.listener
    const toClient = link.toClient.listener
    this.runtime.setTimer(this.latency(), () => toServer?.onClose(info))
    this.runtime.setTimer(this.latency(), () => toClient?.onClose(info))
  }

  private connect(name: string, listener: ConnectionListener<ServerMessage>): Connection<ClientMessage> {
    const link = new Link(name)
    link.toClient.listener = listener
    const net = this
    const clientEnd: Connection<ClientMessage> = {
      send: (m) => net.deliver(link, link.toServer, m),
      close: (code = "closed", reason = "Closed by the client.") => net.closeFrom(link, "client", code, reason),
      get bufferedAmount() { return link.toServer.inflight },
    }
    this.connecting.add(link)
    this.runtime.setTimer(this.latency(), () => {
      this.connecting.delete(link)
      const acceptor = this.acceptor
      if (acceptor === undefined || this.partitioned.has(name)) {
        link.open = false
        listener.onClose({ code: "unreachable", reason: acceptor === undefined ? "No hub is listening." : "The network is partitioned." })
        return
      }
      if (!link.open) return
      this.links.add(link)
      const serverEnd: Connection<ServerMessage> = {
        send: (m) => net.deliver(link, link.toClient, m),
        close: (code = "closed", reason = "Closed by the hub.") => net.closeFrom(link, "server", code, reason),
        get bufferedAmount() { return link.toClient.inflight },
        pause: () => {
          link.paused = true
          link.held ??= []
        },
        // What waited is delivered in order, in a later task (never inside the hub's call);
        // what arrives meanwhile queues behind it, and a pause on the way stops the rest.
        resume: () => {
          if (!link.paused) return
          link.paused = false
          this.runtime.setTimer(0, () => {
            const held = link.held
            while (held !== undefined && held.length > 0 && !link.paused) held.shift()!()
            if (!link.paused) link.held = undefined
          })
        },
      }
      link.toServer.listener = acceptor.accept(serverEnd, { remoteAddress: `memory:${name}` })
      listener.onOpen?.()
    })
    return clientEnd
  }

  /** A graceful close: messages already sent still arrive, then the peer hears the close. */
  private closeFrom(link: Link, side: "client" | "server", code: string, reason: string): void {
    if (!link.open) return
    link.open = false
    this.links.delete(link)
    const peer = side === "client" ? link.toServer : link.toClient
    // The closing side stops hearing from its peer at once.
    if (side === "client") link.toClient.listener = undefined
    else link.toServer.listener = undefined
    const now = this.runtime.now()
    const at = Math.max(peer.lastAt, now + this.latency())
    const epoch = link.epoch
    this.runtime.setTimer(at - now, () => {
      if (link.epoch === epoch) (peer.listener as ConnectionListener<unknown> | undefined)?.onClose({ code, reason })
    })
  }
}
