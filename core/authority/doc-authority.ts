/**
 * The authority of one document: the single writer that puts commands in a total order.
 *
 * Group commit: submits arriving while a write is in flight queue up and go out together in
 * the next batch. For each batch the authority validates and applies every command (a
 * rejected or invalid command still consumes its clientSeq), then writes entries, head and
 * idempotency records in one atomic batch, and only then acknowledges and fans out. If the
 * write fails, the in-memory document is no longer trustworthy: it is discarded (`broken`)
 * and the hub reloads it from storage on next use, so nothing unacknowledged is ever served.
 *
 * Catch-up for a (re)subscribing replica reads the log in pages outside the write lane
 * (committed entries never change) and switches the subscriber to live fan-out in the same
 * tick that it reaches the committed head, so no entry is skipped or sent twice.
 */
import { decodeArgs, makeContext, runApply, type Machine } from "../machine.js"
import { JournaledState, type Journal } from "../journal.js"
import { applyLogged } from "../apply.js"
import { hashState } from "../hash.js"
import { encodeCanonical, sizeBound } from "../canonical.js"
import type { Checkpoint, Entry, Outcome } from "../entry.js"
import type { Rejection } from "../errors.js"
import { CanonError } from "../errors.js"
import type { Connection, Timer } from "../ports/index.js"
import type { Runtime } from "../ports/runtime.js"
import type { ServerMessage, Submit } from "../protocol/messages.js"
import type { AuthorityStore } from "../store/authority-store.js"
import type { AuthorityHead, ClientRecord } from "../store/records.js"

export interface AuthorityOptions {
  /** Publish a checkpoint every this many entries. Default 256; Infinity turns checkpoints off. */
  readonly checkpointEvery?: number
  /** Publish a checkpoint of the head after the document is quiet this long (ms). Default 1000; Infinity: never. */
  readonly quietCheckpointMs?: number
  /** Entries per catch-up message. Default 512. */
  readonly catchUpPage?: number
  /** Outcomes remembered per client before the oldest are forgotten. Default 100,000. */
  readonly maxOutcomesPerClient?: number
  /**
   * A subscriber whose connection has more than this buffered (bytes on WebSocket, messages
   * in memory) gets no more entries until it drains; they wait in the log. Default 1 MiB.
   */
  readonly highWaterMark?: number
  /** Above this the connection is closed with `slow-consumer`. Default 8 MiB. */
  readonly hardLimit?: number
  /** Entries messages are cut below this many bytes (the frame limit is 1 MiB). Default 512 KiB. */
  readonly maxMessageBytes?: number
}

/** An upper bound of an entry's bytes on the wire. */
export const entrySizeBound = (e: Entry): number => 32 + e.clientId.length * 3 + e.name.length * 3 + sizeBound(e.args)

/** Cuts entries into runs whose size bound stays under `max` (a run has at least one entry). */
export const cutBySize = (entries: ReadonlyArray<Entry>, max: number): Entry[][] => {
  const out: Entry[][] = []
  let run: Entry[] = []
  let size = 0
  for (const e of entries) {
    const n = entrySizeBound(e)
    if (run.length > 0 && size + n > max) {
      out.push(run)
      run = []
      size = 0
    }
    run.push(e)
    size += n
  }
  if (run.length > 0) out.push(run)
  return out
}

interface Subscriber {
  readonly conn: Connection<ServerMessage>
  readonly clientId: string
  /** Ephemeral presence of this connection on the document (never logged). */
  presence: unknown
  /** Highest seq sent to this subscriber. */
  cursor: number
  live: boolean
  closed: boolean
}

interface Pending {
  readonly conn: Connection<ServerMessage>
  readonly clientId: string
  readonly msg: Submit
  /** Refuse these commands (still consuming their clientSeqs) instead of applying them. */
  readonly refuse: Rejection | undefined
}

export class DocAuthority<S = unknown> {
  private readonly host: JournaledState<S>
  /** Seq of the last entry applied in memory (ahead of `committed` while a batch is written). */
  private seq: number
  /** Seq of the last durable entry: all that is ever served. */
  private committed: number
  private lastTime: number
  private checkpoint: Checkpoint | undefined
  private readonly subscribers = new Map<Connection<ServerMessage>, Subscriber>()
  private queue: Pending[] = []
  private flushing = false
  private quietTimer: Timer | undefined
  /** Set when a storage write failed: the hub must drop and reload this document. */
  broken = false
  private readonly checkpointEvery: number
  private readonly quietMs: number
  private readonly page: number
  private readonly maxOutcomes: number
  private readonly highWater: number
  private readonly hardLimit: number
  private readonly maxMessageBytes: number

  private constructor(
    readonly docId: string,
    readonly machine: Machine<S>,
    private readonly store: AuthorityStore,
    private readonly runtime: Runtime,
    state: S,
    head: AuthorityHead,
    private readonly clients: Map<string, ClientRecord>,
    options: AuthorityOptions,
    private readonly onBroken: (doc: DocAuthority<S>, error: unknown) => void,
  ) {
    this.host = new JournaledState(state)
    this.seq = head.seq
    this.committed = head.seq
    this.lastTime = head.lastTime
    this.checkpoint = head.checkpoint
    this.checkpointEvery = options.checkpointEvery ?? 256
    this.quietMs = options.quietCheckpointMs ?? 1000
    this.page = options.catchUpPage ?? 512
    this.maxOutcomes = options.maxOutcomesPerClient ?? 100_000
    this.highWater = options.highWaterMark ?? 1 << 20
    this.hardLimit = options.hardLimit ?? 8 << 20
    this.maxMessageBytes = options.maxMessageBytes ?? 512 << 10
  }

  /** Entries as messages under the size limit; the checkpoint rides with the run holding its seq. */
  private entriesMessages(entries: ReadonlyArray<Entry>, checkpoint: Checkpoint | undefined): ServerMessage[] {
    return cutBySize(entries, this.maxMessageBytes).map((run) => {
      const last = run[run.length - 1]!.seq
      const cp = checkpoint !== undefined && checkpoint.seq >= run[0]!.seq && checkpoint.seq <= last ? checkpoint : undefined
      return cp !== undefined ? { type: "entries", docId: this.docId, entries: run, checkpoint: cp } : { type: "entries", docId: this.docId, entries: run }
    })
  }

  /** Loads a document from storage (replaying its log) or creates it empty. */
  static async load<S>(
    docId: string,
    machine: Machine<S>,
    store: AuthorityStore,
    runtime: Runtime,
    options: AuthorityOptions,
    onBroken: (doc: DocAuthority<S>, error: unknown) => void,
  ): Promise<DocAuthority<S>> {
    const stored = await store.head(docId)
    if (stored !== undefined && stored.machine !== machine.name) {
      throw new CanonError({ code: "machine-mismatch", message: `Document "${docId}" belongs to machine "${stored.machine}", not "${machine.name}".` })
    }
    const head: AuthorityHead = stored ?? { machine: machine.name, version: machine.version, seq: 0, lastTime: 0, checkpoint: undefined }
    const clients = await store.clients(docId)
    const host = new JournaledState<S>(machine.initial())
    let at = 0
    const page = options.catchUpPage ?? 512
    while (at < head.seq) {
      const entries = await store.entries(docId, at, Math.min(page * 8, head.seq - at))
      if (entries.length === 0) break
      for (const e of entries) {
        applyLogged(host, docId, machine, e)
        at = e.seq
      }
    }
    if (at !== head.seq) {
      throw new CanonError({ code: "storage-corrupt", message: `Document "${docId}" has head ${head.seq} but its log ends at ${at}.` })
    }
    // The stored checkpoint at the head must describe the state we rebuilt. If it does not,
    // the machine is not deterministic (or changed): publish the truth, so replicas resync.
    let checked = head
    if (options.checkpointEvery === Infinity) {
      // Checkpoints are off.
    } else if (head.seq > 0 && head.checkpoint?.seq === head.seq) {
      const hash = hashState(host.root)
      if (hash !== head.checkpoint.hash) checked = { ...head, checkpoint: { seq: head.seq, hash } }
    } else if (head.seq > 0) {
      checked = { ...head, checkpoint: { seq: head.seq, hash: hashState(host.root) } }
    }
    return new DocAuthority(docId, machine, store, runtime, host.root, checked, clients, options, onBroken)
  }

  /** Seq of the last durable entry. */
  get headSeq(): number {
    return this.committed
  }

  /** The current (committed) state. Read-only. */
  get state(): S {
    return this.host.root
  }

  get subscriberCount(): number {
    return this.subscribers.size
  }

  stateHash(): string {
    return hashState(this.host.root)
  }

  // ---- subscribe / catch-up ----

  subscribe(conn: Connection<ServerMessage>, clientId: string, fromSeq: number, ackedClientSeq: number): void {
    this.unsubscribe(conn)
    this.ack(clientId, ackedClientSeq)
    const sub: Subscriber = { conn, clientId, presence: null, cursor: Math.max(0, fromSeq), live: false, closed: false }
    this.subscribers.set(conn, sub)
    if (sub.cursor > this.committed) {
      // The replica has entries we do not: it followed an incarnation of this document that
      // was lost. Give it our state; it resyncs from there.
      this.sendState(sub)
    }
    this.sendPresenceTo(sub)
    void this.catchUp(sub).catch((e) => this.dropSubscriber(sub, e))
  }

  unsubscribe(conn: Connection<ServerMessage>): void {
    const sub = this.subscribers.get(conn)
    if (sub !== undefined) {
      sub.closed = true
      this.subscribers.delete(conn)
      if (sub.presence !== null) this.broadcastPresence(sub, null)
    }
  }

  // ---- presence: ephemeral, relayed, never in the log ----

  /** Sets this connection's presence and tells the document's other subscribers. */
  setPresence(conn: Connection<ServerMessage>, state: unknown): void {
    const sub = this.subscribers.get(conn)
    if (sub === undefined) return
    sub.presence = state ?? null
    this.broadcastPresence(sub, sub.presence)
  }

  private broadcastPresence(from: Subscriber, state: unknown): void {
    for (const other of this.subscribers.values()) {
      if (other !== from) other.conn.send({ type: "presence", docId: this.docId, clientId: from.clientId, state })
    }
  }

  /** Who else is here: sent to a new subscriber. */
  private sendPresenceTo(sub: Subscriber): void {
    for (const other of this.subscribers.values()) {
      if (other !== sub && other.presence !== null) sub.conn.send({ type: "presence", docId: this.docId, clientId: other.clientId, state: other.presence })
    }
  }

  private dropSubscriber(sub: Subscriber, e: unknown): void {
    this.unsubscribe(sub.conn)
    const message = e instanceof Error ? e.message : String(e)
    sub.conn.send({ type: "error", code: "storage-failed", message: `Reading document "${this.docId}" failed: ${message}`, docId: this.docId })
  }

  /**
   * Backpressure: true if the subscriber may be sent more now. Over the high-water mark it
   * is paused (and resumes by catching up from the log once drained); over the hard limit
   * its connection is closed with `slow-consumer` (the client reconnects and catches up).
   */
  private canSend(sub: Subscriber): boolean {
    const buffered = sub.conn.bufferedAmount
    if (buffered > this.hardLimit) {
      this.unsubscribe(sub.conn)
      sub.conn.close("slow-consumer", `More than ${this.hardLimit} bytes waited unread; reconnect to catch up.`)
      return false
    }
    if (buffered <= this.highWater) return true
    sub.live = false
    this.resumeWhenDrained(sub)
    return false
  }

  private resumeWhenDrained(sub: Subscriber): void {
    this.runtime.setTimer(DRAIN_POLL_MS, () => {
      if (sub.closed || this.broken) return
      const buffered = sub.conn.bufferedAmount
      if (buffered > this.hardLimit) return void this.canSend(sub)
      if (buffered > this.highWater / 2) return this.resumeWhenDrained(sub)
      void this.catchUp(sub).catch((e) => this.dropSubscriber(sub, e))
    })
  }

  private async catchUp(sub: Subscriber): Promise<void> {
    for (;;) {
      if (sub.closed || this.broken) return
      if (!this.canSend(sub)) return
      if (sub.cursor >= this.committed) {
        sub.live = true
        sub.conn.send({ type: "synced", docId: this.docId, seq: this.committed })
        const cp = this.checkpoint
        if (cp !== undefined && cp.seq === this.committed) sub.conn.send({ type: "checkpoint", docId: this.docId, seq: cp.seq, hash: cp.hash })
        return
      }
      const from = sub.cursor
      const entries = await this.store.entries(this.docId, from, Math.min(this.page, this.committed - from))
      if (sub.closed) return
      if (entries.length === 0) {
        throw new CanonError({ code: "storage-corrupt", message: `The log of "${this.docId}" ends before its head ${this.committed} (read after ${from}).` })
      }
      // A state transfer may have moved the cursor while we read.
      const fresh = entries.filter((e) => e.seq > sub.cursor)
      if (fresh.length === 0) continue
      const last = fresh[fresh.length - 1]!.seq
      for (const msg of this.entriesMessages(fresh, this.checkpoint)) sub.conn.send(msg)
      sub.cursor = last
    }
  }

  // ---- state transfer ----

  /** Sends the whole committed state (after a desync). Waits for an in-flight batch. */
  fetchState(conn: Connection<ServerMessage>): void {
    const sub = this.subscribers.get(conn)
    if (sub === undefined) {
      conn.send({ type: "error", code: "not-subscribed", message: `Subscribe to "${this.docId}" before fetching its state.`, docId: this.docId })
      return
    }
    if (this.flushing) {
      this.afterFlush.push(() => this.sendState(sub))
    } else {
      this.sendState(sub)
    }
  }

  private afterFlush: Array<() => void> = []

  private sendState(sub: Subscriber): void {
    if (sub.closed) return
    // Only called between batches, when memory equals what is committed.
    const state = encodeCanonical(this.host.root)
    sub.conn.send({ type: "state", docId: this.docId, seq: this.committed, hash: hashState(this.host.root), state })
    sub.cursor = this.committed
  }

  // ---- submit / group commit ----

  submit(conn: Connection<ServerMessage>, clientId: string, msg: Submit, refuse?: Rejection): void {
    this.queue.push({ conn, clientId, msg, refuse })
    if (!this.flushing) void this.flush()
  }

  private client(clientId: string): ClientRecord {
    let rec = this.clients.get(clientId)
    if (rec === undefined) {
      rec = { last: 0, acked: 0, outcomes: new Map() }
      this.clients.set(clientId, rec)
    }
    return rec
  }

  /** The client has stored every outcome up to `acked`: forget them. Returns true if changed. */
  private ack(clientId: string, acked: number): boolean {
    const rec = this.client(clientId)
    if (acked <= rec.acked) return false
    rec.acked = Math.min(acked, rec.last)
    for (const cs of rec.outcomes.keys()) {
      if (cs > rec.acked) break
      rec.outcomes.delete(cs)
    }
    return true
  }

  private async flush(): Promise<void> {
    this.flushing = true
    try {
      while (this.queue.length > 0 && !this.broken) {
        const batch = this.queue
        this.queue = []
        await this.commitBatch(batch)
      }
    } finally {
      this.flushing = false
      const after = this.afterFlush
      this.afterFlush = []
      for (const f of after) f()
    }
  }

  private async commitBatch(batch: Pending[]): Promise<void> {
    const seqBefore = this.committed
    const entries: Entry[] = []
    const journals: Journal[] = []
    const dirty = new Map<string, ClientRecord>()
    const replies = new Map<Connection<ServerMessage>, Outcome[]>()
    let checkpoint: Checkpoint | undefined

    for (const { conn, clientId, msg, refuse } of batch) {
      const rec = this.client(clientId)
      if (this.ack(clientId, msg.ackedClientSeq)) dirty.set(clientId, rec)
      let out = replies.get(conn)
      for (const cmd of msg.commands) {
        if (out === undefined) replies.set(conn, (out = []))
        if (cmd.clientSeq <= rec.last) {
          // A retry: the original outcome, never a second application.
          out.push(rec.outcomes.get(cmd.clientSeq) ?? expired(cmd.clientSeq, rec.acked))
          continue
        }
        let outcome: Outcome
        const decoded = refuse === undefined ? decodeArgs(this.machine, cmd.name, cmd.args) : { ok: false as const, rejection: refuse }
        if (!decoded.ok) {
          outcome = { clientSeq: cmd.clientSeq, rejection: decoded.rejection }
        } else {
          const seq = this.seq + 1
          const time = Math.max(this.lastTime, this.runtime.now())
          const journal = this.host.begin()
          const rejection: Rejection | undefined = runApply(this.host, decoded.cmd, cmd.name, decoded.args, makeContext(this.docId, seq, time, clientId))
          this.host.end()
          if (rejection !== undefined) {
            this.host.undo(journal)
            outcome = { clientSeq: cmd.clientSeq, rejection }
          } else {
            journals.push(journal)
            this.seq = seq
            this.lastTime = time
            entries.push({ seq, time, clientId, clientSeq: cmd.clientSeq, name: cmd.name, args: cmd.args })
            if (seq % this.checkpointEvery === 0) checkpoint = { seq, hash: hashState(this.host.root) }
            outcome = { clientSeq: cmd.clientSeq, seq }
          }
        }
        rec.last = cmd.clientSeq
        rec.outcomes.set(cmd.clientSeq, outcome)
        if (rec.outcomes.size > this.maxOutcomes) {
          const oldest = rec.outcomes.keys().next().value as number
          rec.outcomes.delete(oldest)
          rec.acked = Math.max(rec.acked, oldest)
        }
        dirty.set(clientId, rec)
        out.push(outcome)
      }
    }

    if (entries.length > 0 || dirty.size > 0) {
      if (!(await this.persist(entries, dirty, checkpoint, journals, seqBefore))) return
    }

    // Durable: fan out to live subscribers, then acknowledge. Entries first: a submitter that
    // follows the document confirms from them, so its receipt does not wait for the results.
    if (entries.length > 0) {
      // One message object per run, shared by every subscriber (a transport may encode it once).
      const msgs = this.entriesMessages(entries, checkpoint)
      for (const sub of [...this.subscribers.values()]) {
        if (sub.live && sub.cursor === seqBefore && this.canSend(sub)) {
          for (const msg of msgs) sub.conn.send(msg)
          sub.cursor = this.committed
        }
      }
      this.armQuietCheckpoint()
    }
    for (const [conn, outcomes] of replies) {
      if (outcomes.length > 0) conn.send({ type: "results", docId: this.docId, outcomes })
    }
  }

  /** Writes a batch atomically. On failure rolls memory back, marks the doc broken, returns false. */
  private async persist(entries: Entry[], dirty: Map<string, ClientRecord>, checkpoint: Checkpoint | undefined, journals: Journal[], seqBefore: number): Promise<boolean> {
    const head: AuthorityHead = {
      machine: this.machine.name,
      version: this.machine.version,
      seq: this.seq,
      lastTime: this.lastTime,
      checkpoint: checkpoint ?? this.checkpoint,
    }
    try {
      await this.store.commit(this.docId, { head, entries, clients: [...dirty], ...(checkpoint !== undefined ? { checkpoint } : {}) })
    } catch (e) {
      this.broken = true
      // Roll the memory back so nothing reads an unpersisted state before the reload.
      for (let i = journals.length - 1; i >= 0; i--) this.host.undo(journals[i]!)
      this.seq = seqBefore
      this.onBroken(this, e)
      return false
    }
    this.committed = this.seq
    if (checkpoint !== undefined) this.checkpoint = checkpoint
    return true
  }

  private armQuietCheckpoint(): void {
    this.quietTimer?.cancel()
    if (!Number.isFinite(this.quietMs)) return
    this.quietTimer = this.runtime.setTimer(this.quietMs, () => {
      this.quietTimer = undefined
      if (this.flushing || this.broken) return this.armQuietCheckpoint()
      if (this.checkpoint?.seq === this.committed) return
      const cp = { seq: this.committed, hash: hashState(this.host.root) }
      this.checkpoint = cp
      // Kept for `canon inspect`; losing it in a crash costs nothing but a later check.
      this.store.putCheckpoint(this.docId, cp).catch(() => {})
      for (const sub of this.subscribers.values()) {
        if (sub.live && sub.cursor === cp.seq) sub.conn.send({ type: "checkpoint", docId: this.docId, seq: cp.seq, hash: cp.hash })
      }
    })
  }

  /** Stops timers and forgets subscribers (the hub closes their connections). */
  close(): void {
    this.quietTimer?.cancel()
    for (const sub of this.subscribers.values()) sub.closed = true
    this.subscribers.clear()
  }
}

/** How often a paused subscriber's buffer is looked at. */
const DRAIN_POLL_MS = 50

const expired = (clientSeq: number, acked: number): Outcome => ({
  clientSeq,
  rejection: {
    code: "outcome-expired",
    message: clientSeq <= acked
      ? `Command ${clientSeq} was already settled and acknowledged by this client.`
      : `The outcome of command ${clientSeq} is no longer kept; check the document's log.`,
  },
})
