/**
 * A replica's state: the confirmed state at `confirmedSeq` plus pending local commands, kept
 * as one live object (the view) with an undo journal per pending command (see journal.ts).
 *
 * Rebase (`integrate`) costs O(pending + incoming), whatever the size of the state:
 *   1. undo the pending commands' writes, newest first   -> confirmed state
 *   2. apply the incoming entries in seq order            -> new confirmed state
 *      (own entries leave `pending`; checkpoints are checked here, where the state is exactly
 *      the confirmed state at that seq)
 *   3. drop pending commands settled by the authority
 *   4. apply the remaining pending commands again, in order -> new view
 * A pending command that now fails locally stays pending with no effect on the view: only
 * the authority's verdict settles it.
 *
 * Fast path: when the incoming entries are this replica's own oldest pending commands, in
 * order, each applied locally on exactly the base the authority applied it on (same seq, so
 * the same `ctx.random`; and it did not read `ctx.time`, or read the same time), the view
 * already holds their effect: they move from pending to confirmed without an undo or a redo.
 * That makes a writer's own echo O(1) per command, whatever the length of its outbox.
 */
import { applyLogged } from "../apply.js"
import { decodeCanonical, encodeCanonical } from "../canonical.js"
import type { Entry } from "../entry.js"
import type { Rejection } from "../errors.js"
import { hashState } from "../hash.js"
import { JournaledState, type Journal } from "../journal.js"
import { makeContext, runApply, type CompiledCommand, type Machine } from "../machine.js"
import type { ReplicaFields } from "../crdt/replica.js"

/**
 * Whether own entry `e` is pending command `p`, not only under its number. A store restored
 * from a backup (or copied to a second device) numbers new commands with numbers the hub
 * already gave the commands made after the backup: matched by number alone, the log's entry
 * confirmed the new command, which was never applied (the hub renumbers it instead).
 */
const sameCommand = (e: Entry, p: PendingCommand): boolean =>
  // (Canonical bytes compared as their decimal lists: the shortest code for the bundle.)
  e.name === p.name && (e.args === p.encoded || `${encodeCanonical(e.args)}` === `${encodeCanonical(p.encoded)}`)

/** A CRDT field's merge command (core/crdt/fields.ts): never undone, never re-applied. */
export const isMerge = (p: PendingCommand): boolean => p.cmd.crdt?.field !== undefined

export interface PendingCommand {
  /** Assigned at submit; changed only when the hub says the numbering must resume higher. */
  clientSeq: number
  readonly name: string
  /** Decoded arguments, for local application (decoded from `encoded`, as the authority will). */
  readonly args: unknown
  /** Wire form of the arguments. */
  readonly encoded: unknown
  readonly cmd: CompiledCommand<any>
  journal: Journal | undefined
  /** Set when the command failed against the current view (it is still sent). */
  localRejection: Rejection | undefined
  /** Its outbox record is durable (or there is no storage): it may be sent. */
  persisted: boolean
  /**
   * Renumbered by the hub (a sequence-reset) and not stored under its new number yet: it is
   * not sent till then (sent, then lost in a crash, it would come back under its old number
   * and apply twice). Still `persisted`, under the old one.
   */
  moving?: boolean
  /** It sends a CRDT change that waited to go again: its outbox write takes out that queue record (doc-lane.ts QueuedChange). */
  dequeued?: number
  /** The number it was made under, once the hub renumbered it (sent with it: CommandRequest.madeAs). */
  madeAs?: number
  /** Its arguments in protocol 2's compact form, once made. */
  compact?: Uint8Array
  /** Bytes it takes in a submit (an upper bound), once counted. */
  size?: number
  /** The seq and time of its last local application; `timeRead` if the command looked at `ctx.time`. */
  appliedSeq?: number
  appliedTime?: number
  timeRead?: boolean
}

export interface Desync {
  readonly seq: number
  readonly expected: string
  readonly actual: string
}

export interface IntegrateResult {
  /** Pending commands confirmed by the entries, with their seq. */
  readonly confirmed: ReadonlyArray<{ readonly command: PendingCommand; readonly seq: number }>
  /** Entries applied (seq > the old confirmedSeq), in order. */
  readonly applied: ReadonlyArray<Entry>
  /** An entry did not follow confirmedSeq: the replica must resubscribe. */
  readonly gap: boolean
  readonly desync: Desync | undefined
  /** Canonical bytes of the confirmed state, when asked for. */
  readonly snapshot: Uint8Array | undefined
}

/**
 * Snapshots and checkpoint checks need the confirmed state alone: not worth undoing and
 * redoing a long outbox for. With more pending commands than this, intermediate checkpoints
 * are skipped; the authority publishes one at its head when the document goes quiet, and
 * that one is checked once the outbox has drained, so a desync is still found.
 */
const SNAPSHOT_MAX_PENDING = 256

export class ReplicaState<S> {
  readonly host: JournaledState<S>
  /** Pending commands in clientSeq order. */
  pending: PendingCommand[] = []
  readonly #byClientSeq = new Map<number, PendingCommand>()
  /** Checkpoints announced for seqs not reached yet. */
  readonly #expected = new Map<number, string>()
  /**
   * CRDT fields, if the machine has any (core/crdt/replica.ts). While they are busy (merges the
   * authority has not confirmed), checkpoints are not checked and no local snapshot is written.
   */
  readonly crdt: ReplicaFields | undefined
  readonly #now: () => number

  constructor(
    readonly docId: string,
    readonly machine: Machine<S>,
    readonly clientId: string,
    now: () => number,
    state: S,
    public confirmedSeq: number,
  ) {
    this.#now = now
    this.host = new JournaledState(state)
    this.crdt = machine.crdtRuntime?.replicaFields(this)
  }

  /**
   * The confirmed state alone is worth looking at (a snapshot, a checkpoint): few enough
   * pending commands to undo (SNAPSHOT_MAX_PENDING), and no CRDT field busy.
   */
  #confirmedVisible(): boolean {
    return this.pending.length <= SNAPSHOT_MAX_PENDING && !this.crdt?.busy()
  }

  /** The view: confirmed state with pending commands applied. Read-only for the app. */
  get view(): S {
    return this.host.view()
  }

  /** The pending command with this clientSeq. */
  pendingAt(clientSeq: number): PendingCommand | undefined {
    return this.#byClientSeq.get(clientSeq)
  }

  /** Applies a new local command on top of the view. */
  push(p: PendingCommand): void {
    this.pending.push(p)
    this.#byClientSeq.set(p.clientSeq, p)
    this.#applyPending(p, this.pending.length - 1)
  }

  #applyPending(p: PendingCommand, index: number): void {
    const seq = this.confirmedSeq + index + 1
    const time = this.#now()
    const ctx = makeContext(this.docId, seq, time, this.clientId)
    const journal = this.host.begin()
    const rejection = runApply(this.host, p.cmd, p.name, p.args, ctx)
    this.host.end()
    p.appliedSeq = seq
    p.appliedTime = time
    p.timeRead = ctx.timeRead
    if (rejection !== undefined) this.host.undo(journal)
    p.journal = rejection === undefined ? journal : undefined
    p.localRejection = rejection
  }

  #undoPending(): void {
    for (let i = this.pending.length - 1; i >= 0; i--) {
      const j = this.pending[i]!.journal
      if (j !== undefined) this.host.undo(j)
    }
  }

  #redoPending(): void {
    for (let i = 0; i < this.pending.length; i++) {
      const p = this.pending[i]!
      // A merge stays in its field across a rebase (it commutes with what came in).
      if (isMerge(p) && p.journal !== undefined) continue
      this.#applyPending(p, i)
    }
  }

  /** The authority applied entry `e` exactly as this replica applied its pending command at `index`. */
  #echoes(e: Entry, index: number): boolean {
    const p = this.pending[index]
    return p !== undefined
      && e.clientId === this.clientId
      && e.clientSeq === p.clientSeq
      && p.journal !== undefined
      && (p.appliedSeq === e.seq || isMerge(p))
      && (!p.timeRead || p.appliedTime === e.time)
      && !this.#expected.has(e.seq)
      && (this.sameForm ?? sameCommand)(e, p)
  }

  /** When set, own entries count as echoes only if it says they were logged in the very form applied here (compat mode: CompatSession.sameForm). */
  sameForm: ((e: Entry, p: PendingCommand) => boolean) | undefined

  /**
   * Rebase onto confirmed entries and drop settled commands. `settle` names clientSeqs the
   * authority settled without an entry this replica will see (rejections; commands included
   * in a state transfer).
   */
  integrate(entries: ReadonlyArray<Entry>, settle: ReadonlySet<number> | undefined, wantSnapshot: boolean): IntegrateResult {
    const confirmed: { command: PendingCommand; seq: number }[] = []
    const applied: Entry[] = []
    let i = 0
    // Fast path: own commands coming back in order, already applied on the same base.
    let promoted = 0
    for (; i < entries.length; i++) {
      const e = entries[i]!
      if (e.seq <= this.confirmedSeq) continue
      if (e.seq !== this.confirmedSeq + 1 || !this.#echoes(e, promoted)) break
      const p = this.pending[promoted++]!
      this.#byClientSeq.delete(p.clientSeq)
      this.confirmedSeq = e.seq
      applied.push(e)
      confirmed.push({ command: p, seq: e.seq })
    }
    // One splice for the run (shift() per entry would be quadratic on a long outbox).
    if (promoted > 0) this.pending.splice(0, promoted)
    const snapshotNow = wantSnapshot && this.#confirmedVisible()
    let gap = false
    let desync: Desync | undefined
    let snapshot: Uint8Array | undefined
    if (i < entries.length || (settle !== undefined && settle.size > 0) || snapshotNow) {
      this.#undoPending()
      for (; i < entries.length; i++) {
        const e = entries[i]!
        if (e.seq <= this.confirmedSeq) continue
        if (e.seq !== this.confirmedSeq + 1) {
          gap = true
          break
        }
        applyLogged(this.host, this.docId, this.machine, e)
        this.confirmedSeq = e.seq
        applied.push(e)
        if (e.clientId === this.clientId) {
          const p = this.#byClientSeq.get(e.clientSeq)
          // (Compat mode's entries come converted from the hub's version: compared in the hub's form, compat.ts `upcast`.)
          if (p !== undefined && (this.sameForm !== undefined ? e.foreign !== true : sameCommand(e, p))) {
            this.#byClientSeq.delete(e.clientSeq)
            confirmed.push({ command: p, seq: e.seq })
          }
        }
        const expected = this.#expected.get(e.seq)
        if (expected !== undefined) {
          this.#expected.delete(e.seq)
          if (!this.crdt?.busy()) desync ??= this.#check(e.seq, expected)
        }
        desync ??= this.crdt?.broken(e.seq)
      }
      if (confirmed.length > 0 || (settle !== undefined && settle.size > 0)) {
        // Drop the confirmed and the settled.
        const kept: PendingCommand[] = []
        for (const p of this.pending) {
          if (this.#byClientSeq.get(p.clientSeq) !== p || settle?.has(p.clientSeq) === true) this.#byClientSeq.delete(p.clientSeq)
          else kept.push(p)
        }
        this.pending = kept
      }
      if (snapshotNow) snapshot = encodeCanonical(this.crdt?.snapshot() ?? this.host.root)
      this.#redoPending()
    }
    return { confirmed, applied, gap, desync, snapshot }
  }

  /**
   * Renumbers pending commands so that none is below `from` (the hub said this client's
   * numbering must resume there), or with `down`, numbers them on from `from` downwards (the
   * hub expects `from` and no pending command holds the numbers between: they were taken by
   * commands that died unstored). Returns the moves, oldest first, or nothing to do.
   */
  renumber(from: number, down: boolean, answered: ReadonlyMap<PendingCommand, unknown>): Array<{ readonly command: PendingCommand; readonly from: number; readonly to: number }> {
    // Pending commands are in clientSeq order. Those the hub has answered (their entries on
    // their way, `answered`) keep their numbers: the hub renumbers only what follows them.
    const start = down ? ((this.pending[0]?.clientSeq ?? 0) > from ? 0 : -1) : this.pending.findIndex((p) => p.clientSeq < from && !answered.has(p))
    if (start < 0) return []
    const moves: Array<{ command: PendingCommand; from: number; to: number }> = []
    let next = from
    for (let i = start; i < this.pending.length; i++) {
      const p = this.pending[i]!
      const to = down ? next : Math.max(next, p.clientSeq)
      if (to !== p.clientSeq) moves.push({ command: p, from: p.clientSeq, to })
      next = to + 1
    }
    for (const m of moves) this.#byClientSeq.delete(m.from)
    for (const m of moves) {
      // The number it was made under, sent with it (CommandRequest.madeAs). Not for a move
      // down: the store numbers new commands on from there, under numbers it made others under.
      if (!down) m.command.madeAs ??= m.from
      m.command.clientSeq = m.to
      this.#byClientSeq.set(m.to, m.command)
    }
    return moves
  }

  /**
   * A checkpoint from the authority. Checked now if the replica is exactly at `seq` (pending
   * writes are undone around the hash), kept for later if it is behind, ignored if past.
   */
  checkpoint(seq: number, hash: string): Desync | undefined {
    if (!this.#confirmedVisible()) return undefined
    if (seq > this.confirmedSeq) {
      // The 64 nearest: far-off ones (a hostile hub's, sent once) must not crowd out the
      // checkpoints of entries on their way, which ride just before them.
      const far = this.#expected.size < 64 ? undefined : Math.max(...this.#expected.keys())
      if (far !== undefined && seq >= far) return undefined
      this.#expected.delete(far!)
      this.#expected.set(seq, hash)
      return undefined
    }
    if (seq < this.confirmedSeq) return undefined
    // Known already, the hash is compared without undoing and redoing the outbox.
    return this.#check(seq, hash, this.confirmedHash())
  }

  /** `actual`: by default the confirmed state's hash with pending writes undone by the caller. */
  #check(seq: number, expected: string, actual = this.#knownHash() ?? this.#hashNow()): Desync | undefined {
    return actual === expected ? undefined : { seq, expected, actual }
  }

  /**
   * Hashes the confirmed state (pending writes undone by the caller) and keeps the hash for
   * its seq: each of a hub's checkpoints (one every few bytes from a hostile one) would encode
   * and hash the whole state again. With CRDT fields, kept only while they hold nothing
   * unconfirmed (their pending merges are not undone under the confirmed state), and for as
   * long as no field changes (`changes`).
   */
  #hashNow(): string {
    const hash = hashState(this.host.root)
    if (!this.crdt?.busy()) this.#hashed = { seq: this.confirmedSeq, hash, changes: this.crdt?.changes }
    return hash
  }

  /**
   * The confirmed state's hash at a seq: the verified snapshot installed last, or the state
   * hashed last (#hashNow). While nothing is confirmed since, the hub's checkpoint at that seq
   * is checked without encoding and hashing the whole state again (for a 100 MB state, a copy
   * of it and over a second).
   */
  #hashed: { readonly seq: number; readonly hash: string; readonly changes?: number } | undefined

  #knownHash(): string | undefined {
    const h = this.#hashed
    return h !== undefined && h.seq === this.confirmedSeq && h.changes === this.crdt?.changes ? h.hash : undefined
  }

  /** Hash of the confirmed state. */
  confirmedHash(): string {
    const known = this.#knownHash()
    if (known !== undefined) return known
    this.#undoPending()
    const h = this.#hashNow()
    this.#redoPending()
    return h
  }

  /** Replaces the confirmed state with the authority's (after a desync); pending stays on top. */
  /** `hash`: the bytes' verified hash (a snapshot stream's), remembered for the checkpoint at `seq`. */
  /**
   * Throws (a CanonError) on bytes that are not a state of this machine, and then nothing has
   * changed: the caller discards them and asks again.
   */
  reset(seq: number, state: Uint8Array, hash?: string): void {
    const decoded = decodeCanonical(state) as S
    // CRDT fields come with the state: reload them, then merge what is local on top again.
    const fields = this.crdt?.take(decoded)
    this.#undoPending()
    const [root, before, hashed] = [this.host.root, this.confirmedSeq, this.#hashed]
    this.host.root = decoded
    this.confirmedSeq = seq
    // Strict canonical decoding: the decoded state encodes back to exactly these bytes. With
    // CRDT fields the bytes hold more than the state the checkpoints hash: no shortcut.
    this.#hashed = hash !== undefined && this.crdt === undefined ? { seq, hash } : undefined
    try {
      // Loading the fields throws before replacing any (a field's bytes that do not load).
      this.crdt?.reset(fields)
    } catch (e) {
      this.host.root = root
      this.confirmedSeq = before
      this.#hashed = hashed
      this.#redoPending()
      throw e
    }
    for (const s of [...this.#expected.keys()]) if (s <= seq) this.#expected.delete(s)
    this.#redoPending()
  }
}
