/**
 * How long a socket has given no sign that it reads: the one liveness rule of every route
 * (/sync, /yjs, /automerge). A socket is dropped once this passes the route's timeout.
 *
 * - A frame from the peer is no sign: a peer can send without ever reading, and what the hub
 *   answers it would wait in the hub.
 * - A pong is, but only one that echoes a ping the hub sent (each ping carries a random
 *   nonce): a pong sent unasked proves nothing, since a deaf peer can send those. It answers
 *   its own ping and the earlier ones, not the later: a peer that keeps a nonce back and
 *   sends it once it has stopped reading clears only what was owed before that ping.
 * - So is what the hub sent leaving its buffers (`progress`): the ping waits behind
 *   everything queued before it, so a slow reader working through a large message (a whole
 *   Yjs document, a snapshot window) would otherwise miss the deadline while reading all
 *   along. What the hub can see of that is coarse, and the rule is built around it:
 *   - The kernel takes more from a blocked writer only once a good share of its buffer is
 *     free, so a steady reader is seen in bursts (on loopback, 1.5 MB every 1.5 s at 1 MB/s).
 *     The pace is measured from the last progress, not the last sweep: a burst seen in one
 *     sweep was read over all the time since the one before.
 *   - Only from a sample where the hub still held bytes for the socket: the kernel's buffers
 *     were full then, so what it took since is what the reader read. What the kernel takes
 *     while it may have room (at once, a buffer's worth) is no sign of reading.
 *   - Only a pace of at least MIN_READ_BYTES_PER_SECOND counts, so a peer that reads a trickle
 *     does not hold its backlog forever.
 *   - The pong waits behind all the peer has not read, which the hub cannot see: the kernel's
 *     buffers, and maybe a second buffer it fills at line speed (a proxy's, the peer's own),
 *     which looks like fast reading. So from the last progress the reader is given the time
 *     what it was sent since the last ping it answered takes at the slowest pace that counts,
 *     however fast it was seen reading, at most MAX_UNREAD_MS: a peer that stops reading
 *     runs out within that and the timeout of its last read (pong-clock.property.test.ts),
 *     counted in the time the socket was read (below).
 * - No more than MAX_UNANSWERED_PINGS pings wait unanswered: more would only pile up behind
 *   what a slow reader is working through.
 * - Time the hub holds the socket unread (its input flow control) is not owed, since the pong
 *   is not read meanwhile, up to MAX_HELD_MS a wait; time it is read is. An honest peer held by
 *   a slow disk is not dropped for it (for up to MAX_HELD_MS), and a peer that gets itself held
 *   at every chance (past its command rate, its reads a trickle between holds) gains that much
 *   at most. (So in wall time, the bounds here grow by up to MAX_HELD_MS.)
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
 *   const now = performance.now()
 *   if (clock.overdue(ws, now, timeoutMs)) return ws.terminate()
 *   clock.sendPing(ws, now)
 * }, timeoutMs / 3)
 * ```
 */
import { randomBytes } from "node:crypto"
import type { WebSocket } from "ws"

/** Slower than this, reading is not a sign of life (16 kbit/s): the time is owed as if nothing moved. */
export const MIN_READ_BYTES_PER_SECOND = 2048
/**
 * The most a reader is given for what it has not yet read (the time that takes at
 * MIN_READ_BYTES_PER_SECOND): a peer that stops reading runs out within this and the timeout.
 */
export const MAX_UNREAD_MS = 120_000
/**
 * The most time held unread that is not owed, per wait: a peer can get itself held (past its
 * command rate, say) as often as it likes, and without a bound a deaf one that did so stayed
 * for good (attack review r21).
 */
export const MAX_HELD_MS = 120_000
/**
 * Pings unanswered at most: past that, `ping` sends none. A pong to a later ping answers the
 * earlier ones too, so more would prove nothing sooner; they would only queue behind what a
 * slow reader is working through and reach it at once (a stock `ws` client, from 8.23,
 * terminates itself past 60 pongs waiting to be sent).
 */
export const MAX_UNANSWERED_PINGS = 8

/** A time, with how long the socket had been held unread by then (holds are not owed, up to MAX_HELD_MS). */
interface Moment {
  readonly at: number
  readonly held: number
}

export class PongClock {
  /**
   * Since when a sign of life is owed (the oldest unanswered ping, or the last progress after
   * it); undefined: nothing owed.
   */
  #owedSince: Moment | undefined
  /** When the current hold began (undefined: the socket is read), and how long earlier holds lasted. */
  #pausedAt: number | undefined
  #heldMs = 0
  /**
   * Pings unanswered, oldest first: each with when it went out and where it sits in what the
   * socket was given (bytes before it): its pong shows the peer read that far.
   */
  readonly #pings: Array<Moment & { readonly nonce: Uint8Array; readonly position: number }> = []
  /** Bytes delivered at the last sample (`progress`). */
  #delivered = 0
  /** Bytes the peer has shown it read: those before a ping it answered. */
  #read = 0
  /**
   * Where a reading pace is measured from: the bytes delivered at the last progress (or at the
   * last sample while nothing was owed), when, how much of the time since the process stalled,
   * and whether the hub still held bytes for the socket then. Measured from there, not from the
   * last sample: the kernel wakes a writer only once much of its buffer is free (on loopback,
   * megabytes), so what a reader takes shows up in bursts, each read over the whole time since
   * the one before. And only from a sample where the hub held bytes: the kernel's buffers were
   * full then, so what it took since is what the reader read. From one where they may have had
   * room, what the kernel took (at once, a buffer's worth) says nothing of the reader.
   */
  #base = -1
  #baseAt = 0
  #baseStalledMs = 0
  #baseQueued = false

  /**
   * A ping is due at `now`: the nonce to send with it, or undefined when MAX_UNANSWERED_PINGS are
   * unanswered (send none). Owed from now, unless something older is. `position`: the bytes the
   * socket was given before it (default: those delivered at the last sample).
   */
  ping(now: number, position = this.#delivered): Uint8Array | undefined {
    const at = this.#moment(now)
    this.#owedSince ??= at
    if (this.#pings.length >= MAX_UNANSWERED_PINGS) return undefined
    const nonce = randomBytes(8)
    this.#pings.push({ ...at, nonce, position })
    return nonce
  }

  /** A route's ping to `ws` at `now` (`ping`): sent unless MAX_UNANSWERED_PINGS are unanswered. */
  sendPing(ws: WebSocket, now: number): void {
    const nonce = this.ping(now, sentBytes(ws))
    if (nonce !== undefined) ws.ping(nonce)
  }

  /**
   * A pong with `data` arrived: it answers if it echoes a ping still unanswered, and answers that
   * ping and the earlier ones (TCP keeps order), not the later: those stay owed from when they
   * went out, so a peer that keeps one nonce back cannot clear a later wait with it. Returns
   * whether it answered.
   */
  pong(data: Uint8Array): boolean {
    const i = this.#pings.findIndex(({ nonce: n }) => n.length === data.length && n.every((b, k) => b === data[k]))
    if (i < 0) return false
    // What went out before the ping was read before its pong came.
    this.#read = Math.max(this.#read, this.#pings[i]!.position)
    this.#pings.splice(0, i + 1)
    const next = this.#pings[0]
    this.#owedSince = next === undefined ? undefined : next.at > this.#owedSince!.at ? next : this.#owedSince
    return true
  }

  /**
   * The socket has delivered `delivered` bytes in all by `now` (`deliveredBytes`): if that grew
   * fast enough since the last progress, the peer is reading, and what was owed is forgiven.
   * `stalledMs` of the time since the last sample the hub's process did nothing (a late sweep);
   * `queued`: the hub still holds bytes for the socket (`ws.bufferedAmount > 0`).
   */
  progress(delivered: number, now: number, stalledMs = 0, queued = true): void {
    this.#delivered = delivered
    if (this.#base < 0 || this.#owedSince === undefined || delivered < this.#base || !this.#baseQueued) return this.#rebase(delivered, now, queued)
    this.#baseStalledMs += stalledMs > 0 ? stalledMs : 0
    const moved = delivered - this.#base
    const elapsed = Math.max(0, now - this.#baseAt - this.#baseStalledMs)
    if (moved > 0 && moved >= (MIN_READ_BYTES_PER_SECOND * elapsed) / 1000) {
      this.#owedSince = this.#moment(now)
      this.#rebase(delivered, now, queued)
    }
  }

  #rebase(delivered: number, now: number, queued: boolean): void {
    this.#base = delivered
    this.#baseAt = now
    this.#baseStalledMs = 0
    this.#baseQueued = queued
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
    if (this.#pausedAt !== undefined) this.#heldMs += now - this.#pausedAt
    this.#pausedAt = undefined
  }

  /** `now`, with the time the socket has been held unread by then. */
  #moment(now: number): Moment {
    return { at: now, held: this.#heldMs + (this.#pausedAt === undefined ? 0 : now - this.#pausedAt) }
  }

  /**
   * A route's sweep at `now`: samples what `ws` delivered (`progress`), then whether a sign of
   * life has been owed for `timeoutMs` or more (the socket is then to be terminated). A sweep
   * that ran `stalledMs` late (`SweepLateness`) judges without that time: its sockets are
   * read only after it. The next sweep judges it all again.
   */
  overdue(ws: WebSocket, now: number, timeoutMs: number, stalledMs = 0): boolean {
    this.progress(deliveredBytes(ws), now, stalledMs, ws.bufferedAmount > 0)
    return this.waiting && this.owed(now) - (stalledMs > 0 ? stalledMs : 0) >= timeoutMs
  }

  /**
   * Milliseconds a sign of life has been owed while the socket was read (0 when nothing is
   * owed; time held unread counts past MAX_HELD_MS), less the time given to the reader for what
   * it has not yet read: what it was sent since the last ping it answered, at the slowest pace
   * that counts (at most MAX_UNREAD_MS).
   * Its pong waits behind all of it, and the hub sees its reading only in bursts, each once the
   * kernel wants more (after up to a buffer's worth, megabytes), or not at all while a second
   * buffer on the way (a proxy, the peer's own) is filling.
   */
  owed(now: number): number {
    const since = this.#owedSince
    if (since === undefined) return 0
    const read = now - since.at - Math.min(MAX_HELD_MS, this.#moment(now).held - since.held)
    const unreadMs = (Math.max(0, this.#delivered - this.#read) * 1000) / MIN_READ_BYTES_PER_SECOND
    return Math.max(0, read - Math.min(MAX_UNREAD_MS, unreadMs))
  }
}

/**
 * How late a route's periodic sweep runs, past its period: a timer fires late only when the
 * process was busy, so that is time no socket was read (PongClock's `overdue`).
 *
 * @example
 * ```ts
 * const lateness = new SweepLateness(periodMs, performance.now())
 * setInterval(() => {
 *   const now = performance.now()
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

/** What `deliveredBytes` and `sentBytes` read of a net.Socket (Node's stream and handle state; absent parts read as nothing). */
interface SocketState {
  readonly bytesWritten?: number
  readonly writableLength?: number
  readonly _writableState?: { readonly writing?: boolean; readonly writelen?: number }
  readonly _handle?: { readonly writeQueueSize?: number } | null
  /** A TLS socket's TCP socket, which the TLS layer writes the encrypted bytes to. */
  readonly _parent?: SocketState | null
}

const socketOf = (ws: WebSocket): SocketState | undefined => (ws as unknown as { _socket?: SocketState })._socket

/**
 * Bytes the socket has handed to the network in all (written, not waiting in its buffers):
 * grows while the peer reads, stops once it does not and the kernel's buffers are full. It
 * counts the part of the write in progress that the kernel took: the hub writes a whole Yjs
 * document as one chunk, and a slow reader takes seconds over it. That part is what left the
 * handle's queue, never less than nothing nor more than the write. Over TLS it is read off
 * the TCP socket under it, in the bytes that socket carries (records and handshake included,
 * as `sentBytes` counts them): the TLS socket's own queue holds the whole encrypted write until
 * it is done. 0 when the socket is not reachable (then only pongs count).
 */
export const deliveredBytes = (ws: WebSocket): number => {
  const socket = socketOf(ws)
  if (socket?.bytesWritten === undefined || socket.writableLength === undefined) return 0
  const tcp = tcpUnder(socket)
  if (tcp !== undefined) return Math.max(0, tcp.bytesWritten - tcp.writableLength - tcp.queued)
  const writelen = writing(socket)
  const inFlight = Math.min(writelen, Math.max(0, writelen - (socket._handle?.writeQueueSize ?? writelen)))
  return socket.bytesWritten - socket.writableLength + inFlight
}

/**
 * Bytes the socket has been given in all: where a frame sent now sits in what the peer reads
 * (as `deliveredBytes` counts), or a little before. It leaves out what `ws` still holds
 * compressing (`perMessageDeflate`), which it counts uncompressed: a ping behind it sits
 * further on, and a pong to it is taken to show a little less read (attack review r21: counted
 * uncompressed, a pong showed megabytes more read than were sent, and a reader was given nothing
 * for what it had not read). Over TLS, the TCP socket's bytes and the plaintext not yet
 * encrypted (which grows as it is): counted in plaintext, what a pong showed read fell further
 * behind what was delivered with every record, until every wait had the longest allowance
 * (review r22). 0 when the socket is not reachable.
 */
export const sentBytes = (ws: WebSocket): number => {
  const socket = socketOf(ws)
  if (socket === undefined) return 0
  const tcp = tcpUnder(socket)
  if (tcp === undefined) return socket.bytesWritten ?? 0
  return tcp.bytesWritten + Math.max(0, (socket.writableLength ?? 0) - writing(socket))
}

/** The length of the write in progress (0: none). */
const writing = (socket: SocketState): number => (socket._writableState?.writing === true ? socket._writableState.writelen ?? 0 : 0)

/** A TLS socket's TCP socket, with what its handle still queues; undefined for a plain socket. */
const tcpUnder = (socket: SocketState): { bytesWritten: number; writableLength: number; queued: number } | undefined => {
  const tcp = socket._parent
  const queued = tcp?._handle?.writeQueueSize
  if (tcp?.bytesWritten === undefined || queued === undefined) return undefined
  return { bytesWritten: tcp.bytesWritten, writableLength: tcp.writableLength ?? 0, queued }
}
