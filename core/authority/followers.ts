/**
 * The replicas following one document on the authority: catch-up, live fan-out,
 * backpressure, snapshot streams and presence.
 *
 * Catch-up for a (re)subscribing replica reads the log in pages outside the write lane
 * (committed entries never change) and switches it to live fan-out in the same tick that it
 * reaches the committed head, so no entry is skipped or sent twice. A replica that is new to
 * a long history, far behind, behind the compaction horizon, ahead of the authority (it
 * followed a lost incarnation of the document), or desynced gets a snapshot stream instead,
 * then the log from the snapshot's seq.
 *
 * Backpressure, one rule for everything the hub sends a follower (entries, checkpoints,
 * results, presence, snapshot chunks), decided in one place (`canSend`): over the high-water
 * mark the follower is paused (entries wait in the log, a snapshot stream waits at its offset,
 * presence is coalesced to the latest state per client), and it resumes once drained; over the
 * hard limit its connection is closed with `slow-consumer` (the client reconnects and catches
 * up). So what the hub holds for a reader is bounded whatever the reader's speed or what it
 * claims to have read.
 *
 * Presence is relayed on the document's 50 ms tick (`relayPresence`; a paused follower is
 * sent what it missed, one message per client, when it drains): a change, a leave and a
 * newcomer's catch-up of who is here alike, each client at most once a tick, within a byte
 * budget per document and per client, one message object per relayed presence for all its
 * receivers. So what presence costs the hub is bounded whatever its clients set, subscribe or
 * leave (review r15, finding 2). The document's budget is shared fairly in bytes between the
 * clients whose presence changed (`presenceStart`: fair queueing, not first come first
 * served), and a relay is charged for the receivers it is sent to (a paused one is charged
 * when it drains), so a small or rare presence is relayed promptly however many large, busy
 * ones queue with it; a connection subscribing again keeps what it was told and is owed, and
 * is not caught up again (review r16, findings 1 and 4).
 */
import type { Checkpoint, Entry } from "../entry.js"
import { CanonError } from "../errors.js"
import { boundedMessage } from "../limits.js"
import type { Connection } from "../ports/transport.js"
import { steadyNow, type Runtime, type Timer } from "../ports/runtime.js"
import type { ServerMessage } from "../protocol/messages.js"
import type { SnapshotMeta } from "../store/snapshot-store.js"
import { SnapshotSender, type ChunkReader } from "./snapshot-sender.js"
import { closeSlowConsumer, overHardLimit } from "./guarded-connection.js"
import { TokenBucket } from "./limits.js"
import { encodeCanonical } from "../canonical.js"
import { peerText } from "./peer-text.js"

export interface Follower {
  readonly conn: Connection<ServerMessage>
  readonly clientId: string
  /** Ephemeral presence of this connection on the document (never logged). */
  presence: unknown
  /** Canonical bytes of `presence` (what relaying it costs per receiver, with the frame's header). */
  presenceBytes: number
  /** The one message relaying `presence` to every receiver that sees it (a transport encodes it once). */
  presenceMessage: ServerMessage | undefined
  /** Highest seq sent to this follower. */
  cursor: number
  live: boolean
  closed: boolean
  /** It asked for the whole state (a desync): the next catch-up step is a snapshot. */
  wantsState: boolean
  /** The snapshot stream in progress, if any. */
  stream: SnapshotSender | undefined
  /** A snapshot-ack that arrived before its stream began (a replica resuming a cut stream). */
  resume: { readonly snapshotId: number; readonly received: number } | undefined
  /** A catch-up loop is running for it. */
  catching: boolean
  /** Catch-up was asked for while one ran: run again when it ends. */
  again: boolean
  /** Its connection's protocol version: 2 gets compact entries. */
  readonly protocol: number
  /**
   * The machine version its session declared (core/schema). Older than the document's: it
   * gets entries converted down, no checkpoints and no snapshots (they describe the newest
   * version's state; asking for the state, it gets its version's initial state at seq 0 and
   * the log from there), and stops at the first entry it cannot be shown (`update-required`).
   */
  readonly version: number
  /** Told `update-required`: it gets no more entries of this document. */
  stopped: boolean
  /** Catch-up failures in a row (storage errors); the next try waits longer. */
  failures: number
  /** The retry after a failed catch-up, if one is waiting. */
  retry: Timer | undefined
  /**
   * Clients whose presence changed while this follower was paused: their latest presence (or
   * their leaving) is sent when it drains. One entry per client, whatever the number of updates.
   */
  readonly presenceDue: Set<string>
  /**
   * The presence messages it was sent (a newcomer's catch-up, a paused follower's due) for
   * clients whose change was still queued for its relay: that relay, of the same message, is
   * not sent it again. Emptied as those relays go.
   */
  shown: Map<string, ServerMessage> | undefined
  /** The timer watching its buffer drain (at most one; cancelled when it is done with, so a closed document leaves none armed). */
  draining: Timer | undefined
}

/** What the followers need from their document. */
export interface FollowedDoc {
  readonly docId: string
  readonly runtime: Runtime
  /** Seq of the last durable entry. */
  committed(): number
  /** Entries at or below this may be gone from the log. */
  horizon(): number
  checkpoint(): Checkpoint | undefined
  /** The newest stored snapshot, if any. */
  latestSnapshot(): SnapshotMeta | undefined
  /** A snapshot of the committed state, taking one if none is recent enough. */
  snapshotAtLeast(seq: number): Promise<SnapshotMeta>
  /** Marks the snapshot `seq` as read by a stream until the returned function is called. */
  useSnapshot(seq: number): () => void
  readChunk(seq: number, index: number): Promise<Uint8Array>
  entries(afterSeq: number, limit: number): Promise<Entry[]>
  /**
   * Entries as messages under the size limit; `compact` for protocol 2 (arguments in their
   * schema-driven bytes), eliding the seqs in `elide` (the receiver's own commands).
   */
  entriesMessages(entries: ReadonlyArray<Entry>, checkpoints: ReadonlyArray<Checkpoint>, compact: boolean, elide?: ReadonlySet<number>): ServerMessage[]
  report(code: string, message: string): void
  isBroken(): boolean
  /** The machine version the document runs (its newest). */
  version(): number
  /** Seq of the document's last version change (0: none): a follower at the newest version behind it needs a snapshot. */
  lastMarker(): number
  /** Entries for a follower at an older version, and the first seq it cannot be shown. */
  entriesForVersion(entries: ReadonlyArray<Entry>, version: number): { readonly messages: ServerMessage[]; readonly barrier: number | undefined }
  /** The state a session at an older `version` starts from (seq 0), in a snapshot's encoding; undefined if the history lacks it. */
  initialState(version: number): { readonly bytes: Uint8Array; readonly hash: string } | undefined
  /**
   * The document's state at seq 0 (nothing committed yet) in a snapshot's encoding, made in
   * memory: the machine's initial state needs no stored snapshot, and a reader must not make
   * the hub write one. Undefined while a first batch is being applied (try again shortly).
   */
  stateAtZero(): { readonly bytes: Uint8Array; readonly hash: string } | undefined
  /** The last follower left (the document may be unloaded when idle). */
  followersGone(): void
  /**
   * A state of about `bytes` is to be sent to `clientId`: a snapshot made at the head for it
   * (an asked-for state), an older version's start and log, or any stream of a stored
   * snapshot (a subscribe behind the horizon or far behind, a fetch-state the stored snapshot
   * answers, a subscribe again). The milliseconds it must wait because its client's budget is
   * in debt (nothing is charged then), or 0 once charged (go). The client pays, whatever
   * document it is about, so following more documents, or subscribing again, does not
   * multiply the cost.
   */
  chargeState(clientId: string, bytes: number): number
  /** The client's presence budget if its hub keeps one for all its documents (else the document keeps one per client). */
  presenceBudget(clientId: string): TokenBucket | undefined
  /** Roughly the state's encoded bytes: what making an asked-for state of it costs. */
  stateBytes(): number
}

export interface FollowerOptions {
  /** Entries per catch-up page. */
  readonly page: number
  readonly highWater: number
  readonly hardLimit: number
  /** A replica more than this many entries behind the head gets a snapshot, if one is newer than it. */
  readonly snapshotLag: number
  /** Bytes of a snapshot stream in flight past the replica's last acknowledgement. */
  readonly snapshotWindow: number
}

/** How often a paused follower's buffer is looked at. */
const DRAIN_POLL_MS = 50
/** How often a document relays presence changes (20 a second: cursors still look live). */
const PRESENCE_TICK_MS = 50
/**
 * Presence fan-out a document may send, in bytes a second (each relay costs its frame times
 * the receivers it is sent to; a newcomer's catch-up, or a paused follower's due presence,
 * the frames it is sent): past it, changes wait for a later tick (latest wins), so a crowd of
 * large, busy presences costs the hub a bounded stream.
 */
export const PRESENCE_DOC_BYTES_PER_SECOND = 8 << 20
/** ... in a burst: a newcomer to 100 followers holding 4 KiB each is caught up in one tick. */
export const PRESENCE_DOC_BURST_BYTES = 2 << 20
/** The same, per client (what its presence changes cost to relay, what its joins cost to catch up). */
export const PRESENCE_CLIENT_BYTES_PER_SECOND = 1 << 20
export const PRESENCE_CLIENT_BURST_BYTES = 1 << 20
/** What a presence message costs past its state and names (type, flags, lengths). */
const PRESENCE_HEADER_BYTES = 8
/** First pause after a failed catch-up; doubles per failure in a row, up to the max. */
const CATCH_UP_RETRY_MS = 250
/** Least time between two snapshots taken for replicas asking for their state. */
const STATE_SNAPSHOT_GAP_MS = 1000
/** ... and at least this many times the last such snapshot's duration (at most ~1/10 of the hub's time). */
const STATE_SNAPSHOT_DUTY = 9
const CATCH_UP_RETRY_MAX_MS = 10_000
/** The least an asked-for state is charged to its client: even a small one is a snapshot written. */
const MIN_STATE_CHARGE_BYTES = 256 << 10

export class Followers {
  private readonly all = new Map<Connection<ServerMessage>, Follower>()
  /**
   * Clients whose presence, as the others see it, changed since it was last relayed (a
   * presence set, a connection with one leaving), with the connection that changed it if it was
   * one alone (it need not be told; null: several did). Only that is kept, not every follower
   * that changed it: a connection subscribing, setting and leaving in a loop while its client's
   * relay waits for the budget would have left one follower object in memory per turn.
   * Relayed on the tick, latest wins, in fair order (`presenceStart`); one the budgets cannot
   * pay for yet keeps its place for a later tick.
   */
  private readonly presenceChanged = new Map<string, Follower | null>()
  /**
   * Fair shares of the document's presence budget, in frame bytes, between clients (weighted
   * fair queueing, equal weights): the presence clock runs at the document's rate in frames
   * (its bytes a second over its receivers) shared by the clients queued, as if they were
   * served side by side, byte by byte, and never past a queued client's start; a client whose presence changed starts at the clock, or
   * at its last relay's finish if that is later (a busy client queues behind its own past
   * relays), and is relayed in the order of start plus its frame's bytes as it is now (its
   * finish). So a small or rare presence passes the large and busy ones queued with it, and a
   * client gets about its share of the budget however many others change, and however often,
   * and whatever they set (review r16, finding 1: an honest cursor waited 48 s behind 300
   * clients renewing 4 KiB each, relayed first come first served).
   */
  private readonly presenceStart = new Map<string, number>()
  /** Finish of a client's last relay while it is ahead of the clock (later ones start there). */
  private readonly presenceFinish = new Map<string, number>()
  private presenceClock = 0
  /** When the presence clock was last moved on. */
  private presenceClockAt = 0
  /**
   * The message a client was last relayed to the others as (not to its own connections): a
   * change that leaves it the same (its connection not shown changed, or left) is not relayed
   * to them again. Only while it has one (gone: deleted).
   */
  private readonly presenceRelayed = new Map<string, ServerMessage>()
  /** Followers that joined since the last tick: sent every holder's presence on the tick. */
  private readonly presenceJoined = new Set<Follower>()
  private presenceTick: Timer | undefined
  /** Presence bytes this document may still send (see PRESENCE_DOC_BYTES_PER_SECOND). */
  private presenceBudget: TokenBucket | undefined
  /** The same per client; a client's is dropped once full again (a new one would be the same). */
  private readonly presenceBudgets = new Map<string, TokenBucket>()
  /** Ticks take changes and newcomers first in turn: a flood of either cannot starve the other. */
  private newcomersFirst = false
  /**
   * When a replica's asked-for state (a desync) may next be made: a snapshot at the head
   * (O(state)), or for a replica at an older version its initial state and the whole log
   * converted (O(log)). A reader may ask again and again, so they are spaced by at least
   * STATE_SNAPSHOT_GAP_MS and by STATE_SNAPSHOT_DUTY times the last snapshot's duration.
   * Askers in between wait (snapshot askers then share the next one).
   */
  private stateSnapshotsFrom = 0

  constructor(private readonly doc: FollowedDoc, private readonly options: FollowerOptions) {}

  get size(): number {
    return this.all.size
  }

  values(): IterableIterator<Follower> {
    return this.all.values()
  }

  get(conn: Connection<ServerMessage>): Follower | undefined {
    return this.all.get(conn)
  }

  /**
   * `departed`: the clients the connection's earlier subscription may have been shown (what
   * `remove` returned when it unsubscribed): it is owed their leaves, if gone by then.
   */
  add(conn: Connection<ServerMessage>, clientId: string, fromSeq: number, resume?: { readonly snapshotId: number; readonly received: number }, protocol = 1, version = this.doc.version(), departed?: ReadonlySet<string>): Follower {
    // A connection subscribing again has not left: it keeps its presence and its place (the
    // others see no leave), and its catch-up starts over.
    const before = this.all.get(conn)
    // What it is owed (a leave, a change it missed while paused) carries over: copied before
    // `stop` clears it (review r16, finding 4: it was never told such a client left).
    const due = new Set(before?.presenceDue ?? departed)
    if (before !== undefined) this.stop(before)
    const f: Follower = {
      conn, clientId, presence: before?.presence ?? null, presenceBytes: before?.presenceBytes ?? 0, presenceMessage: before?.presenceMessage,
      cursor: Math.max(0, fromSeq), live: false, closed: false, wantsState: false, stream: undefined, resume, catching: false, again: false, protocol,
      version, stopped: false, failures: 0, retry: undefined, presenceDue: due, shown: before?.shown, draining: undefined,
    }
    this.all.set(conn, f)
    // A change it made alone is still its own (it is not told it): noted as this follower now.
    if (before !== undefined && this.presenceChanged.get(clientId) === before) this.presenceChanged.set(clientId, f)
    // Who is here: on the tick, as every presence relay (a loop of subscribes costs a tick's
    // catch-up at most). A connection subscribing again keeps what it was told (and is owed,
    // above): it waits for a catch-up only if its first one had not been sent yet.
    if (before === undefined || this.presenceJoined.delete(before)) this.presenceJoined.add(f)
    this.presenceTickDue()
    // Served at an older version than this hub runs (protocol 4): an app that declared it for
    // an older hub (compat mode) connects again with its own, before it sends anything.
    const current = this.doc.version()
    if (protocol >= 4 && version < current) {
      conn.send({ type: "error", code: "hub-newer", docId: this.doc.docId, message: `Document "${this.doc.docId}" runs version ${current} of its machine here; this session follows version ${version}.` })
    }
    this.catchUp(f)
    // What it is owed goes when it can be sent: the old follower's drain (closed now) would not send it.
    if (f.presenceDue.size > 0) this.resumeWhenDrained(f)
    return f
  }

  /**
   * `conn` leaves the document; `reopen`: it may subscribe again (an unsubscribe: its
   * connection stays). Then returns the clients it may have been shown here (a holder it saw, a
   * leave it was owed or not sent yet; undefined: none): what the hub sent it may still be on
   * its way, and the client routes it by docId to a Doc it opens again on that connection, so
   * a newcomer there is owed those clients' leaves (`add`'s `departed`), if gone by then (its
   * catch-up shows only who is here). The hub keeps it with the connection, not here: the
   * document may be unloaded before the connection subscribes again.
   */
  remove(conn: Connection<ServerMessage>, reopen = false): ReadonlySet<string> | undefined {
    const f = this.all.get(conn)
    if (f === undefined) return undefined
    let seen: Set<string> | undefined
    if (reopen) {
      seen = new Set([...f.presenceDue, ...this.presenceChanged.keys()])
      for (const o of this.all.values()) if (o !== f && !o.closed && o.presence !== null) seen.add(o.clientId)
    }
    this.stop(f)
    this.all.delete(conn)
    this.presenceJoined.delete(f)
    // Its leaving is a presence change of its client, relayed on the tick like any other.
    if (f.presence !== null) this.presenceChangedBy(f)
    if (this.all.size === 0) this.doc.followersGone()
    return seen !== undefined && seen.size > 0 ? seen : undefined
  }

  /** A follower object is done with (it left, or its connection subscribed again). */
  private stop(f: Follower): void {
    f.closed = true
    f.stream?.stop()
    f.retry?.cancel()
    f.draining?.cancel()
    f.draining = undefined
    f.presenceDue.clear()
  }

  /** Stops everything (the document closes). */
  clear(): void {
    this.presenceTick?.cancel()
    this.presenceTick = undefined
    this.presenceChanged.clear()
    this.presenceRelayed.clear()
    this.presenceStart.clear()
    this.presenceFinish.clear()
    this.presenceClock = 0
    this.presenceJoined.clear()
    this.presenceBudgets.clear()
    for (const f of this.all.values()) this.stop(f)
    this.all.clear()
  }

  // ---- state transfer ----

  /**
   * The follower desynced: give it the whole state (a snapshot stream), then the log. It stays
   * live until its snapshot is made (`stream`): an asked-for state may have to wait its turn
   * (`mustWait`), and its entries meanwhile are what a writer's receipts confirm from.
   */
  wantState(conn: Connection<ServerMessage>): boolean {
    const f = this.all.get(conn)
    if (f === undefined) return false
    f.wantsState = true
    this.catchUp(f)
    return true
  }

  /**
   * Flow control of the snapshot stream in progress. Acknowledgements of a stream that has
   * ended are late and mean nothing (a resume point is only what a replica sends before it
   * subscribes, see `add`); one may also be of an earlier stream of the same snapshot on this
   * connection (a subscribe again restarts it, and the replica's acknowledgements sent after
   * that subscribe reach the new stream): the sender takes it as credit, never as a skip.
   */
  snapshotAck(conn: Connection<ServerMessage>, snapshotId: number, received: number): void {
    const f = this.all.get(conn)
    if (f?.stream !== undefined && f.stream.meta.seq === snapshotId) f.stream.ack(snapshotId, received)
  }

  // ---- live fan-out ----

  /**
   * Sends newly committed entries to every live follower that was at `before`: one message
   * object per run and form, shared by the followers that get it (a transport may encode it
   * once); a protocol 2 follower whose own commands are among them gets them elided.
   * Returns the connections that received their own entries that way (their receipts are
   * confirmed by them: the results need not repeat the seqs).
   */
  fanOut(
    before: number, entries: ReadonlyArray<Entry>, checkpoints: ReadonlyArray<Checkpoint>, after: number,
    own: ReadonlyMap<Connection<ServerMessage>, ReadonlySet<number>>,
  ): Set<Connection<ServerMessage>> {
    let v1: ServerMessage[] | undefined
    let v2: ServerMessage[] | undefined
    const elided = new Set<Connection<ServerMessage>>()
    // Followers at older machine versions: one conversion per version, shared.
    let older: Map<number, { readonly messages: ServerMessage[]; readonly barrier: number | undefined }> | undefined
    const current = this.doc.version()
    for (const f of [...this.all.values()]) {
      if (!(f.live && f.cursor === before)) continue
      let msgs: ReadonlyArray<ServerMessage>
      if (f.version < current) {
        older ??= new Map()
        let r = older.get(f.version)
        if (r === undefined) older.set(f.version, (r = this.doc.entriesForVersion(entries, f.version)))
        if (!this.sendEntries(f, r.messages)) continue
        f.cursor = after
        if (r.barrier !== undefined) this.updateRequired(f, r.barrier)
        continue
      }
      if (f.protocol < 2) msgs = v1 ??= this.doc.entriesMessages(entries, checkpoints, false)
      else {
        const mine = own.get(f.conn)
        if (mine === undefined) msgs = v2 ??= this.doc.entriesMessages(entries, checkpoints, true)
        else {
          msgs = this.doc.entriesMessages(entries, checkpoints, true, mine)
          elided.add(f.conn)
        }
      }
      // Paused part way: it catches up from the last entry it was sent.
      if (!this.sendEntries(f, msgs)) continue
      f.cursor = after
    }
    return elided
  }

  /**
   * Sends entries messages one by one while the follower may be sent more, moving its cursor
   * to each message's last entry; false if it was paused (or dropped) before the last one.
   */
  private sendEntries(f: Follower, msgs: ReadonlyArray<ServerMessage>): boolean {
    for (const m of msgs) {
      if (!this.canSend(f)) return false
      f.conn.send(m)
      const last = m.type === "entries" ? m.entries[m.entries.length - 1] : undefined
      if (last !== undefined) f.cursor = last.seq
    }
    return true
  }

  /** A checkpoint of the head, to every live follower there. */
  publishCheckpoint(cp: Checkpoint): void {
    const current = this.doc.version()
    for (const f of this.all.values()) {
      // A paused follower gets it with the head when it catches up.
      if (f.live && f.cursor === cp.seq && f.version >= current && this.canSend(f)) f.conn.send({ type: "checkpoint", docId: this.doc.docId, seq: cp.seq, hash: cp.hash })
    }
  }

  // ---- presence: ephemeral, relayed, never in the log ----

  setPresence(conn: Connection<ServerMessage>, state: unknown): void {
    const f = this.all.get(conn)
    if (f === undefined) return
    f.presence = state ?? null
    f.presenceBytes = f.presence === null ? 0 : canonicalBytes(f.presence)
    f.presenceMessage = undefined
    // Relayed on the next tick, not per message: each change costs a send to every other
    // follower, so a sender within its message rate (1000/s) could make the hub send a hundred
    // followers 100,000 messages a second and stall every document (found by an attack).
    this.presenceChangedBy(f)
  }

  /** `f`'s client looks different to the others now (`f` set a presence, or left with one): relayed on the tick. */
  private presenceChangedBy(f: Follower): void {
    if (!this.presenceChanged.has(f.clientId)) {
      if (this.presenceChanged.size === 0) this.presenceClockAt = steadyNow(this.doc.runtime)
      this.presenceChanged.set(f.clientId, f)
      this.presenceStart.set(f.clientId, Math.max(this.presenceClock, this.presenceFinish.get(f.clientId) ?? 0))
    } else if (this.presenceChanged.get(f.clientId) !== f) this.presenceChanged.set(f.clientId, null)
    this.presenceTickDue()
  }

  private presenceTickDue(): void {
    this.presenceTick ??= this.doc.runtime.setTimer(PRESENCE_TICK_MS, () => {
      this.presenceTick = undefined
      if (!this.doc.isBroken()) this.relayPresence()
    })
  }

  /**
   * The tick: relays the clients whose presence changed and catches newcomers up, each as far
   * as the document's and the client's presence budgets allow; the rest keeps its place for
   * the next tick (a change waits as its latest state, a newcomer until it can be caught up).
   * Every path that sends presence goes through here, so a document relays each client at
   * most once a tick, whatever its clients subscribe, leave or set.
   */
  private relayPresence(): void {
    const now = steadyNow(this.doc.runtime)
    const byClient = this.connectionsByClient()
    this.newcomersFirst = !this.newcomersFirst
    if (this.newcomersFirst) {
      this.catchUpNewcomers(now, byClient)
      this.relayChanges(now, byClient)
    } else {
      this.relayChanges(now, byClient)
      this.catchUpNewcomers(now, byClient)
    }
    // A client's budget, full again, is the same as a new one.
    for (const [clientId, b] of this.presenceBudgets) if (b.full(now) && !this.presenceChanged.has(clientId)) this.presenceBudgets.delete(clientId)
    if (this.presenceChanged.size > 0 || this.presenceJoined.size > 0) this.presenceTickDue()
  }

  private docBudget(now: number): TokenBucket {
    return (this.presenceBudget ??= new TokenBucket(PRESENCE_DOC_BYTES_PER_SECOND, PRESENCE_DOC_BURST_BYTES, now))
  }

  /**
   * Relays the clients whose presence changed, in fair order (`presenceStart`: the least finish
   * first, ties in the order they changed), as far as the budgets allow.
   */
  private relayChanges(now: number, byClient: ReadonlyMap<string, ReadonlyArray<Follower>>): void {
    const doc = this.docBudget(now)
    // The clock: what the document's rate relays of each queued client's frames meanwhile,
    // never past a queued client's start (served slower than that rate, the budget spent on
    // newcomers or between ticks, a clock run ahead would queue a new small change behind them).
    if (this.presenceChanged.size > 0) {
      const frames = (Math.max(0, now - this.presenceClockAt) / 1000) * (PRESENCE_DOC_BYTES_PER_SECOND / Math.max(1, this.all.size - 1))
      let earliest = Infinity
      for (const start of this.presenceStart.values()) earliest = Math.min(earliest, start)
      this.presenceClock = Math.min(this.presenceClock + frames / this.presenceChanged.size, earliest)
    }
    this.presenceClockAt = now
    if (doc.inDebt(now)) return
    // Each client's finish as its presence is now (a change while queued moves it: a client
    // cannot queue as a small presence and be relayed as a large one).
    const order: Array<{ readonly clientId: string; readonly finish: number }> = []
    for (const clientId of this.presenceChanged.keys()) {
      const frame = this.presenceCost(clientId, latestPresence(byClient.get(clientId) ?? [], undefined))
      order.push({ clientId, finish: (this.presenceStart.get(clientId) ?? this.presenceClock) + frame })
    }
    order.sort((a, b) => a.finish - b.finish)
    for (const { clientId, finish } of order) {
      if (doc.inDebt(now)) break
      const client = this.clientBudget(clientId, now)
      if (client.inDebt(now)) continue
      const by = this.presenceChanged.get(clientId) ?? null
      this.presenceChanged.delete(clientId)
      this.presenceStart.delete(clientId)
      this.presenceFinish.set(clientId, finish)
      const cost = this.broadcastPresence(clientId, by, byClient, now)
      client.borrow(cost, now)
      doc.borrow(cost, now)
    }
    // Nothing queued: the clock starts over (everyone would start level anyway).
    if (this.presenceChanged.size === 0) {
      this.presenceClock = 0
      this.presenceFinish.clear()
    } else for (const [clientId, finish] of this.presenceFinish) if (finish <= this.presenceClock) this.presenceFinish.delete(clientId)
  }

  /** Sends newcomers who is here, in the order they came, as far as the budgets allow (their clients pay). */
  private catchUpNewcomers(now: number, byClient: ReadonlyMap<string, ReadonlyArray<Follower>>): void {
    const doc = this.docBudget(now)
    for (const f of [...this.presenceJoined]) {
      if (doc.inDebt(now)) break
      if (f.closed) {
        this.presenceJoined.delete(f)
        continue
      }
      const client = this.clientBudget(f.clientId, now)
      if (client.inDebt(now)) continue
      this.presenceJoined.delete(f)
      for (const [clientId, conns] of byClient) {
        if (latestPresence(conns, f) !== undefined) f.presenceDue.add(clientId)
      }
      // Charged what is sent (a paused newcomer is sent it when it drains, charged to the document then).
      const cost = this.sendPresenceDue(f, byClient)
      client.borrow(cost, now)
      doc.borrow(cost, now)
    }
  }

  private clientBudget(clientId: string, now: number): TokenBucket {
    let b = this.doc.presenceBudget(clientId) ?? this.presenceBudgets.get(clientId)
    if (b === undefined) this.presenceBudgets.set(clientId, (b = new TokenBucket(PRESENCE_CLIENT_BYTES_PER_SECOND, PRESENCE_CLIENT_BURST_BYTES, now)))
    return b
  }

  /** The connections here by client. */
  private connectionsByClient(): Map<string, Follower[]> {
    const byClient = new Map<string, Follower[]>()
    for (const o of this.all.values()) {
      const list = byClient.get(o.clientId)
      if (list === undefined) byClient.set(o.clientId, [o])
      else list.push(o)
    }
    return byClient
  }

  /** Bytes of one presence message of `clientId` showing `holder`'s presence (undefined: gone). */
  private presenceCost(clientId: string, holder: Follower | undefined): number {
    return PRESENCE_HEADER_BYTES + this.doc.docId.length + clientId.length + (holder === undefined ? 1 : holder.presenceBytes)
  }

  /**
   * The message showing `clientId` as `holder` (one of its connections) sets it, or gone: one
   * object per presence, shared by every receiver (a transport encodes it once).
   */
  private presenceMessage(clientId: string, holder: Follower | undefined, gone: () => ServerMessage): ServerMessage {
    if (holder === undefined) return gone()
    return (holder.presenceMessage ??= { type: "presence", docId: this.doc.docId, clientId, state: holder.presence })
  }

  /**
   * Tells every follower how `clientId` (its connections in `byClient`) looks now; `by` is the
   * connection that changed it, if one alone did (it knows; null: several did). Newcomers
   * waiting for their catch-up are left to it. Returns what it cost: the frame times the receivers it was sent to now. A paused
   * receiver is not charged for here: it is owed the client (one entry, latest wins), sent
   * and charged to the document when it drains.
   */
  private broadcastPresence(clientId: string, by: Follower | null, byClient: ReadonlyMap<string, ReadonlyArray<Follower>>, now: number): number {
    const conns = byClient.get(clientId) ?? []
    const seen = latestPresence(conns, undefined)
    let gone: ServerMessage | undefined
    const goneMessage = () => (gone ??= { type: "presence", docId: this.doc.docId, clientId, state: null })
    // The others were relayed this very state last (another of its connections changed, or
    // left): what they were sent since is in `shown`, and a paused one's due is sent as it is.
    const shownToOthers = seen === undefined ? undefined : this.presenceMessage(clientId, seen, goneMessage)
    const unchanged = shownToOthers !== undefined && this.presenceRelayed.get(clientId) === shownToOthers
    if (shownToOthers === undefined) this.presenceRelayed.delete(clientId)
    else this.presenceRelayed.set(clientId, shownToOthers)
    let cost = 0
    for (const other of [...this.all.values()]) {
      if (other.closed) continue
      // One of its own connections sees it without itself; one that made the change alone knows it.
      const own = other.clientId === clientId
      if (own && by === other) continue
      const holder = own ? latestPresence(conns, other) : seen
      // A newcomer waiting for its catch-up is shown who is here then; a leave goes now (it
      // may have heard of the client: a document opened again on the connection, with a relay
      // to its earlier subscription on the way).
      if (holder !== undefined && this.presenceJoined.has(other)) continue
      // Its catch-up (or what it was due) showed this very state already.
      const shown = unshow(other, clientId)
      if (shown !== undefined && holder !== undefined && shown === this.presenceMessage(clientId, holder, goneMessage)) continue
      if (shown === undefined && !own && unchanged) continue
      if (other.presenceDue.size === 0 && this.canSend(other)) {
        other.conn.send(this.presenceMessage(clientId, holder, goneMessage))
        cost += this.presenceCost(clientId, holder)
      } else {
        other.presenceDue.add(clientId)
        // What it was owed, now that it may be sent more (the document pays: it is others' presence).
        this.docBudget(now).borrow(this.sendPresenceDue(other, byClient), now)
      }
    }
    return cost
  }

  /**
   * Sends `f` the presence of the clients it is due, each as it is now (null: gone), if it
   * may be sent more; otherwise they wait (one per client) until it drains. Returns the bytes
   * sent (the caller charges them). A paused follower is owed at most one message per client
   * whatever changed meanwhile, and is sent them only as it reads.
   */
  private sendPresenceDue(f: Follower, byClient?: ReadonlyMap<string, ReadonlyArray<Follower>>): number {
    if (f.presenceDue.size === 0 || f.closed || !this.canSend(f)) return 0
    const due = [...f.presenceDue]
    f.presenceDue.clear()
    // One pass over the followers, not one per client due.
    const conns = byClient ?? this.connectionsByClient()
    let sent = 0
    for (const clientId of due) {
      const holder = latestPresence(conns.get(clientId) ?? [], f)
      // A newcomer waiting for its catch-up is sent leaves only: the catch-up shows who is here.
      if (holder !== undefined && this.presenceJoined.has(f)) continue
      const message = this.presenceMessage(clientId, holder, () => ({ type: "presence", docId: this.doc.docId, clientId, state: null }))
      f.conn.send(message)
      if (holder !== undefined && this.presenceChanged.has(clientId)) (f.shown ??= new Map()).set(clientId, message)
      else unshow(f, clientId)
      sent += this.presenceCost(clientId, holder)
    }
    return sent
  }

  // ---- backpressure ----

  /**
   * A connection that is not a follower of this document (a submitter's results): sent only
   * under the hard limit, past which it is closed like a follower (the output gate's policy,
   * guarded-connection.ts, which the hub's connections also apply to every send). Replies are
   * not held at the high-water mark: they answer the client's own (rate-limited) submits.
   */
  sendReply(conn: Connection<ServerMessage>, message: ServerMessage): void {
    const f = this.all.get(conn)
    if (f !== undefined) {
      if (this.overHardLimit(f)) return
    } else if (overHardLimit(conn, this.options.hardLimit)) return closeSlowConsumer(conn, this.options.hardLimit)
    conn.send(message)
  }

  /**
   * The one place that decides whether a follower may be sent more. Over the high-water mark
   * it is paused (and resumed once drained: catch-up, the snapshot stream, due presence); over
   * the hard limit it is dropped and its connection closed with `slow-consumer`.
   */
  private canSend(f: Follower): boolean {
    if (f.closed) return false
    if (this.overHardLimit(f)) return false
    if (f.conn.bufferedAmount <= this.options.highWater) return true
    f.live = false
    this.resumeWhenDrained(f)
    return false
  }

  /** Past the hard limit the follower is dropped here at once, and its connection closed as the output gate would. */
  private overHardLimit(f: Follower): boolean {
    if (!overHardLimit(f.conn, this.options.hardLimit)) return false
    this.remove(f.conn)
    closeSlowConsumer(f.conn, this.options.hardLimit)
    return true
  }

  private resumeWhenDrained(f: Follower): void {
    if (f.draining !== undefined) return
    f.draining = this.doc.runtime.setTimer(DRAIN_POLL_MS, () => {
      f.draining = undefined
      if (f.closed || this.doc.isBroken()) return
      const buffered = f.conn.bufferedAmount
      if (buffered > this.options.hardLimit) return void this.canSend(f)
      if (buffered > this.options.highWater / 2) return this.resumeWhenDrained(f)
      const now = steadyNow(this.doc.runtime)
      this.docBudget(now).borrow(this.sendPresenceDue(f), now)
      if (f.stream !== undefined) f.stream.resume()
      else this.catchUp(f)
    })
  }

  // ---- catch-up ----

  private catchUp(f: Follower): void {
    if (f.stream !== undefined) return
    if (f.catching) {
      // The running loop may be past the point where it would see why we were called.
      f.again = true
      return
    }
    f.catching = true
    f.again = false
    this.loop(f).then(
      () => {
        f.catching = false
        f.failures = 0
        if (f.again && !f.closed) this.catchUp(f)
      },
      (e) => {
        f.catching = false
        this.failed(f, e)
      },
    )
  }

  /**
   * A catch-up step failed (the hub's disk: reading the log, writing the snapshot it needed).
   * The follower is told, and kept: it is caught up again after a pause that grows with the
   * failures in a row, so a passing disk error never leaves a replica unserved on a live
   * connection (it would never ask again: its subscription stands).
   */
  private failed(f: Follower, e: unknown): void {
    if (f.closed) return
    const message = e instanceof Error ? e.message : String(e)
    const wait = Math.min(CATCH_UP_RETRY_MAX_MS, CATCH_UP_RETRY_MS * 2 ** Math.min(f.failures, 8))
    f.failures++
    this.doc.report("catch-up-failed", `${message} (follower ${f.clientId}; trying again in ${wait} ms)`)
    // Its own code: the hub tries again itself (a storage-failed has the replica ask again).
    f.conn.send({ type: "error", code: "catch-up-failed", message: boundedMessage(`Reading document "${this.doc.docId}" failed: ${peerText(e, "the hub's storage failed.")} The hub tries again in ${wait} ms.`), docId: this.doc.docId })
    f.retry?.cancel()
    f.retry = this.doc.runtime.setTimer(wait, () => {
      f.retry = undefined
      if (!f.closed && !this.doc.isBroken()) this.catchUp(f)
    })
  }

  /**
   * A follower at an older version reached an entry it cannot be shown (or needs a snapshot,
   * which only the newest version has): it is told so, keeps what it has, and gets no more
   * entries of this document (its submits are still applied). `compacted`: what it needs is
   * behind the compaction horizon (nothing there is unshowable; the log is gone), and its
   * sentence says so.
   */
  private updateRequired(f: Follower, seq: number, compacted = f.cursor < this.doc.horizon()): void {
    f.stopped = true
    f.live = false
    const horizon = this.doc.horizon()
    const why = compacted
      ? `is compacted through seq ${horizon} into a state of v${this.doc.version()}, which this app version (v${f.version}) cannot start from`
      : `has changes from seq ${seq} that this app version (v${f.version}) cannot show`
    f.conn.send({ type: "error", code: "update-required", docId: this.doc.docId, seq, message: `Document "${this.doc.docId}" ${why}: update the app. Local changes are kept and sent.` })
  }

  /** Whether the follower should get a snapshot rather than entries from its cursor. */
  private needsSnapshot(f: Follower, older: boolean): boolean {
    const committed = this.doc.committed()
    if (f.cursor > committed || f.cursor < this.doc.horizon()) return true
    // Only the newest version gets snapshots; an older one is served entries while it can be.
    if (older) return false
    if (f.wantsState) return true
    // Behind a version change, at the new version: its state is not the migrated one.
    if (f.version === this.doc.version() && f.cursor < this.doc.lastMarker()) return true
    const latest = this.doc.latestSnapshot()
    return latest !== undefined && latest.seq > f.cursor && committed - f.cursor > this.options.snapshotLag
  }

  private async loop(f: Follower): Promise<void> {
    const older = f.version < this.doc.version()
    for (;;) {
      if (f.closed || f.stopped || this.doc.isBroken()) return
      if (!this.canSend(f)) return
      if (older && f.wantsState) {
        // The whole log again, converted: paced like a snapshot for an asked-for state.
        if (this.mustWait(f)) return
        this.paced(steadyNow(this.doc.runtime))
        return this.olderState(f)
      }
      if (this.needsSnapshot(f, older)) {
        if (older) return this.updateRequired(f, f.cursor + 1)
        await this.stream(f)
        return
      }
      const committed = this.doc.committed()
      if (f.cursor >= committed) {
        f.live = true
        f.conn.send({ type: "synced", docId: this.doc.docId, seq: committed })
        const cp = this.doc.checkpoint()
        if (cp !== undefined && cp.seq === committed && !older) f.conn.send({ type: "checkpoint", docId: this.doc.docId, seq: cp.seq, hash: cp.hash })
        return
      }
      const from = f.cursor
      let entries: Entry[]
      try {
        entries = await this.doc.entries(from, Math.min(this.options.page, committed - from))
      } catch (e) {
        // Compacted while we read: the next round streams a snapshot.
        if (from < this.doc.horizon()) continue
        throw e
      }
      if (f.closed) return
      if (entries.length === 0) {
        if (from < this.doc.horizon()) continue
        throw new CanonError({ code: "storage-corrupt", message: `The log of "${this.doc.docId}" ends before its head ${committed} (read after ${from}).` })
      }
      const fresh = entries.filter((e) => e.seq > f.cursor)
      if (fresh.length === 0) continue
      const last = fresh[fresh.length - 1]!.seq
      if (older) {
        const r = this.doc.entriesForVersion(fresh, f.version)
        if (!this.sendEntries(f, r.messages)) return
        f.cursor = last
        if (r.barrier !== undefined) return this.updateRequired(f, r.barrier)
        continue
      }
      const cp = this.doc.checkpoint()
      // Each message through the limits: a page of big entries is not sent in one go.
      if (!this.sendEntries(f, this.doc.entriesMessages(fresh, cp === undefined ? [] : [cp], f.protocol >= 2))) return
      f.cursor = last
    }
  }

  /**
   * A follower at an older version asked for the state: its app was upgraded on the device
   * and migrated the state it had followed, the view of its previous version. Downcasts may
   * drop what a newer version shows (a v1 app is shown a v2 `add` without its priority, which
   * the migration to v2 then sets to 0), so that state need not be its version's view, and
   * entries on top of it would keep it wrong for good (sim seed 75). Snapshots hold the
   * newest version's state; the one state of its version the hub can vouch for is the
   * document's start: its version's initial state at seq 0, then the whole log converted.
   * Once the log's start is compacted away nothing can give it its version's state: it is
   * told update-required (it keeps what it has and its outbox).
   */
  private olderState(f: Follower): void {
    f.wantsState = false
    f.live = false
    const start = this.doc.horizon() > 0 ? undefined : this.doc.initialState(f.version)
    if (start === undefined) return this.updateRequired(f, f.cursor + 1, this.doc.horizon() > 0)
    this.sendStart(f, start)
  }

  /** Streams a seq-0 state held in memory (never stored), then catches up. */
  private sendStart(f: Follower, start: { readonly bytes: Uint8Array; readonly hash: string }): void {
    const meta: SnapshotMeta = { seq: 0, hash: start.hash, size: start.bytes.length, chunks: 1, lastTime: 0 }
    this.send(f, meta, async () => start.bytes, () => {})
  }

  /** Streams a snapshot at or after the follower's needs, then catches up from its seq. */
  private async stream(f: Follower): Promise<void> {
    // A desynced or ahead replica needs the state as it is now (replaying the log would
    // repeat a desync's cause); others the newest stored one.
    const latest = this.doc.latestSnapshot()
    // Past the last version change too: an older snapshot holds an older version's state.
    const floor = Math.max(this.doc.horizon(), this.doc.lastMarker())
    const fresh = f.wantsState || f.cursor > this.doc.committed() || latest === undefined || latest.seq < floor
    if (fresh && this.doc.committed() === 0) {
      // Nothing committed: the state is the machine's initial state, made in memory. Storing
      // it would let a reader (a replica ahead of an empty document, or asking for its state)
      // make the hub write records.
      const zero = this.doc.stateAtZero()
      if (zero === undefined) {
        f.retry?.cancel()
        f.retry = this.doc.runtime.setTimer(DRAIN_POLL_MS, () => {
          f.retry = undefined
          if (!f.closed && !this.doc.isBroken()) this.catchUp(f)
        })
        return
      }
      // Paid like any stream (small: the machine's initial state).
      if (this.mustPay(f, zero.bytes.length)) return
      f.live = false
      f.wantsState = false
      return this.sendStart(f, zero)
    }
    const asked = f.wantsState && (latest === undefined || latest.seq < this.doc.committed())
    // Every stream is paid by its client, by what it sends: an asked-for state when it is made
    // (`mustWait`: it may only be made in its turn), a stored one as it starts (by its size, less
    // what a resumed stream skips). Unpaid, a client subscribing again (or asking for a state the
    // stored snapshot already holds) in a loop was sent a fresh stream each time, and a window
    // of it with no acknowledgement: 50-70 times the rate (review s34, f1). In debt, it waits.
    // Waiting its turn, a live follower stays live.
    const stored = latest !== undefined && latest.seq >= (f.wantsState ? this.doc.committed() : floor) ? latest : undefined
    if (asked ? this.mustWait(f) : this.mustPay(f, stored === undefined ? this.doc.stateBytes() : stored.size - resumedAt(f, stored))) return
    // Off live entries from here, in the tick the snapshot's least seq is read: whatever it was
    // sent live is at or below the snapshot, so the catch-up from the snapshot's seq sends
    // every later entry once, and none it had (no rewind for the replica).
    f.live = false
    const startedAt = steadyNow(this.doc.runtime)
    const meta = fresh ? await this.doc.snapshotAtLeast(f.wantsState ? this.doc.committed() : floor) : latest
    if (asked) this.paced(startedAt)
    if (f.closed) return
    f.wantsState = false
    this.send(f, meta, (seq, i) => this.doc.readChunk(seq, i), this.doc.useSnapshot(meta.seq))
  }

  /**
   * Whether an asked-for state must wait: for the document's pacing (see `stateSnapshotsFrom`),
   * or for the budget of the client asking, which pays for it by the state's size
   * (`chargeState`: one client following many documents pays for each); if so, `f` asks again then.
   */
  private mustWait(f: Follower): boolean {
    const now = steadyNow(this.doc.runtime)
    if (now < this.stateSnapshotsFrom) return this.waitFor(f, this.stateSnapshotsFrom - now)
    return this.mustPay(f, Math.max(MIN_STATE_CHARGE_BYTES, this.doc.stateBytes()))
  }

  /**
   * Whether a stream of about `bytes` to `f` must wait because its client's state budget is in
   * debt (`chargeState`: nothing is charged then, and `f` asks again when it is out of debt);
   * false once charged (go).
   */
  private mustPay(f: Follower, bytes: number): boolean {
    return this.waitFor(f, this.doc.chargeState(f.clientId, Math.max(0, bytes)))
  }

  /** `f` catches up again in `wait` ms (false: it need not wait). */
  private waitFor(f: Follower, wait: number): boolean {
    if (wait <= 0) return false
    f.retry?.cancel()
    f.retry = this.doc.runtime.setTimer(wait, () => {
      f.retry = undefined
      if (!f.closed && !this.doc.isBroken()) this.catchUp(f)
    })
    return true
  }

  /** An asked-for state's work began at `startedAt` and is done: the next waits (see `stateSnapshotsFrom`). */
  private paced(startedAt: number): void {
    const end = steadyNow(this.doc.runtime)
    this.stateSnapshotsFrom = end + Math.max(STATE_SNAPSHOT_GAP_MS, STATE_SNAPSHOT_DUTY * (end - startedAt))
  }

  /** Until when asked-for states wait (the document stays loaded till then, so an unload does not reset it). */
  get pacedUntil(): number {
    return this.stateSnapshotsFrom
  }

  /** Sends the snapshot `meta` (its chunks read by `read`), then catches up from its seq. */
  private send(f: Follower, meta: SnapshotMeta, read: ChunkReader, release: () => void): void {
    const sender = new SnapshotSender(
      this.doc.docId, meta, read, f.conn, this.options.snapshotWindow,
      // Every chunk goes through the follower's limits, whatever the replica acknowledged.
      () => this.canSend(f),
      // Stopped (the follower left): the stored snapshot is no longer read by it.
      release,
      () => {
        release()
        f.stream = undefined
        f.cursor = meta.seq
        this.catchUp(f)
      },
      (e) => {
        release()
        f.stream = undefined
        this.failed(f, e)
      },
    )
    f.stream = sender
    // A replica resuming a cut stream of this snapshot already has its first bytes.
    const from = resumedAt(f, meta)
    f.resume = undefined
    sender.start(from)
  }
}

/** Where a stream of `meta` to `f` starts: what the replica said it has of it, before it subscribed (else 0). */
const resumedAt = (f: Follower, meta: SnapshotMeta): number =>
  f.resume !== undefined && f.resume.snapshotId === meta.seq ? Math.min(Math.max(0, Math.floor(f.resume.received)), meta.size) : 0

/** Whose presence `to` sees of a client: the last set by its connections other than `to` (undefined: none, or gone). */
const latestPresence = (connections: ReadonlyArray<Follower>, to: Follower | undefined): Follower | undefined => {
  let holder: Follower | undefined
  for (const o of connections) if (o !== to && !o.closed && o.presence !== null) holder = o
  return holder
}

/** Takes `clientId` out of what `f` was shown (Follower `shown`), returning the message it was. */
const unshow = (f: Follower, clientId: string): ServerMessage | undefined => {
  const message = f.shown?.get(clientId)
  if (message === undefined) return undefined
  f.shown!.delete(clientId)
  if (f.shown!.size === 0) f.shown = undefined
  return message
}

/** Canonical bytes of a presence state (the hub refused any over its limit before). */
const canonicalBytes = (state: unknown): number => {
  try {
    return encodeCanonical(state).length
  } catch {
    return 0
  }
}
