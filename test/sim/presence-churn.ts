/**
 * The presence churner: one raw client on two connections to a document the replicas follow,
 * and another client holding a presence there too. One connection and the other client hold
 * a presence near the hub's 4 KiB limit; the other connection, in a burst, sets a small
 * presence and subscribes again, a hundred times or more at once, leaving and coming back
 * every other round (the holder clears its presence for the burst: the client is seen to
 * leave each time); then all go. A fresh watcher client follows the document meanwhile and
 * only reads. An attack found this (review r15, finding 2): each subscribe sent the newcomer
 * every holder's presence at once, and each subscribe again was a leave sent to every
 * follower at once (an honest reader got one 4 KiB presence 300 times a second).
 *
 * It checks presence pacing (core/authority/followers.ts `relayPresence`):
 * - `presence` rate: the watcher is sent one client's presence at most once per 50 ms tick,
 *   give or take what it is sent as it drains (MOST_PER_SECOND in any second);
 * - `presence` budget: what the churner's connections are sent of presence stays within its
 *   client's budget (its catch-ups are charged to it), plus a few relays of other clients;
 * - `presence` leave: once the churner's connections are gone, the watcher is told so (null)
 *   within LEAVE_MS, if it stayed connected (a crash of the hub ends the check).
 * With each burst comes a flood (`flood`): FLOODERS clients, each on its own connection,
 * renew a presence near the limit every FLOOD_EVERY_MS while an honest client moves a small
 * cursor every CURSOR_EVERY_MS, and another watcher reads. An attack found this (review r16,
 * finding 1): relayed first come first served, each relay priced by every receiver, the
 * honest cursor waited behind every flooder (48 s under 300 of them). It checks:
 * - `presence` fresh: each cursor the honest client sets, the flood's watcher has been sent
 *   it or a later one within FRESH_MS, while it stays connected.
 * Each burst has its own clientIds; a hub crash ends it (it is not tried again).
 */
import type { ClientMessage, Connection, Runtime, ServerMessage } from "../../core/index.js"
import { encodeCanonical } from "../../core/index.js"
import type { MemoryNetwork } from "../../adapters/memory/index.js"
import { PRESENCE_CLIENT_BURST_BYTES, PRESENCE_CLIENT_BYTES_PER_SECOND } from "../../core/authority/followers.js"
import type { HostileTarget } from "./hostile.js"

/** Presence messages about one client a reader may be sent in any second: one a tick, and a few more as it drains or is caught up or as latency bunches them. */
export const MOST_PER_SECOND = 25
/** A leave reaches a reader that stayed within this long (a tick, latency, a paused read). */
export const LEAVE_MS = 2_000
/** Presence bytes past the churner's budget it may be sent: relays of other clients' presence (a few of them). */
const SLACK_BYTES = 64 << 10
/** Clients in a flood, each renewing a presence near the limit every FLOOD_EVERY_MS for FLOOD_MS. */
const FLOODERS = 60
const FLOOD_EVERY_MS = 100
const FLOOD_MS = 2_500
/** The honest client's cursor moves this often during a flood. */
const CURSOR_EVERY_MS = 300
/**
 * The flood's watcher is sent each cursor (or a later one) within this long (a few ticks and
 * latency; before fair sharing, 60 flooders held it back some 2 s a round).
 */
export const FRESH_MS = 1_000
/** The held presence: near the hub's 4 KiB limit. */
const BIG = "p".repeat(3_900)

const presenceBytes = (m: Extract<ServerMessage, { type: "presence" }>): number => {
  try {
    return 8 + m.docId.length + m.clientId.length + encodeCanonical(m.state).length
  } catch {
    return 0
  }
}

export class PresenceChurner {
  bursts = 0
  resubscribes = 0
  leavesSeen = 0
  mostPerSecond = 0
  floods = 0
  private flooding = false
  /** The longest the flood's watcher waited for a cursor the honest client set (or a later one). */
  stalestCursorMs = 0
  private closing = false
  private readonly conns: Array<{ close(code?: string, reason?: string): void }> = []

  constructor(
    private readonly net: MemoryNetwork,
    private readonly rt: Runtime,
    private readonly target: HostileTarget,
    private readonly fail: (s: string) => void,
    private readonly log: (s: string) => void,
  ) {}

  /**
   * One burst: `rounds` of [presence, subscribe again] on the churning connection, then both
   * go. A burst cut short by the hub (down, crashed) comes again a moment later, as fresh clients.
   */
  burst(rounds: number, attempt = 0): void {
    const n = this.bursts++
    const clientId = `pchurn-${n}`
    const secret = `secret-of-${clientId}-0123456789`
    const { docId, machine } = this.target
    const subscribe = { type: "subscribe", docId, machine: machine.name, version: machine.version, fingerprint: machine.fingerprint, fromSeq: 0, ackedClientSeq: 0 } as ClientMessage
    this.log(`presence churner ${clientId}: ${rounds} rounds`)
    // One flood at a time (a burst cut by the hub comes again; a flood not cut runs on).
    if (!this.flooding) this.flood(n)
    let broken = false
    let leaving = false
    const gone = { at: undefined as number | undefined }
    const cut = () => {
      if (broken || leaving) return
      broken = true
      for (const c of [watcher, other, holder, churning]) c.close("closed", "The presence churner's burst was cut.")
      if (!this.closing && attempt < 10) this.rt.setTimer(250, () => this.closing || this.burst(rounds, attempt + 1))
    }

    // The watcher: reads, judges the rate, waits for the leave.
    let watcherOpen = true
    const times = new Map<string, number[]>()
    let leaveSeen = false
    const watcher = this.open(`pwatch-${n}`, `pwatch-${n}`, `secret-of-pwatch-${n}-0123456789`, () => watcher.send(subscribe), (m) => {
      if (m.type !== "presence" || m.docId !== docId) return
      const now = this.rt.now()
      const list = times.get(m.clientId) ?? []
      list.push(now)
      while (list.length > 0 && list[0]! <= now - 1_000) list.shift()
      times.set(m.clientId, list)
      this.mostPerSecond = Math.max(this.mostPerSecond, list.length)
      if (list.length > MOST_PER_SECOND) this.fail(`presence: the watcher pwatch-${n} was sent ${list.length} presence messages of ${m.clientId} within 1 s (at most one a tick: ${MOST_PER_SECOND})`)
      if (m.clientId === clientId && m.state === null && gone.at !== undefined && !leaveSeen) {
        leaveSeen = true
        this.leavesSeen++
      }
    }, () => {
      watcherOpen = false
      cut()
    })

    // The churner's two connections, one client: what they are sent of presence is charged to it.
    let received = 0
    let welcomedAt: number | undefined
    const judge = (m: ServerMessage) => {
      if (m.type !== "presence" || m.docId !== docId) return
      received += presenceBytes(m)
      if (welcomedAt === undefined) return
      const allowed = PRESENCE_CLIENT_BURST_BYTES + (PRESENCE_CLIENT_BYTES_PER_SECOND * (this.rt.now() - welcomedAt)) / 1000 + SLACK_BYTES
      if (received > allowed) this.fail(`presence: ${clientId} was sent ${received} bytes of presence within ${this.rt.now() - welcomedAt} ms, past its client's budget (${Math.round(allowed)})`)
    }
    const onClose = cut
    // Another client's large presence: every catch-up of the churner carries it too.
    const other = this.open(`pchurn-${n}-h`, `pchurn-${n}-h`, `secret-of-pchurn-${n}-h-0123456789`, () => {
      other.send(subscribe)
      other.send({ type: "presence-set", docId, state: { big: BIG } } as ClientMessage)
    }, () => {}, cut)
    const holder = this.open(`pchurn-${n}-a`, clientId, secret, () => {
      welcomedAt ??= this.rt.now()
      holder.send(subscribe)
      holder.send({ type: "presence-set", docId, state: { big: BIG } } as ClientMessage)
    }, judge, onClose)
    const churning = this.open(`pchurn-${n}-b`, clientId, secret, () => {
      welcomedAt ??= this.rt.now()
      churning.send(subscribe)
      // A moment for the holder's presence to be set, then the burst, all at once.
      this.rt.setTimer(200, () => {
        if (this.closing || broken) return
        // The holder steps aside for the burst, so each time the churning connection leaves
        // the others see the client go (were the holder shown, they would see no change).
        holder.send({ type: "presence-set", docId, state: null } as ClientMessage)
        for (let i = 0; i < rounds; i++) {
          churning.send({ type: "presence-set", docId, state: i } as ClientMessage)
          if (i % 2 === 1) churning.send({ type: "unsubscribe", docId } as ClientMessage)
          churning.send(subscribe)
          this.resubscribes++
        }
        holder.send({ type: "presence-set", docId, state: { big: BIG } } as ClientMessage)
        // Then both go; the watcher must be told.
        this.rt.setTimer(500, () => {
          if (this.closing || broken) return
          leaving = true
          holder.close("closed", "The presence churner goes.")
          churning.close("closed", "The presence churner goes.")
          other.close("closed", "The presence churner goes.")
          gone.at = this.rt.now()
          this.rt.setTimer(LEAVE_MS, () => {
            if (this.closing || !watcherOpen || leaveSeen) return
            this.fail(`presence: ${clientId} left ${LEAVE_MS} ms ago and the watcher pwatch-${n}, connected all along, was never told`)
          })
        })
      })
    }, judge, onClose)
  }

  /**
   * A flood with burst `n`: FLOODERS clients renewing a large presence, an honest client
   * moving a small cursor, a watcher that must see the cursor within FRESH_MS each time.
   */
  private flood(n: number): void {
    this.floods++
    this.flooding = true
    const { docId, machine } = this.target
    const subscribe = { type: "subscribe", docId, machine: machine.name, version: machine.version, fingerprint: machine.fingerprint, fromSeq: 0, ackedClientSeq: 0 } as ClientMessage
    const conns: Array<Connection<ClientMessage>> = []
    let broken = false
    let done = false
    const cut = () => {
      if (broken || done) return
      broken = true
      this.flooding = false
      for (const c of conns) c.close("closed", "The presence flood was cut.")
    }
    const end = () => {
      if (broken || done) return
      done = true
      this.flooding = false
      for (const c of conns) c.close("closed", "The presence flood goes.")
    }
    const t0 = this.rt.now() + 300
    const honestId = `pflood-${n}-honest`
    let seen = -1
    /** When each cursor was set. */
    const setAt: number[] = []
    const watcher = this.open(`pfwatch-${n}`, `pfwatch-${n}`, `secret-of-pfwatch-${n}-0123456789`, () => watcher.send(subscribe), (m) => {
      if (m.type !== "presence" || m.docId !== docId || m.clientId !== honestId) return
      const x = (m.state as { x?: unknown } | null)?.x
      if (typeof x !== "number" || x <= seen) return
      // The cursors it skipped (latest wins) waited till now too.
      for (let y = seen + 1; y <= x; y++) if (setAt[y] !== undefined) this.stalestCursorMs = Math.max(this.stalestCursorMs, this.rt.now() - setAt[y]!)
      seen = x
    }, cut)
    conns.push(watcher)
    for (let i = 0; i < FLOODERS; i++) {
      const id = `pflood-${n}-${i}`
      const c = this.open(id, id, `secret-of-${id}-0123456789`, () => {
        c.send(subscribe)
        const renew = (k: number) => {
          if (this.closing || broken || done || this.rt.now() >= t0 + FLOOD_MS) return
          c.send({ type: "presence-set", docId, state: { big: BIG, k } } as ClientMessage)
          this.rt.setTimer(FLOOD_EVERY_MS, () => renew(k + 1))
        }
        this.rt.setTimer(Math.max(0, t0 - this.rt.now()) + (i % 10) * 10, () => renew(0))
      }, () => {}, cut)
      conns.push(c)
    }
    const honest = this.open(honestId, honestId, `secret-of-${honestId}-0123456789`, () => {
      honest.send(subscribe)
      const move = (x: number) => {
        if (this.closing || broken || done) return
        if (this.rt.now() >= t0 + FLOOD_MS) return void this.rt.setTimer(FRESH_MS + 100, end)
        setAt[x] = this.rt.now()
        honest.send({ type: "presence-set", docId, state: { x } } as ClientMessage)
        this.rt.setTimer(FRESH_MS, () => {
          if (this.closing || broken || done) return
          if (seen < x) this.fail(`presence: the honest client ${honestId} set cursor ${x} ${FRESH_MS} ms ago, during a flood of ${FLOODERS} clients renewing 4 KiB presences, and the watcher pwatch-${n}, connected all along, has seen only cursor ${seen}`)
        })
        this.rt.setTimer(CURSOR_EVERY_MS, () => move(x + 1))
      }
      this.rt.setTimer(Math.max(0, t0 - this.rt.now()), () => move(0))
    }, () => {}, cut)
    conns.push(honest)
  }

  /** A raw connection that says hello as `clientId` and calls `welcomed` once. */
  private open(name: string, clientId: string, secret: string, welcomed: () => void, onMessage: (m: ServerMessage) => void, onClose: () => void): Connection<ClientMessage> {
    let said = false
    const conn = this.net.transport(name).connect({
      onOpen: () => conn.send({ type: "hello", protocol: { min: 1, max: 1 }, clientId, machines: [], secret } as ClientMessage),
      onMessage: (m: ServerMessage) => {
        if (m.type === "welcome" && !said) {
          said = true
          if (!this.closing) welcomed()
          return
        }
        onMessage(m)
      },
      onClose: (info) => {
        this.log(`presence churner connection ${name} closed ${info.code} ${info.reason}`)
        onClose()
      },
    })
    this.conns.push(conn)
    return conn
  }

  /** The world heals: the churners and watchers go. */
  closeAll(): void {
    this.closing = true
    for (const c of this.conns.splice(0)) c.close("closed", "The presence churner goes.")
  }
}
