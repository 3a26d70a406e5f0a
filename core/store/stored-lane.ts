/**
 * A document's lane to the replica store (core/replica/doc-lane.ts): its writes, in order, with
 * what a failed write leaves for the next one. It comes with a storage (ReplicaStore.lane), so
 * an app without storage does not ship it.
 *
 * Durability order: a command's outbox record is written before the command is sent; a
 * confirmation removes it and advances the confirmed seq in one write. A write that fails is
 * never lost: what it held goes first into the next write (or a retry), so the stored log and
 * outbox never have a hole.
 */
import { errorText } from "../errors.js"
import type { Entry } from "../entry.js"
import type { DocLane, LaneHost, QueuedChange, Renumbering, Replacements } from "../replica/doc-lane.js"
import type { PendingCommand } from "../replica/replica-state.js"
import type { ReplicaMeta } from "./records.js"
import type { OutboxRecord, ReplicaStore } from "./replica-store.js"
import type { Timer } from "../ports/runtime.js"

/** How long a failed write waits before it is tried again; doubled while it keeps failing, up to RETRY_MAX_MS. */
const RETRY_MS = 1000
const RETRY_MAX_MS = 30_000

/** A write not tried because the storage is failing: the armed retry carries it. */
const HELD_BACK = new Error("held back until the retry")

interface Unwritten {
  entries: Entry[]
  settled: number[]
  dropped: number[]
  queued: QueuedChange[]
  snapshot?: { seq: number; state: Uint8Array }
}

/** What a write of commands (an outbox or a renumbering write) takes of what failed writes left. */
interface Carry {
  /** The live commands failed writes left unstored, then the write's own. */
  readonly commands: ReadonlyArray<PendingCommand>
  /** What they go with (Unwritten): removals that change no state, queue records. */
  readonly dropped: ReadonlyArray<number>
  readonly queued: ReadonlyArray<QueuedChange>
}

const NOTHING: Carry = { commands: [], dropped: [], queued: [] }

export interface StoredLaneInit {
  /** What the store holds of the document when it opens. */
  readonly nextClientSeq: number
  readonly confirmedSeq: number
  readonly snapshotSeq: number
  /** Write the confirmed state whole every this many confirmed entries. */
  readonly snapshotEvery: number
}

export class StoredLane<T> implements DocLane<T> {
  idle: Promise<void> = Promise.resolve()
  // What the lane has written: the next write builds on these.
  #next: number
  #confirmed: number
  #snapshotSeq: number
  #sinceSnapshot = 0
  readonly #snapshotEvery: number
  /** Commands whose outbox write failed: the next outbox write stores them first. */
  #unstored: PendingCommand[] = []
  /**
   * The number each command handed over is written under: its number when handed over, until
   * a renumbering's write moves it (or finds it unstored). The hub renumbers commands in memory
   * at once (Doc.#renumber); a write queued before that renumbering's must not store them
   * under numbers whose old records are not moved yet (a number going down would overwrite
   * another command's record) nor release them to be sent under those.
   */
  readonly #numbers = new WeakMap<PendingCommand, number>()
  /** Renumberings handed over and not written yet, by command: one with any is not released (it may move back to the number just written). */
  readonly #moves = new Map<PendingCommand, number>()
  /**
   * What failed writes left: confirmed entries, an installed state and the outbox removals of
   * confirmed commands (`settled`) go with the next confirm's write; the removals of refused
   * commands and of renumbered commands' old records (`dropped`, which change no state) and
   * the queue records of changes waiting to go again go with the next outbox or confirm
   * write, with the unstored commands that replace them: stored apart, a replacement would be sent while
   * the refused commands stay in the outbox, to be refused and replaced again after a restart
   * (simulator seed 567), and a renumbered command would be stored under two numbers.
   */
  #unwritten: Unwritten = { entries: [], settled: [], dropped: [], queued: [] }
  /**
   * Confirmations whose outbox removal is not stored yet: the app is told once it is, so a
   * command it was told about is never back in the outbox after a restart (a read-only app,
   * told `update-required`, would keep it there for good and never hear of it again).
   */
  #untold: T[] = []
  /**
   * The one retry of failed writes, armed while the document is open (cancelled when it
   * closes). The write after a failure is still tried (it carries what failed: a passing
   * hiccup costs no delay); after two failures in a row writes wait for the retry (each would
   * carry the whole backlog, and report again), and the retry backs off.
   */
  #retryTimer: Timer | undefined
  /** Writes that failed in a row: past one, the storage is failing (not a passing hiccup), and each retry waits twice as long. */
  #failures = 0

  constructor(readonly store: ReplicaStore, readonly host: LaneHost<T>, init: StoredLaneInit) {
    this.#next = init.nextClientSeq
    this.#confirmed = init.confirmedSeq
    this.#snapshotSeq = init.snapshotSeq
    this.#snapshotEvery = init.snapshotEvery
  }

  /** Arms the retry (if it is not armed): it writes what failed writes left, outbox and confirmations both. */
  #retry(): void {
    if (this.#retryTimer !== undefined || this.host.closed) return
    // 1 s after the first failures, then 2 s, 4 s... as retries fail.
    const ms = Math.min(RETRY_MS * 2 ** Math.max(0, this.#failures - 2), RETRY_MAX_MS)
    this.#retryTimer = this.host.runtime.setTimer(ms, () => {
      this.#retryTimer = undefined
      if (this.host.closed) return
      this.host.flushOutbox()
      this.confirm(undefined, [], [], undefined, [])
    })
  }

  /** A write to the store, unless the storage is failing: then it waits for the retry. */
  #write(call: () => Promise<void>): Promise<void> {
    if (this.#failures >= 2 && this.#retryTimer !== undefined) return Promise.reject(HELD_BACK)
    return call().then(() => {
      this.#failures = 0
    }, (e) => {
      this.#failures++
      throw e
    })
  }

  close(): void {
    this.#retryTimer?.cancel()
    this.#retryTimer = undefined
  }

  #meta(confirmedSeq: number, nextClientSeq: number): ReplicaMeta {
    const m = this.host.machine
    return { machine: m.name, version: m.version, confirmedSeq, nextClientSeq }
  }

  #enqueue(write: () => Promise<void>, then: () => void, failed?: () => void): void {
    this.idle = this.idle
      .then(write)
      .then(then, (e) => {
        if (e !== HELD_BACK) this.host.error(`Writing document "${this.host.docId}" failed: ${errorText(e)}`)
        failed?.()
      })
  }

  wantSnapshot(entries: number): boolean {
    return this.#sinceSnapshot + entries >= this.#snapshotEvery
  }

  firstUnstored(): number | undefined {
    return this.#unstored[0]?.clientSeq
  }

  /**
   * The stored next number never runs past the stored commands: numbers taken by commands
   * still waiting for their own write would be a hole in the outbox after a crash, and the
   * hub refuses a hole for good (crash-client seed 251190864).
   */
  #nextAfter(batch: ReadonlyArray<PendingCommand>): number {
    let last = 0
    for (const p of batch) last = Math.max(last, this.#number(p))
    return Math.max(this.#next, last + 1)
  }

  #number(p: PendingCommand): number {
    return this.#numbers.get(p) ?? p.clientSeq
  }

  #record(p: PendingCommand): OutboxRecord {
    return { clientSeq: this.#number(p), name: p.name, args: p.encoded, ...(p.dequeued !== undefined ? { dequeued: p.dequeued } : {}), madeAs: p.madeAs }
  }

  /** Commands handed over: written under their numbers of now. */
  #handed(commands: ReadonlyArray<PendingCommand>): void {
    for (const p of commands) if (!this.#numbers.has(p)) this.#numbers.set(p, p.clientSeq)
  }

  /** Stored: those numbered as written with no renumbering still to write may be sent (the others wait for it). */
  #stored(commands: ReadonlyArray<PendingCommand>): void {
    const sendable = commands.filter((p) => p.clientSeq === this.#number(p) && !this.#moves.has(p))
    if (sendable.length > 0) this.host.outboxStored(sendable)
  }

  /**
   * Takes, for a write of commands, what failed writes left for it: the commands left unstored
   * go first (stored after `also`, the outbox would have a hole the hub refuses: sequence-gap),
   * and with them what they replace (Unwritten.dropped, the queue records). Entries and states
   * wait for a confirm, so a write the storage keeps refusing (a state over its quota) holds
   * no command back.
   */
  #takeCarry(also: ReadonlyArray<PendingCommand>): Carry {
    const carry = { commands: [...this.#unstored.filter((p) => this.host.pendingAt(p.clientSeq) === p), ...also], dropped: this.#unwritten.dropped, queued: this.#unwritten.queued }
    this.#unstored = []
    this.#unwritten = { ...this.#unwritten, dropped: [], queued: [] }
    return carry
  }

  /** A carry is stored: its commands may be sent (#stored), its removals are told. */
  #carried(carry: Carry): void {
    this.#stored(carry.commands)
    if (carry.dropped.length > 0) this.host.confirmedStored(carry.dropped, [])
  }

  /**
   * A carry's write failed: not durable, so not sent yet; the next write takes it again (the
   * app was told storage failed; kept after a close too: close() says they were not stored).
   */
  #giveBack(carry: Carry, dropped: ReadonlyArray<number> = [], commands: ReadonlyArray<PendingCommand> = []): void {
    this.#unwritten = { ...this.#unwritten, dropped: [...dropped, ...carry.dropped, ...this.#unwritten.dropped], queued: [...carry.queued, ...this.#unwritten.queued] }
    this.#unstored = [...carry.commands, ...commands, ...this.#unstored].sort((a, b) => a.clientSeq - b.clientSeq)
    this.#retry()
  }

  outbox(queued: ReadonlyArray<PendingCommand>): void {
    if (queued.length === 0 && this.#unstored.length === 0 && this.#unwritten.dropped.length === 0 && this.#unwritten.queued.length === 0) return
    this.#handed(queued)
    let carry = NOTHING
    let next = this.#next
    this.#enqueue(
      () => {
        carry = this.#takeCarry(queued)
        next = this.#nextAfter(carry.commands)
        if (carry.commands.length === 0 && carry.dropped.length === 0 && carry.queued.length === 0) return Promise.resolve()
        return this.#write(() => this.store.confirm(this.host.docId, {
          meta: this.#meta(this.#confirmed, next), entries: [], settled: carry.dropped, queued: carry.queued, outbox: carry.commands.map((p) => this.#record(p)),
        }))
      },
      () => {
        this.#next = Math.max(this.#next, next)
        this.#carried(carry)
      },
      () => this.#giveBack(carry),
    )
  }

  confirm(confirmedSeq: number | undefined, applied: ReadonlyArray<Entry>, removed: ReadonlyArray<number>, snapshot: Uint8Array | undefined, tell: ReadonlyArray<T>, replacing?: Replacements): void {
    const host = this.host
    if (confirmedSeq !== undefined) this.#sinceSnapshot = snapshot !== undefined ? 0 : this.#sinceSnapshot + applied.length
    let base: { seq: number; state: Uint8Array } | undefined
    let seq = confirmedSeq ?? this.#confirmed
    let commands: ReadonlyArray<PendingCommand> = []
    let queued: ReadonlyArray<QueuedChange> = []
    let carried: Unwritten = { entries: [], settled: [], dropped: [], queued: [] }
    // This write's own removals of refused commands: kept apart if it fails (see Unwritten).
    const refused = new Set(replacing?.refused ?? [])
    this.#handed(replacing?.commands ?? [])
    this.#enqueue(
      // Built when the lane gets here, on top of what the writes before it stored; what an
      // earlier failed write left out goes first (taken here, not at integrate time: a write
      // queued behind one that then fails must carry it), so the stored log has no hole.
      () => {
        carried = this.#unwritten
        this.#unwritten = { entries: [], settled: [], dropped: [], queued: [] }
        if (carried.entries.length > 0) applied = [...carried.entries, ...applied]
        const own = removed
        removed = [...carried.settled, ...carried.dropped, ...own]
        // What replaces removed commands is stored with their removal: the replacing commands,
        // and, when this write removes commands (its own or a failed write's), any outbox a
        // failed write left unstored (first, as in `outbox`), which may be what replaces them.
        queued = [...carried.queued, ...(replacing?.queued ?? [])]
        if (replacing !== undefined || removed.length > own.length) {
          commands = [...this.#unstored.filter((p) => host.pendingAt(p.clientSeq) === p), ...(replacing?.commands ?? [])]
          this.#unstored = []
        }
        if (confirmedSeq === undefined) {
          // A retry: nothing left if a write since carried it. An installed state it carries
          // replaces the stored one, and may be of a lower seq (an older-version follower is
          // sent its version's state at seq 0): the seq is where that state and its entries reach.
          const last = applied[applied.length - 1]?.seq ?? 0
          seq = carried.snapshot !== undefined ? Math.max(carried.snapshot.seq, last) : Math.max(this.#confirmed, last)
          if (applied.length === 0 && removed.length === 0 && carried.snapshot === undefined && commands.length === 0 && queued.length === 0) return Promise.resolve()
        }
        base = snapshot !== undefined ? { seq, state: snapshot } : carried.snapshot
        return this.#write(() => this.store.confirm(host.docId, {
          meta: this.#meta(seq, this.#nextAfter(commands)),
          entries: applied,
          settled: removed,
          ...(base !== undefined ? { snapshot: { seq: base.seq, state: base.state, dropFrom: this.#snapshotSeq + 1, dropTo: this.#confirmed } } : {}),
          ...(commands.length > 0 ? { outbox: commands.map((p) => this.#record(p)) } : {}),
          ...(queued.length > 0 ? { queued } : {}),
        }))
      },
      () => {
        this.#confirmed = confirmedSeq === undefined && base === undefined ? Math.max(this.#confirmed, seq) : seq
        if (base !== undefined) this.#snapshotSeq = base.seq
        if (commands.length > 0) {
          this.#next = this.#nextAfter(commands)
          this.#stored(commands)
        }
        const all = this.#untold.length > 0 ? [...this.#untold, ...tell] : tell
        this.#untold = []
        host.confirmedStored(removed, all)
      },
      () => {
        // Nothing of this batch was written (batches are atomic): the next write carries it,
        // or a retry if none comes (the app hears of these confirmations once stored). The
        // replacing commands go back to the unstored outbox, which the next write carries first.
        const own = removed.slice(carried.settled.length + carried.dropped.length)
        this.#unwritten = {
          entries: [...applied, ...this.#unwritten.entries],
          settled: [...carried.settled, ...own.filter((n) => !refused.has(n)), ...this.#unwritten.settled],
          dropped: [...carried.dropped, ...own.filter((n) => refused.has(n)), ...this.#unwritten.dropped],
          queued: [...queued, ...this.#unwritten.queued],
          ...(base !== undefined ? { snapshot: base } : {}),
        }
        if (commands.length > 0) this.#unstored = [...commands, ...this.#unstored]
        this.#untold.push(...tell)
        if (snapshot !== undefined) this.#sinceSnapshot = this.#snapshotEvery
        this.#retry()
      },
    )
  }

  install(seq: number, state: Uint8Array): void {
    let settledBefore: number[] = []
    this.#enqueue(
      () => {
        // Entries an earlier failed write left out are inside this state (or of a timeline it
        // replaces): their outbox removals go with it. Removals of refused commands and queue
        // records wait for the write that stores what replaces them (Unwritten).
        settledBefore = this.#unwritten.settled
        this.#unwritten = { ...this.#unwritten, entries: [], settled: [] }
        delete this.#unwritten.snapshot
        return this.#write(() => this.store.confirm(this.host.docId, {
          meta: this.#meta(seq, this.#next),
          entries: [],
          settled: settledBefore,
          snapshot: { seq, state, dropFrom: this.#snapshotSeq + 1, dropTo: this.#confirmed },
        }))
      },
      () => {
        this.#confirmed = seq
        this.#snapshotSeq = seq
        this.#sinceSnapshot = 0
        if (settledBefore.length > 0) {
          const untold = this.#untold
          this.#untold = []
          this.host.tell(untold)
        }
      },
      // Not written: the next confirm (or the retry's) carries the installed state, or its entries would follow a hole.
      () => {
        this.#unwritten = { ...this.#unwritten, entries: [], settled: [...settledBefore, ...this.#unwritten.settled], snapshot: { seq, state } }
        this.#retry()
      },
    )
  }

  renumber(moves: ReadonlyArray<Renumbering>, from: number, down: boolean, toPersist: ReadonlyArray<PendingCommand>): void {
    // Commands still in `toPersist` get their first write with the new numbers.
    const firstWrite = new Set(toPersist)
    for (const m of moves) {
      // One never handed over (restored from the store at open) is stored under its number of
      // before: the move starts there.
      if (!firstWrite.has(m.command) && !this.#numbers.has(m.command)) this.#numbers.set(m.command, m.from)
      this.#moves.set(m.command, (this.#moves.get(m.command) ?? 0) + 1)
    }
    let moved: ReadonlyArray<Renumbering> = []
    let carry = NOTHING
    // As in `outbox`: the stored next number covers the stored commands only.
    let storedNext = from
    const done = () => {
      for (const m of moves) {
        const n = this.#moves.get(m.command)! - 1
        if (n > 0) this.#moves.set(m.command, n)
        else this.#moves.delete(m.command)
      }
      for (const m of moved) this.#numbers.set(m.command, m.to)
    }
    this.#enqueue(
      () => {
        // Which records to move is decided when the lane gets here: a write before this one
        // that failed left its commands unstored, with no record to move. Those are stored in
        // this write, under their new numbers (the carry, as an outbox write stores them): a
        // move may land on the number of an unstored command's only record (a failed move's
        // old one), which must not be overwritten before it is stored again. Moved at call
        // time, a refusal's replacement was stored beside the commands it replaces, and a
        // command above one left unstored (a hole).
        const unstored = new Set(this.#unstored)
        for (const m of moves) if (unstored.has(m.command)) this.#numbers.set(m.command, m.to)
        moved = moves.filter((m) => !firstWrite.has(m.command) && !unstored.has(m.command)).map((m) => ({ ...m, from: this.#number(m.command) }))
        // A confirmed command's removal a failed write left for later names a number a command
        // now takes: it must not take that command out with it (the moved record overwrites the
        // old one). (Dropped removals go in this write, before its records.)
        const taken = new Set(moves.map((m) => m.to))
        this.#unwritten = { ...this.#unwritten, settled: this.#unwritten.settled.filter((n) => !taken.has(n)) }
        carry = this.#takeCarry([])
        storedNext = Math.max(down ? from : this.#next, from, ...moved.map((m) => m.to + 1), ...carry.commands.map((p) => this.#number(p) + 1))
        return this.#write(() => this.store.confirm(this.host.docId, {
          meta: this.#meta(this.#confirmed, storedNext),
          entries: [],
          settled: [...carry.dropped, ...moved.map((m) => m.from)],
          queued: carry.queued,
          outbox: [...carry.commands.map((p) => this.#record(p)), ...moved.map((m) => ({ clientSeq: m.to, name: m.command.name, args: m.command.encoded, madeAs: m.command.madeAs }))],
        }))
      },
      () => {
        done()
        this.#next = down ? storedNext : Math.max(this.#next, storedNext)
        // Stored under their new numbers: now they may be sent (Doc holds them till then).
        this.#carried({ ...carry, commands: [...carry.commands, ...moved.map((m) => m.command)] })
      },
      () => {
        done()
        // Not moved: the next write moves them (old records out, new ones in, one batch), and
        // they wait unsent till then. Sent under numbers the disk does not hold, a crash would
        // bring them back under the old ones, to be renumbered and applied again.
        // Down: the stored next number follows them down once they are written (it must not run past them).
        if (down) this.#next = Math.min(this.#next, storedNext)
        this.#giveBack(carry, moved.map((m) => m.from), moved.map((m) => m.command))
      },
    )
  }

}
