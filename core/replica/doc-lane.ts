/**
 * Where a document's changes go, in order: to the replica store (core/store/stored-lane.ts,
 * which comes with a storage), or nowhere (MemoryLane, below). Either calls the document back
 * in the order its changes were handed over, so Doc's logic is the same with or without
 * storage, and an app that passes no storage does not ship the store's write, carry and retry
 * logic (issue 15: client weight).
 */
import type { Entry } from "../entry.js"
import type { Machine } from "../machine.js"
import type { Runtime } from "../ports/runtime.js"
import type { PendingCommand } from "./replica-state.js"

/** What a lane needs of its document. `T` is what the document tells the app of a confirmation. */
export interface LaneHost<T> {
  readonly docId: string
  readonly machine: Machine<any, any>
  readonly runtime: Runtime
  /** True once the document is closed: nothing is retried after. */
  readonly closed: boolean
  /** The pending command numbered `clientSeq`, if it still is pending. */
  pendingAt(clientSeq: number): PendingCommand | undefined
  /** Writes the commands submitted since the last call (a retry calls it after a failed write). */
  flushOutbox(): void
  /** These commands' outbox records are stored: they may be sent. */
  outboxStored(batch: ReadonlyArray<PendingCommand>): void
  /** Confirmed entries and the outbox removals of `removed` are stored: the app may hear of `tell`. */
  confirmedStored(removed: ReadonlyArray<number>, tell: ReadonlyArray<T>): void
  /** Confirmations the app was not told of yet are stored now (with a later write). */
  tell(tell: ReadonlyArray<T>): void
  /** A write failed: the app is told (the lane carries what it held into a later write). */
  error(message: string): void
}

/**
 * A CRDT change the hub refused only for needing a refused one, waiting to go again
 * (core/crdt/replica.ts): stored while it waits, its record taken out by the outbox write of
 * the command that sends it (`PendingCommand.dequeued`).
 */
export interface QueuedChange {
  /** Its number among the document's waiting changes (the store's key). */
  readonly key: number
  readonly field: string
  readonly update: unknown
}

/** What a refusal puts in place of the refused commands, stored in the same write as their removal. */
export interface Replacements {
  /** Commands submitted in their place (with any of the outbox not stored yet). */
  readonly commands: ReadonlyArray<PendingCommand>
  /** Changes that wait to go again. */
  readonly queued: ReadonlyArray<QueuedChange>
  /** The refused commands among the removed ones (their removal changes no state: it may be stored apart from entries). */
  readonly refused: ReadonlyArray<number>
}

export interface Renumbering {
  readonly command: PendingCommand
  readonly from: number
  readonly to: number
}

export interface DocLane<T> {
  /** Resolves when every write handed over so far is done. */
  readonly idle: Promise<void>
  /** A write of confirmed entries that brings this many more should write the state whole. */
  wantSnapshot(entries: number): boolean
  /** The lowest clientSeq whose outbox record is not stored because its write failed. */
  firstUnstored(): number | undefined
  /**
   * New outbox records, after the commands failed writes left unstored and with the removals
   * and queue records those go with (not entries or states), then host.outboxStored.
   */
  outbox(queued: ReadonlyArray<PendingCommand>): void
  /**
   * Confirmed entries, outbox removals and maybe the state whole, then host.confirmedStored.
   * `confirmedSeq` undefined: a retry of what failed. `replacing`: what takes the removed
   * commands' place, in the same write (then host.outboxStored for its commands).
   */
  confirm(confirmedSeq: number | undefined, applied: ReadonlyArray<Entry>, removed: ReadonlyArray<number>, snapshot: Uint8Array | undefined, tell: ReadonlyArray<T>, replacing?: Replacements): void
  /** The authority's state at `seq` replaces the confirmed state. */
  install(seq: number, state: Uint8Array): void
  /**
   * Outbox records move to new numbers (at least one); `toPersist`: commands whose first write
   * is still to come. The moved commands are unsent until stored under their new numbers
   * (host.outboxStored); a failed move is carried by the next write.
   */
  renumber(moves: ReadonlyArray<Renumbering>, from: number, down: boolean, toPersist: ReadonlyArray<PendingCommand>): void
  /** The document closed: no retry stays armed (the writes handed over still finish). */
  close(): void
}

/** The lane of a document kept in memory only: nothing is written, the document is called back in order. */
export class MemoryLane<T> implements DocLane<T> {
  idle: Promise<void> = Promise.resolve()

  constructor(readonly host: LaneHost<T>) {}

  #then(fn: () => void): void {
    this.idle = this.idle.then(fn)
  }

  wantSnapshot(): boolean {
    return false
  }

  firstUnstored(): undefined {
    return undefined
  }

  outbox(queued: ReadonlyArray<PendingCommand>): void {
    if (queued.length > 0) this.#then(() => this.host.outboxStored(queued))
  }

  confirm(_seq: number | undefined, _applied: ReadonlyArray<Entry>, removed: ReadonlyArray<number>, _snapshot: Uint8Array | undefined, tell: ReadonlyArray<T>, replacing?: Replacements): void {
    this.#then(() => {
      if (replacing !== undefined && replacing.commands.length > 0) this.host.outboxStored(replacing.commands)
      this.host.confirmedStored(removed, tell)
    })
  }

  install(): void {}

  renumber(moves: ReadonlyArray<Renumbering>): void {
    this.#then(() => this.host.outboxStored(moves.map((m) => m.command)))
  }

  close(): void {}
}
