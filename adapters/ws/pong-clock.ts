/**
 * How long a socket has given no sign that it reads: the one liveness rule of every route
 * (/sync, /yjs, /automerge). A socket is dropped once this passes the route's timeout.
 *
 * - A frame from the peer is no sign: a peer can send without ever reading, and what the hub
 *   answers it would wait in the hub.
 * - A pong is, but only one that echoes a ping the hub sent (each ping carries a random
 *   nonce): a pong sent unasked proves nothing, since a deaf peer can send those.
 * - So is what the hub sent leaving its buffers (`progress`): the ping waits behind
 *   everything queued before it, so a slow reader working through a large message (a whole
 *   Yjs document, a snapshot window) would otherwise miss the deadline while reading all
 *   along. Only progress of at least MIN_READ_BYTES_PER_SECOND counts, so a peer that reads
 *   a trickle does not hold its backlog forever. Once the hub's buffers are empty, what is
 *   left is in the kernel's and the network's, out of sight: a reader seen reading at rate r
 *   is given MAX_IN_FLIGHT_BYTES / r more (at most MAX_IN_FLIGHT_MS) for it. A peer that reads
 *   nothing moves nothing once the kernel's buffers are full (it was seen taking them fast,
 *   so it is given little more), and it runs out.
 * - Time the hub holds the socket unread (its input flow control) is not owed, since the pong
 *   is not read meanwhile; time it is read is. A peer therefore cannot stay by getting itself
 *   held at every sweep, and an honest peer held by a slow disk is not dropped for it.
 * - Nor is time the hub's own process stalled (a long synchronous task, a starved CPU), seen
 *   as its sweep running late (`SweepLateness`): the first sweep after a stall runs before the
 *   sockets are read, so a pong waiting in the kernel would be found late. That sweep alone
 *   takes the stall off what it judges (`overdue`'s `stalledMs`), and a reading pace is
 *   measured without it; nothing is forgiven for good, so stalls made on purpose at every
 *   sweep stretch a deaf peer's life by at most one stall.
 *
 * @example
 * ```ts
 * const clock = new PongClock()
 * ws.on("pong", (data) => clock.pong(data))
 * setInterval(() => {
 *   const now = Date.now()
 *   if (clock.overdue(ws, now, timeoutMs)) return ws.terminate()
 *   ws.ping(clock.ping(now))
 * }, timeoutMs / 3)
 * ```
 */
import { randomBytes } from "node:crypto"
import type { WebSocket } from "ws"

/** Slower than this, reading is not a sign of life (16 kbit/s): the time is owed as if nothing moved. */
export const MIN_READ_BYTES_PER_SECOND = 2048
/**
 * What may still be on the way to a reader once the hub's buffers are empty: the kernel's
 * buffers and the network's (about 4 MB on loopback). A reader seen reading at rate r is given
 * this over r more before its pong is late, at most MAX_IN_FLIGHT_MS: the ping waits behind it.
 */
export const MAX_IN_FLIGHT_BYTES = 8 << 20
export const MAX_IN_FLIGHT_MS = 120_000
/** Pings remembered unanswered (a pong to a later one answers the earlier ones too). */
const MAX_NONCES = 8

export class PongClock {
  /** Since when a sign of life is owed (the ping, or the last progress after it); undefined: nothing owed. */
  #owedSince: number | undefined
  #pausedAt: number | undefined
  readonly #nonces: Uint8Array[] = []
  /** The last `progress` sample: bytes delivered, and when. */
  #delivered = -1
  #sampledAt = 0
  /** Time given, since the last progress, for what may still be in flight to a reader at the pace it read. */
  #inFlightMs = 0

  /** A ping goes out at `now`: the nonce to send with it. Owed from now, unless something older is. */
  ping(now: number): Uint8Array {
    const nonce = randomBytes(8)
    this.#nonces.push(nonce)
    if (this.#nonces.length > MAX_NONCES) this.#nonces.shift()
    this.#owedSince ??= now
    return nonce
  }

  /** A pong with `data` arrived: it answers if it echoes a ping still unanswered. Returns whether it did. */
  pong(data: Uint8Array): boolean {
    const i = this.#nonces.findIndex((n) => n.length === data.length && n.every((b, k) => b === data[k]))
    if (i < 0) return false
    this.#nonces.length = 0
    this.#owedSince = undefined
    this.#inFlightMs = 0
    return true
  }

  /**
   * The socket has delivered `delivered` bytes in all by `now` (`deliveredBytes`): if that grew
   * fast enough since the last sample, the peer is reading, and what was owed is forgiven.
   * `stalledMs` of the time since the last sample the hub's process did nothing (a late sweep).
   */
  progress(delivered: number, now: number, stalledMs = 0): void {
    const before = this.#delivered
    const elapsed = Math.max(0, now - this.#sampledAt - (stalledMs > 0 ? stalledMs : 0))
    this.#delivered = delivered
    this.#sampledAt = now
    if (before < 0 || this.#owedSince === undefined) return
    const moved = delivered - before
    if (moved >= (MIN_READ_BYTES_PER_SECOND * elapsed) / 1000 && moved > 0) {
      this.#owedSince = Math.max(this.#owedSince, now)
      this.#inFlightMs = Math.min(MAX_IN_FLIGHT_MS, (MAX_IN_FLIGHT_BYTES * Math.max(elapsed, 1)) / moved)
    }
  }

  /** Whether a ping is unanswered. */
  get waiting(): boolean {
    return this.#owedSince !== undefined
  }

  /** The hub stops reading the socket at `now`. */
  paused(now: number): void {
    this.#pausedAt ??= now
  }

  /** The hub reads the socket again at `now`: the time it was held is not owed. */
  resumed(now: number): void {
    if (this.#pausedAt !== undefined && this.#owedSince !== undefined) this.#owedSince += now - Math.max(this.#pausedAt, this.#owedSince)
    this.#pausedAt = undefined
  }

  /**
   * A route's sweep at `now`: samples what `ws` delivered (`progress`), then whether a sign of
   * life has been owed for `timeoutMs` or more (the socket is then to be terminated). A sweep
   * that ran `stalledMs` late (`SweepLateness`) judges without that time: its sockets are
   * read only after it. The next sweep judges it all again.
   */
  overdue(ws: WebSocket, now: number, timeoutMs: number, stalledMs = 0): boolean {
    this.progress(deliveredBytes(ws), now, stalledMs)
    return this.waiting && this.owed(now) - (stalledMs > 0 ? stalledMs : 0) >= timeoutMs
  }

  /**
   * Milliseconds a sign of life has been owed while the socket was read (0 when nothing is
   * owed), less the time given to a reader for what may still be on its way to it.
   */
  owed(now: number): number {
    const since = this.#owedSince
    // While held, owed stops growing where the hold began (or where it was owed from, if later).
    return since === undefined ? 0 : Math.max(0, (this.#pausedAt === undefined ? now : Math.max(this.#pausedAt, since)) - since - this.#inFlightMs)
  }
}

/**
 * How late a route's periodic sweep runs, past its period: a timer fires late only when the
 * process was busy, so that is time no socket was read (PongClock's `overdue`).
 *
 * @example
 * ```ts
 * const lateness = new SweepLateness(periodMs, Date.now())
 * setInterval(() => {
 *   const now = Date.now()
 *   const late = lateness.at(now)
 *   for (const c of conns) if (c.pongs.overdue(c.ws, now, timeoutMs, late)) c.ws.terminate()
 * }, periodMs)
 * ```
 */
export class SweepLateness {
  #last: number
  /** `startedAt`: when the periodic timer was set (the first sweep is due one period later). */
  constructor(private readonly periodMs: number, startedAt: number) {
    this.#last = startedAt
  }

  /** The sweep runs at `now`: how many milliseconds late (0 for an early one). */
  at(now: number): number {
    const late = Math.max(0, now - this.#last - this.periodMs)
    this.#last = now
    return late
  }
}

/** What `deliveredBytes` reads of a net.Socket (Node's stream and handle state; absent parts read as nothing). */
interface SocketState {
  readonly bytesWritten?: number
  readonly writableLength?: number
  readonly _writableState?: { readonly writing?: boolean; readonly writelen?: number }
  readonly _handle?: { readonly writeQueueSize?: number } | null
}

/**
 * Bytes the socket has handed to the network in all (written, not waiting in its buffers):
 * grows while the peer reads, stops once it does not and the kernel's buffers are full. It
 * counts the part of the write in progress that the kernel took: the hub writes a whole Yjs
 * document as one chunk, and a slow reader takes seconds over it. 0 when the socket is not
 * reachable (then only pongs count).
 */
export const deliveredBytes = (ws: WebSocket): number => {
  const socket = (ws as unknown as { _socket?: SocketState })._socket
  if (socket?.bytesWritten === undefined || socket.writableLength === undefined) return 0
  const state = socket._writableState
  const inFlight = state?.writing === true && state.writelen !== undefined ? state.writelen - (socket._handle?.writeQueueSize ?? state.writelen) : 0
  return socket.bytesWritten - socket.writableLength + inFlight
}
