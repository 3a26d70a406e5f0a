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
 */
import { applyLogged } from "../apply.js"
import { decodeCanonical, encodeCanonical } from "../canonical.js"
import type { Entry } from "../entry.js"
import type { Rejection } from "../errors.js"
import { hashState } from "../hash.js"
import { JournaledState, type Journal } from "../journal.js"
import { makeContext, runApply, type CompiledCommand, type Machine } from "../machine.js"

export interface PendingCommand {
  readonly clientSeq: number
  readonly name: string
  /** Decoded arguments, for local application. */
  readonly args: unknown
  /** Wire form of the arguments. */
  readonly encoded: unknown
  readonly cmd: CompiledCommand<any>
  journal: Journal | undefined
  /** Set when the command failed against the current view (it is still sent). */
  localRejection: Rejection | undefined
  /** Its outbox record is durable (or there is no storage): it may be sent. */
  persisted: boolean
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

export class ReplicaState<S> {
  readonly host: JournaledState<S>
  pending: PendingCommand[] = []
  /** Checkpoints announced for seqs not reached yet. */
  private readonly expected = new Map<number, string>()

  constructor(
    readonly docId: string,
    readonly machine: Machine<S>,
    readonly clientId: string,
    private readonly now: () => number,
    state: S,
    public confirmedSeq: number,
  ) {
    this.host = new JournaledState(state)
  }

  /** The view: confirmed state with pending commands applied. Read-only for the app. */
  get view(): S {
    return this.host.view()
  }

  /** Applies a new local command on top of the view. */
  push(p: PendingCommand): void {
    this.pending.push(p)
    this.applyPending(p, this.pending.length - 1)
  }

  private applyPending(p: PendingCommand, index: number): void {
    const ctx = makeContext(this.docId, this.confirmedSeq + index + 1, this.now(), this.clientId)
    const journal = this.host.begin()
    const rejection = runApply(this.host, p.cmd, p.name, p.args, ctx)
    this.host.end()
    if (rejection !== undefined) {
      this.host.undo(journal)
      p.journal = undefined
      p.localRejection = rejection
    } else {
      p.journal = journal
      p.localRejection = undefined
    }
  }

  private undoPending(): void {
    for (let i = this.pending.length - 1; i >= 0; i--) {
      const j = this.pending[i]!.journal
      if (j !== undefined) this.host.undo(j)
    }
  }

  private redoPending(): void {
    for (let i = 0; i < this.pending.length; i++) this.applyPending(this.pending[i]!, i)
  }

  /**
   * Rebase onto confirmed entries and drop settled commands. `settle` names clientSeqs the
   * authority settled without an entry this replica will see (rejections; commands included
   * in a state transfer).
   */
  integrate(entries: ReadonlyArray<Entry>, settle: ReadonlySet<number> | undefined, wantSnapshot: boolean): IntegrateResult {
    this.undoPending()
    const confirmed: { command: PendingCommand; seq: number }[] = []
    const applied: Entry[] = []
    let gap = false
    // Own entries come in clientSeq order; a map keeps a long backlog linear, not quadratic.
    let byClientSeq: Map<number, PendingCommand> | undefined
    let desync: Desync | undefined
    for (const e of entries) {
      if (e.seq <= this.confirmedSeq) continue
      if (e.seq !== this.confirmedSeq + 1) {
        gap = true
        break
      }
      applyLogged(this.host, this.docId, this.machine, e)
      this.confirmedSeq = e.seq
      applied.push(e)
      if (e.clientId === this.clientId) {
        byClientSeq ??= new Map(this.pending.map((p) => [p.clientSeq, p]))
        const p = byClientSeq.get(e.clientSeq)
        if (p !== undefined) {
          byClientSeq.delete(e.clientSeq)
          confirmed.push({ command: p, seq: e.seq })
        }
      }
      const expected = this.expected.get(e.seq)
      if (expected !== undefined) {
        this.expected.delete(e.seq)
        desync ??= this.check(e.seq, expected)
      }
    }
    if (confirmed.length > 0) {
      const done = new Set(confirmed.map((c) => c.command))
      this.pending = this.pending.filter((p) => !done.has(p))
    }
    if (settle !== undefined && settle.size > 0) this.pending = this.pending.filter((p) => !settle.has(p.clientSeq))
    const snapshot = wantSnapshot ? encodeCanonical(this.host.root) : undefined
    this.redoPending()
    return { confirmed, applied, gap, desync, snapshot }
  }

  /**
   * A checkpoint from the authority. Checked now if the replica is exactly at `seq` (pending
   * writes are undone around the hash), kept for later if it is behind, ignored if past.
   */
  checkpoint(seq: number, hash: string): Desync | undefined {
    if (seq > this.confirmedSeq) {
      if (this.expected.size < 64) this.expected.set(seq, hash)
      return undefined
    }
    if (seq < this.confirmedSeq) return undefined
    this.undoPending()
    const desync = this.check(seq, hash)
    this.redoPending()
    return desync
  }

  private check(seq: number, expected: string): Desync | undefined {
    const actual = hashState(this.host.root)
    return actual === expected ? undefined : { seq, expected, actual }
  }

  /** Hash of the confirmed state. */
  confirmedHash(): string {
    this.undoPending()
    const h = hashState(this.host.root)
    this.redoPending()
    return h
  }

  /** Replaces the confirmed state with the authority's (after a desync); pending stays on top. */
  reset(seq: number, state: Uint8Array): void {
    const decoded = decodeCanonical(state) as S
    this.undoPending()
    this.host.root = decoded
    this.confirmedSeq = seq
    for (const s of [...this.expected.keys()]) if (s <= seq) this.expected.delete(s)
    this.redoPending()
  }
}
