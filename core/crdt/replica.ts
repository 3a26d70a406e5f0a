/**
 * What a replica (core/replica) does for its CRDT fields, handed to it by the fields runtime
 * (`machine.crdtRuntime.replicaFields`): a replica of a machine without fields carries none of
 * it. ReplicaState asks it whether the fields are busy or broken, for the snapshot value, and
 * to reload the fields with the authority's state; Doc connects its outbox and hands out the
 * fields' handles.
 */
import { canonError, type Rejection } from "../errors.js"
import { crdtReason } from "./engine.js"
import { isMerge, type Desync, type PendingCommand } from "../replica/replica-state.js"
import type { QueuedChange } from "../replica/doc-lane.js"
import { crdtCommandName, fieldsOf, snapshotValue, takeEncodedFields, type CrdtDecls, type CrdtFields } from "./fields.js"
import { CrdtOutbox, crdtHandles, fieldBudget, type CrdtOutboxPort } from "./outbox.js"

/** The replica (a ReplicaState) whose fields these are. */
export interface FieldsReplica {
  readonly docId: string
  readonly clientId: string
  readonly machine: { readonly crdt?: CrdtDecls }
  readonly host: { readonly root: unknown }
  /** Pending commands in clientSeq order. */
  readonly pending: ReadonlyArray<PendingCommand>
}

/** What Doc gives the outbox: the fields' local changes become its merge commands. */
export interface ReplicaFieldsPort extends Omit<CrdtOutboxPort, "unsendable" | "pendingNames"> {
  /** A local change cannot be sent (Doc's `error` event). */
  error(event: { readonly code: string; readonly message: string }): void
  /** Whether the authority's state was asked for to replace the confirmed one (provisional, or desynced). */
  replacing(): boolean
  /** Changes that were waiting to go again when the document was last open (the store's queue records). */
  readonly queued?: ReadonlyArray<QueuedChange>
}

export class ReplicaFields {
  /** Local CRDT changes not yet in a pending command (coalesced by the outbox), by field. */
  readonly #unsent = new Map<string, unknown[]>()
  #outbox: CrdtOutbox | undefined
  #port: ReplicaFieldsPort | undefined
  /** Merges of the hub's entries the fields refused, told to the app at the next kick (not in the middle of integrating). */
  readonly #refused: Array<{ readonly code: string; readonly message: string }> = []
  #handles: Record<string, unknown> | undefined
  /** Live, holding confirmed and pending merges alike. */
  readonly #fields: CrdtFields

  readonly #replica: FieldsReplica
  /** Tombstones out (see `refused`). */
  readonly #holes: Hole[] = []
  /** Changes sent again once (by their args): refused again, they wait in `#queue`. */
  readonly #resent = new WeakSet<object>()
  /** How many refusals deep each tombstone this replica made is (see `refused`). */
  readonly #tombstoneLevel = new WeakMap<object, number>()
  /**
   * Changes to send again one at a time, and the one in flight. Each is stored while it waits
   * (Doc stores `takeQueued` with the refusal; the outbox write of the command that sends it
   * takes the record out), so closing or a crash loses none.
   */
  readonly #queue: QueuedChange[] = []
  #waiting: PendingCommand | undefined
  /** Queued since the last `takeQueued`: not stored yet. */
  readonly #unstoredQueue = new Map<number, QueuedChange>()
  #nextQueueKey = 0

  constructor(replica: FieldsReplica) {
    this.#replica = replica
    this.#fields = fieldsOf(replica.machine.crdt!, replica.host)
    // The replica runs its own pending merges through the same check as the hub's entries.
    const own = (args: unknown) => replica.pending.some((p) => p.args === args)
    this.#fields.isLocal = own
    // What the hub ordered from other writers must merge whole here (ValidateOptions `foreign`);
    // this replica's own (a pending merge, or an unsent change `reset` merges again) may wait
    // for a tombstone, pending in its field.
    this.#fields.isOwn = (args) => own(args) || [...this.#unsent.values()].some((u) => u.includes(args))
    this.#fields.onRefusedMerge((field, rejection, args) => {
      // The confirmed state is about to be replaced (an upgraded replica's, which followed an
      // older version's view of the fields): merges it cannot take are expected, not the hub's fault.
      if (!own(args) && this.#port?.replacing() === true) return
      const m = /^(crdt-[a-z-]+): ([^]*)$/.exec(rejection.message)
      this.#refused.push({
        code: m?.[1] ?? rejection.code,
        message: own(args)
          ? `A change made here to field "${field}" of "${replica.docId}" is one the field does not take, so the hub refuses it and it is taken out here (make it in smaller steps if it is too large): ${m?.[2] ?? rejection.message}`
          : `A merge into field "${field}" of "${replica.docId}" that the hub ordered was refused; the field keeps what it had (a hub sending it is broken or hostile): ${m?.[2] ?? rejection.message}`,
      })
    })
  }

  /**
   * A merge of this replica that the hub refused is still in its field (a CRDT change cannot
   * be taken out, and its tombstone holds the same clocks, which Yjs skips where it has them):
   * the fields differ from the authority's until its state is installed (`reset`), which Doc
   * asked for with the refusal (and asks for again on a new connection).
   */
  #stale = false

  /** Whether the fields hold a refused merge of this replica, until the authority's state is installed. */
  get stale(): boolean {
    return this.#stale
  }

  /**
   * The fields hold merges the authority has not confirmed (pending merge commands, local
   * changes not yet submitted) or refused ones not reloaded yet
   * (`stale`): their confirmed-only content is unknown, or known to differ, so checkpoints are
   * not checked and no local snapshot is written until they settle.
   */
  busy(): boolean {
    if (this.#stale) return true
    for (const u of this.#unsent.values()) if (u.length > 0) return true
    return this.#replica.pending.some(isMerge)
  }

  /** Grows whenever a field may have changed (see CrdtFields.changes). */
  get changes(): number {
    return this.#fields.changes
  }

  /** A field broke while merging an incoming entry (at `seq`): a resync reloads it. */
  broken(seq: number): Desync | undefined {
    const f = this.#fields.brokenField
    return f === undefined ? undefined : { seq, expected: "", actual: f }
  }

  /** The value whose canonical bytes are a snapshot of the replica's (confirmed) state. */
  snapshot(): unknown {
    return snapshotValue(this.#replica.host.root, this.#fields)
  }

  /**
   * The fields' bytes, taken out of the authority's state freshly decoded (`decoded`, about to
   * be installed). Throws `decode-failed` if that is not a state with fields.
   */
  take(decoded: unknown): unknown {
    if (typeof decoded !== "object" || decoded === null || Array.isArray(decoded)) {
      throw canonError("decode-failed", "The state of a machine with CRDT fields is an object.")
    }
    return takeEncodedFields(decoded)
  }

  /**
   * The authority's state is installed: load the fields from its bytes (`take`), and mark
   * pending merges to be merged again on top; unsent local changes are merged here.
   */
  reset(encoded: unknown): void {
    const replica = this.#replica
    const fields = this.#fields
    fields.load(encoded)
    this.#stale = false
    fieldsOf(fields.decls, replica.host)
    for (const p of replica.pending) if (isMerge(p)) p.journal = undefined
    for (const [field, updates] of this.#unsent) for (const u of updates) fields.merge(field, u, replica.clientId)
  }

  /** Local changes go out through Doc from now on (as merge commands, see outbox.ts). */
  connect(port: ReplicaFieldsPort): this {
    const { docId } = this.#replica
    this.#port = port
    // Stored while waiting when the document was last open: they go, one at a time, once the
    // merges restored to the outbox are answered (the one that went before them is among
    // those, and a tombstone they need may be too).
    for (const q of port.queued ?? []) {
      this.#queue.push(q)
      this.#nextQueueKey = Math.max(this.#nextQueueKey, q.key + 1)
      if (isObject(q.update)) this.#resent.add(q.update)
    }
    if (this.#queue.length > 0) this.#waiting = this.#replica.pending.filter(isMerge).at(-1)
    this.#outbox = new CrdtOutbox(this.#fields, this.#unsent, {
      ...port,
      unsendable: (field, e) => port.error({ code: e.code, message: `A change to field "${field}" of "${docId}" cannot be sent, so only this replica has it: ${e.message}` }),
      pendingNames: () => this.#replica.pending.map((p) => p.name),
    })
    return this
  }

  /** Looks at the local changes soon (after a change, a confirmation, a connection change). */
  kick(): void {
    if (this.#port !== undefined) for (const e of this.#refused.splice(0)) this.#port.error(e)
    if (this.#queue.length > 0) this.#next()
    this.#outbox?.kick()
  }

  /**
   * Local changes not yet in a merge command (until the outbox's microtask, or, online, coalesced
   * behind a merge of their field in flight), as Doc lists them after its pending commands: one
   * command to come per field (a burst past the coalescing bounds becomes several when it goes),
   * not numbered yet (clientSeq -1) and not stored. An edit is pending from the moment it returns.
   */
  get pending(): Array<{ readonly clientSeq: number; readonly name: string; readonly stored: boolean }> {
    const out = []
    for (const [field, u] of this.#unsent) if (u.length > 0) out.push({ clientSeq: -1, name: crdtCommandName(field), stored: false })
    return out
  }

  /**
   * Makes every buffered change a merge command, coalescing or not (`doc.whenStored`), after a
   * microtask: called from a handle's own change callback (Yjs observe, Automerge onChange), the
   * edit that called it reaches the buffer only after the callback returns.
   */
  async flush(): Promise<void> {
    await undefined
    this.#outbox?.flush(true)
  }

  /** Sends what is buffered and stops listening (Doc closed). */
  close(): void {
    this.#outbox?.close()
  }

  /** `doc.crdt`: each field's live handle, by name. */
  get handles(): Record<string, unknown> {
    return (this.#handles ??= crdtHandles(this.#fields))
  }

  /**
   * The hub refused these commands. A refused merge is already in its field and cannot be
   * taken out: true, and the replica reloads the fields from the authority's state (pending
   * merges are merged again on top). What its writer did next needs what it wrote, and the
   * hub refused that too (`crdt-missing-deps`), in the same pass over the outbox: so the
   * refused change's tombstone goes out (engine.ts `tombstone`: its place in the writer's
   * history, holding nothing), and then each change refused for needing it, again, as it was.
   * Only what the hub itself refused is lost. A change goes again only if it was sent before
   * the tombstone (after it, the hub had the tombstone), and a tombstone is never tombstoned.
   * A change refused again after going again (the document still full) waits in a queue and
   * goes once the one before it is answered, so N changes behind refusals cost O(N) submits,
   * not one round of all the rest per refusal. One refused for needing what nothing held here
   * carries goes again once: the hub took what it needs by then (a merge of this replica it
   * answered in the same batch, which arrives first). An engine without tombstones (Automerge) makes
   * the later changes again instead (engine.ts `remake`), as new commands, and the later ones
   * are let go as the hub refuses them.
   */
  refused(rejected: Iterable<readonly [PendingCommand, Rejection]>, covered?: Set<PendingCommand>): boolean {
    const merges = [...rejected].filter(([p]) => isMerge(p)).sort((a, b) => a[0].clientSeq - b[0].clientSeq)
    if (merges.length === 0) return false
    this.#stale = true
    const holes = this.#holes
    // A hole is closed once everything sent before its tombstone is answered.
    let oldest = merges[0]![0].clientSeq
    for (const p of this.#replica.pending) oldest = Math.min(oldest, p.clientSeq)
    for (let i = holes.length - 1; i >= 0; i--) if (seqOf(holes[i]!) < oldest) holes.splice(i, 1)
    const again: Array<readonly [string, unknown, Hole?]> = []
    for (const [p, rejection] of merges) {
      const field = p.cmd.crdt!.field!
      const f = this.#fields.field(field)
      const reason = crdtReason(rejection)
      if (reason === "crdt-missing-deps") {
        let hole = holes.find((h) => h.field === field && p.clientSeq < seqOf(h) && f.dependsOn?.(p.args, h.clocks))
        if (hole === undefined && f.tombstone !== undefined) {
          // Holes live in memory: after a restart, a change sent before a tombstone may be
          // answered with nothing to match. What it needs was stored with the refusal and is
          // still in the outbox, after it (the tombstone, or a change sent again after it):
          // it goes again after that one.
          const after = this.#replica.pending.find((q) => q.clientSeq > p.clientSeq && q.cmd.crdt?.field === field && f.dependsOn?.(p.args, q.args))
          if (after !== undefined) holes.push((hole = { field, clocks: [after.args], tombstone: after, remade: false }))
        }
        if (hole === undefined && f.tombstone !== undefined && this.#needsHeld(field, p.args, again)) {
          // Sent after every tombstone it could need, and refused all the same: what it needs
          // is held here, to go again (queued, in flight from the queue, or in this pass), refused
          // again for needing something still held itself. It waits in the queue behind it.
          covered?.add(p)
          if (isObject(p.args)) this.#resent.add(p.args)
          this.#enqueue(field, p.args)
          continue
        }
        if (hole === undefined && f.tombstone !== undefined && isObject(p.args) && !this.#resent.has(p.args)) {
          // Nothing held here carries what it needs, so the hub has it by now or never will: a
          // merge of this replica answered in the same hub batch after it (entries come before
          // results, so it is no longer pending when this refusal is read), or one confirmed
          // before a restart. It goes again once, as it was; refused again, it is lost.
          covered?.add(p)
          again.push([field, p.args])
          continue
        }
        if (hole === undefined) continue
        // What it carries still lands: not a refusal to tell the app of.
        covered?.add(p)
        if (hole.remade) continue
        // What needs this one was refused with it too, whichever writer made it (a reopen makes
        // a new one): its clocks (a tombstone, not the content) join the hole's.
        const t = f.tombstone?.(p.args)
        if (t !== undefined) hole.clocks.push(t)
        if (isObject(p.args) && this.#resent.has(p.args)) this.#enqueue(field, p.args)
        else again.push([field, p.args])
      } else if (f.tombstone !== undefined) {
        // As deleted items first, whatever the refusal: what the writer typed next to the
        // refused change lands. A refused tombstone (the field is full of structs, say) is
        // tombstoned again in its last form (Yjs: GC ranges, which take what is next to them).
        // Which form this is: a change (0), its tombstone (1), the tombstone of that, which
        // keeps what the writer's changes still to land are placed against (2). Refused again,
        // that one goes as GC ranges only (no dependents), whose own refusal ends the chain
        // (the same bytes again, refused for good, would be sent for ever).
        const level = isObject(p.args) ? this.#tombstoneLevel.get(p.args) ?? 0 : 0
        const dependents: unknown[] = []
        if (level === 1) {
          for (const q of this.#replica.pending) if (q.clientSeq > p.clientSeq && q.cmd.crdt?.field === field) dependents.push(q.args)
          for (const q of this.#queue) if (q.field === field) dependents.push(q.update)
          for (const u of this.#unsent.get(field) ?? []) dependents.push(u)
          for (const [g] of merges) if (g.clientSeq > p.clientSeq && g.cmd.crdt?.field === field) dependents.push(g.args)
        }
        const t = f.tombstone(p.args, dependents)
        if (isObject(t)) this.#tombstoneLevel.set(t, level + 1)
        if (t !== undefined) {
          const hole: Hole = { field, clocks: [t], tombstone: undefined, remade: false }
          holes.push(hole)
          again.push([field, t, hole])
        }
      } else if (f.remake !== undefined) {
        // No tombstone possible: what came after is made again without it, as new changes in
        // place of the unsent ones it covered. The sent ones it covered the hub refuses (they
        // need the refused one), and they are let go.
        let remade: ReturnType<NonNullable<typeof f.remake>>
        try {
          remade = f.remake(p.args, fieldBudget(f, this.#port?.maxCommandBytes ?? Infinity))
        } catch (e) {
          // The rejections must still be told, and the field is reloaded (the caller's fetch).
          this.#port?.error({ code: "crdt-failed", message: `The changes made to field "${field}" of "${this.#replica.docId}" after a change the hub refused could not be made again, so they are lost: ${e instanceof Error ? e.message : String(e)}` })
          continue
        }
        if (remade === undefined) continue
        const { updates, covered } = remade
        const unsent = this.#unsent.get(field)
        if (unsent !== undefined) this.#unsent.set(field, unsent.filter((u) => !f.dependsOn?.(u, covered)))
        // Each as its own command, as the runs were made (a large one alone, so that small edits
        // are not refused with a paste that no longer fits). What was sent before the first one
        // and needed the refused change is covered by them.
        const hole: Hole = { field, clocks: covered, tombstone: undefined, remade: true }
        if (updates.length > 0) holes.push(hole)
        updates.forEach((u, i) => again.push([field, u, i === 0 ? hole : undefined]))
      }
    }
    // Before the rejections are told: an app closing the document on one must not lose these.
    for (const [field, update, hole] of again) {
      const sent = this.#submit(field, update)
      // Not queued (update-required: read-only until the next connection or the updated app's
      // open): it waits in the queue, stored with this refusal. Dropped, so was what needs it.
      if (sent === undefined) this.#enqueue(field, update)
      if (hole !== undefined) hole.tombstone = sent ?? null
      else if (isObject(update)) this.#resent.add(update)
    }
    this.#next()
    return true
  }

  /**
   * Whether `update` (a change of `field` refused for missing dependencies) needs a change held
   * here to go again: queued, the queued one in flight, or going again in this pass (`again`).
   */
  #needsHeld(field: string, update: unknown, again: ReadonlyArray<readonly [string, unknown, Hole?]>): boolean {
    const f = this.#fields.field(field)
    const held: unknown[] = []
    for (const q of this.#queue) if (q.field === field) held.push(q.update)
    const w = this.#waiting
    if (w !== undefined && w.cmd.crdt?.field === field && this.#replica.pending.includes(w)) held.push(w.args)
    for (const [g, u, hole] of again) if (g === field && hole === undefined) held.push(u)
    return held.length > 0 && f.dependsOn?.(update, held) === true
  }

  /** Queues a change to go again once the one before it is answered (stored with the refusal's write). */
  #enqueue(field: string, update: unknown): void {
    const q: QueuedChange = { key: this.#nextQueueKey++, field, update }
    this.#queue.push(q)
    this.#unstoredQueue.set(q.key, q)
  }

  /** Submits a change again: its pending command (undefined if it could not be queued: see `refused`, `#next`). */
  #submit(field: string, update: unknown): PendingCommand | undefined {
    const port = this.#port
    if (port === undefined) return undefined
    const fail = (e: { code: string; message: string }) => port.error({ code: e.code, message: `A change to field "${field}" of "${this.#replica.docId}" refused by the hub could not be sent again: ${e.message}` })
    try {
      const receipt = port.submit(crdtCommandName(field), update)
      if (receipt.clientSeq === -1) {
        receipt.catch((e: { code: string; message: string }) => {
          // Waits in the queue (`refused`, `#next`) till it can go. Refused for good (too large,
          // say), it is let go and told once (not at every kick), and what waits behind it goes.
          const q = this.#queue.find((q) => q.update === update)
          if (e.code === "update-required" || q === undefined) return
          this.#queue.splice(this.#queue.indexOf(q), 1)
          this.#unstoredQueue.delete(q.key)
          fail(e)
          this.#next()
        })
      }
      // The command object, not its number: a renumbering (sequence-reset) changes the number in place.
      const last = this.#replica.pending.at(-1)
      return last !== undefined && last.clientSeq === receipt.clientSeq ? last : undefined
    } catch (e) {
      fail(e as { code: string; message: string })
      return undefined
    }
  }

  /** The changes queued since the last call, for Doc to store with the refusal that queued them. */
  takeQueued(): QueuedChange[] {
    const queued = [...this.#unstoredQueue.values()]
    this.#unstoredQueue.clear()
    return queued
  }

  /** The next queued change goes once the one before it is answered. */
  #next(): void {
    const waiting = this.#waiting
    if (waiting !== undefined && this.#replica.pending.includes(waiting)) return
    this.#waiting = undefined
    const head = this.#queue[0]
    if (head === undefined) return
    const sent = (this.#waiting = this.#submit(head.field, head.update))
    // Not queued (update-required): it stays first, stored, and goes at a later kick.
    if (sent === undefined) return
    this.#queue.shift()
    // Its outbox write takes its queue record out (unless the record was never handed over).
    if (!this.#unstoredQueue.delete(head.key)) sent.dequeued = head.key
  }
}

const isObject = (x: unknown): x is object => typeof x === "object" && x !== null

/** A refused local change whose tombstone is out, until everything sent before the tombstone is answered. */
type Hole = {
  readonly field: string
  /** The tombstone's command (a remade hole's first remade change): undefined until submitted, null if it could not be. */
  tombstone: PendingCommand | null | undefined
} & (
  /** What `dependsOn` reads: the tombstone (the refused change's clocks, without its content) and the tombstones of the changes refused for needing it. */
  | { readonly remade: false; readonly clocks: unknown[] }
  /** What came after the refused change was made again (`remake`), and `clocks` is what it covered: what needed it is not sent again. */
  | { readonly remade: true; readonly clocks: unknown }
)

/** The tombstone's clientSeq: what was sent before it needed it (Infinity while it waits to go, -1 if it never will). */
const seqOf = (h: Hole): number => (h.tombstone === undefined ? Infinity : h.tombstone === null ? -1 : h.tombstone.clientSeq)

export const replicaFields = (replica: FieldsReplica): ReplicaFields => new ReplicaFields(replica)
