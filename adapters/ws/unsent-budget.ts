/**
 * A bound on the bytes a server has written to its sockets that have not left yet, over all
 * its sockets together. `ws` keeps them in memory until the kernel takes them, and the
 * hub's memory gauge never sees them.
 *
 * Each socket has a bound of its own (a route's backlog, the hub's `hardLimit`): about 8 MiB
 * plus the largest message written to it. Nothing bounded their sum. A client that opens
 * sockets, asks each for a large document and stops reading held that much per socket:
 * 64 stalled `/yjs` readers of one 12 MB room, from one address, took a hub from 327 to
 * 801 MiB of RSS while its gauge read 37 MiB. More addresses would have taken it to the end
 * of its memory.
 *
 * The count is kept where the bytes enter: a write is admitted with its bytes added to what
 * its socket held, and then, and whenever a write has left for the kernel, the socket's
 * count is what it really holds (`bufferedAmount`). When a write would take the sum past the
 * limit, the sockets holding the most make room. The client (address) holding the most in
 * all loses its socket that holds the most, until the write fits. The socket is cut
 * (terminated): a close frame would wait behind the bytes the client does not read. A client
 * that reads keeps little here; a stalled one holds the most, so it goes first. A socket
 * that holds nothing may always take one message, so a document larger than the limit
 * still reaches a reader that keeps up.
 *
 * The same bytes written to many sockets (one frame fanned out) count once per socket: the
 * sum may overstate memory, never understate it.
 */
import { WebSocket } from "ws"

/** The default bound: 256 MiB unsent, over every socket of a server. */
export const DEFAULT_MAX_UNSENT_BYTES = 256 * 1024 * 1024

interface Holder {
  readonly socket: unknown
  readonly owner: string
  /** Bytes written to the socket and not yet left. */
  unsent: number
  /** Ends the socket (terminates it and says why), told the bytes it held. */
  readonly cut: (held: number) => void
}

export class UnsentBudget {
  #total = 0
  #cuts = 0
  readonly #holders = new Map<unknown, Holder>()
  /** The holders with bytes unsent: the only ones a cut looks at. */
  readonly #holding = new Set<Holder>()

  /** A limit that is not a positive number of bytes throws a TypeError naming it. */
  constructor(readonly limit: number) {
    if (!(limit > 0) || !(Number.isSafeInteger(limit) || limit === Infinity)) {
      throw new TypeError(`maxUnsentBytes must be a positive integer (bytes) or Infinity, not ${String(limit)}.`)
    }
  }

  /** Bytes written to every counted socket and not yet left. */
  get unsent(): number {
    return this.#total
  }

  /** Sockets cut so far to stay within the limit. */
  get cuts(): number {
    return this.#cuts
  }

  /** Counts `socket`'s writes from now on, as `owner`'s (its client address); `cut` ends it. */
  track(socket: unknown, owner: string, cut: (held: number) => void): void {
    if (!this.#holders.has(socket)) this.#holders.set(socket, { socket, owner, unsent: 0, cut })
  }

  /** Whether `socket` is counted. */
  tracks(socket: unknown): boolean {
    return this.#holders.has(socket)
  }

  /** Stops counting `socket` (it closed): what it held is no longer held. */
  release(socket: unknown): void {
    const h = this.#holders.get(socket)
    if (h !== undefined) this.#forget(h)
  }

  /**
   * Before `bytes` are written to `socket`: true, and they are counted, if they fit, or once
   * other sockets were cut to make room; false if `socket` itself was cut.
   */
  admit(socket: unknown, bytes: number): boolean {
    const h = this.#holders.get(socket)
    if (h === undefined) return true
    while (this.#total + bytes > this.limit) {
      const victim = this.#next(h, bytes)
      if (victim === undefined) break
      const held = victim.unsent
      this.#forget(victim)
      this.#cuts++
      victim.cut(held)
      if (victim === h) return false
    }
    if (bytes > 0) {
      h.unsent += bytes
      this.#total += bytes
      this.#holding.add(h)
    }
    return true
  }

  /**
   * What `socket` holds unsent now (its `bufferedAmount`), read after a write and when one
   * has left: the count follows what the socket really holds, not the sum of what was
   * written to it. A frame fanned out to many readers is taken by their kernels at once, so
   * it is counted for a moment per socket, not until every write's callback has run.
   */
  settle(socket: unknown, unsent: number): void {
    const h = this.#holders.get(socket)
    if (h === undefined) return
    this.#total += unsent - h.unsent
    h.unsent = unsent
    if (unsent > 0) this.#holding.add(h)
    else this.#holding.delete(h)
  }

  /**
   * The socket to cut next: the one holding the most of the owner holding the most, the
   * writer counted with the `bytes` it is about to take. A writer that holds nothing yet is
   * never cut (it may take one message): the largest other socket is, or none.
   */
  #next(writer: Holder, bytes: number): Holder | undefined {
    const byOwner = new Map<string, number>([[writer.owner, bytes]])
    for (const h of this.#holding) byOwner.set(h.owner, (byOwner.get(h.owner) ?? 0) + h.unsent)
    let owner = writer.owner
    for (const [o, n] of byOwner) if (n > byOwner.get(owner)!) owner = o
    const held = (h: Holder) => h.unsent + (h === writer ? bytes : 0)
    let victim: Holder | undefined
    let other: Holder | undefined
    for (const h of this.#holding) {
      if (h.owner === owner && (victim === undefined || held(h) > held(victim))) victim = h
      if (h !== writer && (other === undefined || h.unsent > other.unsent)) other = h
    }
    return victim ?? other
  }

  #forget(h: Holder): void {
    this.#holders.delete(h.socket)
    this.#holding.delete(h)
    this.#total -= h.unsent
    h.unsent = 0
  }
}

const byteLengthOf = (data: unknown): number => {
  if (typeof data === "string") return Buffer.byteLength(data)
  if (ArrayBuffer.isView(data) || data instanceof ArrayBuffer) return data.byteLength
  if (typeof Blob !== "undefined" && data instanceof Blob) return data.size
  return 0
}

/**
 * A `ws` WebSocket class whose sends `budget` counts, for the sockets it tracks (pass it as
 * `WebSocketServer`'s `WebSocket` option). Every route's writes go through `send`, so none
 * can write around the bound.
 */
export const budgetedWebSocket = (budget: UnsentBudget): typeof WebSocket =>
  class BudgetedWebSocket extends WebSocket {
    override send(data: unknown, options?: unknown, cb?: unknown): void {
      let callback = (typeof options === "function" ? options : cb) as ((error?: Error) => void) | undefined
      const opts = (typeof options === "function" ? undefined : options) as object | undefined
      const send = super.send.bind(this) as (data: unknown, options: object | undefined, cb?: (error?: Error) => void) => void
      if (this.readyState !== WebSocket.OPEN || !budget.tracks(this)) return send(data, opts, callback)
      const bytes = byteLengthOf(data)
      if (!budget.admit(this, bytes)) {
        callback?.(new Error("The socket was cut: the server's unsent bytes were over their limit."))
        return
      }
      const done = callback
      callback = (error?: Error) => {
        budget.settle(this, this.bufferedAmount)
        done?.(error)
      }
      send(data, opts, callback)
      budget.settle(this, this.bufferedAmount)
    }
  }
