/**
 * A bound on the bytes a server has written to its sockets that have not left yet, over all
 * its sockets together. `ws` keeps them in memory until the kernel takes them, and the
 * hub's memory gauge never sees them.
 *
 * Each socket has a bound of its own (a route's backlog, the hub's `hardLimit`): about 8 MiB
 * plus the largest message written to it. Nothing bounded their sum. A client that opens
 * sockets, asks each for a large document and stops reading held that much per socket:
 * 128 stalled `/yjs` readers of a 12 MB room on 4 addresses took a hub from 322 to 1,020 MiB
 * of RSS in 10 s of edits, and rising, while its memory gauge read 36 MiB.
 *
 * The count is kept where the bytes enter: a write is admitted with its bytes added to what
 * its socket held, and then, and whenever a write has left for the kernel, the socket's
 * count is what it really holds (`bufferedAmount`). A frame fanned out to readers that keep
 * up is taken by their kernels at once, so it counts for a moment, not once per reader until
 * every write's callback has run (that cut 19 of 23 such readers in a test).
 *
 * When a write would take the sum past the limit, sockets are cut (terminated: a close
 * frame would wait behind the bytes the client does not read) until it fits, in this order:
 * 1. Stalled sockets: holding bytes, and nothing has reached the network from them for
 *    STALLED_MS (the bytes a socket has delivered in all, `deliveredBytes`, which counts the
 *    part of a large write the kernel took, grows while its client reads), or of a client
 *    that closed a socket holding ABANDONED_BYTES unsent in the last ABANDONED_MS (a client
 *    that replaces its unread sockets before they can count as stalled). The client
 *    (address) holding the most in them first, its largest socket first.
 * 2. Slow sockets: holding bytes for STALLED_MS or longer, at a pace (what they delivered
 *    since they began to hold, over that time) at which what they hold would take more than
 *    SLOW_DRAIN_MS to leave. A reader that reads a trickle, just enough not to stall, holds
 *    its bytes about as long as one that reads nothing. The slowest first.
 * 3. Clients over their share: the bound split evenly among the clients holding bytes, the
 *    writer's counted with its write. The writer's client first, if it is over (a new
 *    socket's write never costs another client a socket while its own client is over its
 *    share), then the client furthest over; of each, its newest sockets until it is back
 *    within its share, but never its oldest socket that holds bytes. Without this rule, one
 *    client's readers that read at a pace, neither stalled nor slow, held the whole bound,
 *    and a newcomer from any other address was refused until they finished (a stock
 *    provider was cut 5 times and loaded after 5.6 s; now at once: attack review s36,
 *    dos-trickle.mts). The oldest socket stays because one reader of a large document on a
 *    slow link is over its share whenever readers on many addresses arrive, and new readers
 *    cannot be told stalled for their first STALLED_MS: cut for them, it was, in a test. A
 *    newcomer from a new client whose write is within its share fits whenever each other
 *    client's oldest socket is.
 * 4. Then the newest to begin holding, the write being judged counted newest of all: it is
 *    refused before a reader that was there before it is cut. A reader that keeps up is
 *    cut only when such readers alone fill the bound, and then the last to come goes first.
 * The order is decided once for the write being judged, and its cuts follow it.
 * What sockets delivered is looked at each time a cut is judged and at every `refresh()`,
 * which the server calls every few seconds, so a stall is dated to within that. A first
 * message to a socket when no other socket holds anything is always taken, so a document
 * larger than the limit still reaches a reader that keeps up. A stream larger than the limit
 * (a snapshot in chunks) reaches it only if the limit is above what the hub lets one socket
 * hold while it reads (its documents' high-water mark, 1 MiB, plus a message): below that, in
 * the simulator, a fresh replica alone was cut at every reconnect and never synced. Servers
 * refuse a limit under MIN_MAX_UNSENT_BYTES (server.ts). A socket that stalls for good is also
 * ended by the server's liveness checks (pong-clock.ts) within 120 s; this bound is for the
 * memory it and the others hold until then.
 *
 * The same bytes written to many sockets (one frame fanned out) count once per socket: the
 * sum may overstate memory, never understate it.
 */
import { WebSocket } from "ws"

/** The default bound: 256 MiB unsent, over every socket of a server. */
export const DEFAULT_MAX_UNSENT_BYTES = 256 * 1024 * 1024

/**
 * The least bound a server takes (8 MiB, the hub's hard limit for one connection). A reader
 * alone is sent up to its documents' high-water mark (1 MiB) plus a message while it reads; a
 * bound below that cut it at every reconnect, and a document streamed in chunks never reached
 * it (the simulator, at 512 KiB).
 */
export const MIN_MAX_UNSENT_BYTES = 8 * 1024 * 1024

/**
 * How long a socket may hold bytes with none of them reaching the network before it counts
 * as stalled (see the header). Readers show their reading in bursts, one each time the
 * kernel wants more; at 512 KiB/s on loopback about 3 s apart (yjs-server-slow-reader.test.ts).
 */
export const STALLED_MS = 5_000

/**
 * How long what a socket holds may take to leave at its pace before, the bound full, it is
 * cut as slow (see the header): a minute. A phone reading 64 KiB/s holds 4 MiB that long.
 */
export const SLOW_DRAIN_MS = 60_000

/**
 * A client that closes a socket still holding this much unsent (it asked and left without
 * reading) has its sockets judged stalled (rule 1) for ABANDONED_MS. An ordinary close leaves
 * a few bytes at most.
 */
export const ABANDONED_BYTES = 64 * 1024

/**
 * How long a client that abandoned a socket's bytes is judged so. Without it, a client on 20
 * addresses that replaced each unread socket every 4 s, before it could count as stalled,
 * held the bound and had an honest client's tabs cut (rule 3) and a newcomer refused for a
 * whole minute (attack review s37, tabs.mts, newcomer.mts).
 */
export const ABANDONED_MS = 60_000

export interface TrackedSocket {
  /** Its client (an address, or an IPv6 network): its stalled sockets are judged together. */
  readonly owner: string
  /** What it holds unsent now (`bufferedAmount`). */
  readonly unsent: () => number
  /** Bytes it has handed to the network in all (`deliveredBytes`): grows while its client reads. */
  readonly delivered: () => number
  /** Ends it, told the bytes it held. */
  readonly cut: (held: number) => void
  /**
   * Whether it is still open (default: always). Once it is not, its count stays what it was
   * until `release`: a socket torn down reports nothing unsent, and what it left unread is
   * what tells an abandoned socket (ABANDONED_BYTES) from an ordinary close.
   */
  readonly open?: () => boolean
}

interface Holder extends TrackedSocket {
  readonly socket: unknown
  /** Bytes written to the socket and not yet left, when last counted. */
  held: number
  /** When it last began to hold bytes (ms, the budget's clock), and what it had delivered then. */
  since: number
  base: number
  /** What it had delivered when last looked at, and since when that is so. */
  seen: number
  movedAt: number
}

export class UnsentBudget {
  #total = 0
  #cuts = 0
  readonly #holders = new Map<unknown, Holder>()
  /** The holders with bytes unsent: the only ones a cut looks at. */
  readonly #holding = new Set<Holder>()
  /** Clients that abandoned a socket's bytes (ABANDONED_BYTES), and until when they are judged stalled. */
  readonly #abandoned = new Map<string, number>()

  /**
   * A limit that is not a positive number of bytes throws a TypeError naming it. `now` is the
   * clock of stalls (ms; default `performance.now`).
   */
  constructor(readonly limit: number, private readonly now: () => number = () => performance.now()) {
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

  /** Counts `socket`'s writes from now on. */
  track(socket: unknown, tracked: TrackedSocket): void {
    if (this.#holders.has(socket)) return
    const now = this.now()
    const delivered = tracked.delivered()
    this.#holders.set(socket, { ...tracked, socket, held: 0, since: now, base: delivered, seen: delivered, movedAt: now })
  }

  /** Whether `socket` is counted. */
  tracks(socket: unknown): boolean {
    return this.#holders.has(socket)
  }

  /**
   * Stops counting `socket` (it closed): what it held is no longer held. Closed holding
   * ABANDONED_BYTES or more, its client is judged stalled for ABANDONED_MS.
   */
  release(socket: unknown): void {
    const h = this.#holders.get(socket)
    if (h === undefined) return
    if (h.held >= ABANDONED_BYTES) this.#abandoned.set(h.owner, this.now() + ABANDONED_MS)
    this.#forget(h)
  }

  /**
   * Before `bytes` are written to `socket`: true, and they are counted, if they fit, or once
   * other sockets were cut to make room; false if `socket` itself was cut.
   */
  admit(socket: unknown, bytes: number): boolean {
    const h = this.#holders.get(socket)
    // Nothing to hold, nothing to cut for (a write of no bytes).
    if (h === undefined || bytes === 0) return true
    if (this.#total + bytes > this.limit) {
      this.refresh()
      // One order for all the cuts this write needs: a scan per cut cost 0.9 s for one write
      // among 16,384 holders (attack review s36).
      for (const victim of this.#order(h, bytes)) {
        if (this.#total + bytes <= this.limit) break
        // Past the limit alone with a first message: taken (see the header). Not its next ones:
        // a socket alone that does not read would grow to its own bound (the hub's hard limit).
        if (victim === h && h.held === 0 && this.#holding.size === 0) break
        const held = victim.held
        this.#forget(victim)
        this.#cuts++
        victim.cut(held)
        if (victim === h) return false
      }
    }
    if (bytes > 0) {
      if (h.held === 0) {
        h.since = this.now()
        this.#look(h, h.since)
        h.movedAt = h.since
        h.base = h.seen
      }
      h.held += bytes
      this.#total += bytes
      this.#holding.add(h)
    }
    return true
  }

  /** Counts what `socket` holds unsent now (its `unsent()`): after a write, and when one has left. */
  settle(socket: unknown): void {
    const h = this.#holders.get(socket)
    if (h !== undefined && h.open?.() !== false) this.#set(h, h.unsent())
  }

  /** Looks at what every socket holding bytes holds and has delivered now (the server's sweep). */
  refresh(): void {
    const now = this.now()
    // Deleting the element being visited is safe in a Set's iteration: no copy.
    for (const h of this.#holding) {
      if (h.open?.() === false) continue
      this.#look(h, now)
      this.#set(h, h.unsent())
    }
    for (const [owner, until] of this.#abandoned) if (until <= now) this.#abandoned.delete(owner)
  }

  #look(h: Holder, now: number): void {
    const delivered = h.delivered()
    if (delivered !== h.seen) [h.seen, h.movedAt] = [delivered, now]
  }

  #set(h: Holder, unsent: number): void {
    this.#total += unsent - h.held
    h.held = unsent
    if (unsent > 0) this.#holding.add(h)
    else this.#holding.delete(h)
  }

  /**
   * The sockets to cut, in the header's order, decided once for the write being judged of
   * `bytes`: `writer`, if it holds nothing yet, counts as the newest.
   */
  #order(writer: Holder, bytes: number): Holder[] {
    const now = this.now()
    const stalled: Holder[] = []
    const slow: Holder[] = []
    const rest: Holder[] = []
    // held / (delivered since it began / time since then): how long what it holds takes to leave.
    const drainMs = (h: Holder) => (h.held * (now - h.since)) / Math.max(1, h.seen - h.base)
    for (const h of this.#holding) {
      if (now - h.movedAt >= STALLED_MS || (this.#abandoned.get(h.owner) ?? 0) > now) stalled.push(h)
      else if (now - h.since >= STALLED_MS && drainMs(h) > SLOW_DRAIN_MS) slow.push(h)
      else rest.push(h)
    }
    const byOwner = new Map<string, number>()
    for (const h of stalled) byOwner.set(h.owner, (byOwner.get(h.owner) ?? 0) + h.held)
    stalled.sort((a, b) => byOwner.get(b.owner)! - byOwner.get(a.owner)! || (a.owner < b.owner ? -1 : a.owner > b.owner ? 1 : 0) || b.held - a.held)
    slow.sort((a, b) => drainMs(b) - drainMs(a))
    rest.sort((a, b) => b.since - a.since)
    // A writer that holds nothing yet counts as the newest of all.
    if (writer.held === 0) rest.unshift(writer)
    const over = this.#overShare(rest, writer, bytes)
    const shed = new Set(over)
    return [...stalled, ...slow, ...over, ...rest.filter((h) => !shed.has(h))]
  }

  /**
   * Rule 3 of the header: the bound shared evenly among the clients (owners) holding bytes in
   * `rest`, the writer's counted with this write. Of each client over its share, its newest
   * sockets until what they hold covers what it is over by (never its oldest that holds
   * bytes): the writer's client first, then the client furthest over. `rest` is newest first,
   * a writer that holds nothing at its head.
   */
  #overShare(rest: Holder[], writer: Holder, bytes: number): Holder[] {
    const clients = new Map<string, { sum: number; sockets: Holder[] }>()
    for (const h of rest) {
      let c = clients.get(h.owner)
      if (c === undefined) clients.set(h.owner, (c = { sum: 0, sockets: [] }))
      c.sum += h.held
      c.sockets.push(h)
    }
    const own = clients.get(writer.owner)
    if (own !== undefined) own.sum += bytes
    const share = this.limit / clients.size
    const over: Holder[] = []
    const first = (c: { sum: number }) => (c === own ? 1 : 0)
    for (const c of [...clients.values()].filter((c) => c.sum > share).sort((a, b) => first(b) - first(a) || b.sum - a.sum)) {
      let excess = c.sum - share
      // Its oldest socket that holds bytes stays: a client's one reader of a large document is
      // not cut for newcomers on other addresses, which may be many (stalled ones are rule 1's).
      const last = c.sockets.at(-1) === writer && writer.held === 0 ? c.sockets.length : c.sockets.length - 1
      for (const h of c.sockets.slice(0, last)) {
        if (excess <= 0) break
        over.push(h)
        excess -= h === writer ? bytes + h.held : h.held
      }
    }
    return over
  }

  #forget(h: Holder): void {
    this.#holders.delete(h.socket)
    this.#holding.delete(h)
    this.#total -= h.held
    h.held = 0
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
      const done = (typeof options === "function" ? options : cb) as ((error?: Error) => void) | undefined
      const opts = (typeof options === "function" ? {} : options ?? {}) as never
      if (this.readyState !== WebSocket.OPEN || !budget.tracks(this)) return super.send(data as never, opts, done)
      if (!budget.admit(this, byteLengthOf(data))) {
        done?.(new Error("The socket was cut: the server's unsent bytes were over their limit."))
        return
      }
      super.send(data as never, opts, (error?: Error) => {
        budget.settle(this)
        done?.(error)
      })
      budget.settle(this)
    }
  }
