/**
 * A replica's local CRDT changes on their way to the outbox. The app edits a field's handle
 * (a Y.Text, an Automerge handle); the engine reports each change as an update, which waits
 * here and becomes the field's merge command. While a merge command of the same field is
 * unconfirmed on a live connection, further changes are coalesced into one update (keystrokes
 * typed during a round trip cost one command); offline, each change goes to the durable outbox
 * at once, so nothing typed is lost with the process.
 */
import type { CrdtDecls, CrdtFields } from "./fields.js"
import { crdtCommandName } from "./fields.js"
import type { CrdtField, HandleOf } from "./engine.js"
import type { Machine } from "../machine.js"
import { consecutiveRuns } from "../runs.js"

/** At most this many local updates are merged into one command. */
const MAX_COALESCED = 256
/**
 * At most this many bytes of local updates are merged into one command: changes that each fit
 * in a command must not add up to one that does not (the command and update limits default to
 * 256 KiB; an update over them is refused before it is sent, and the changes in it are lost).
 * Less when the app sets a smaller command limit: half of it (coalescedBudget).
 */
const MAX_COALESCED_BYTES = 64 << 10

/**
 * The coalescing budget under a command limit: half of it, at most MAX_COALESCED_BYTES. Half
 * leaves room for the command's encoding around the updates (Automerge's changes are framed
 * one by one), so a run of changes that each fit never adds up to one that does not.
 */
export const coalescedBudget = (maxCommandBytes: number): number => Math.max(1, Math.min(MAX_COALESCED_BYTES, Math.floor(maxCommandBytes / 2)))

/**
 * How many bytes of a field's local updates may go as one: the coalescing budget under the
 * command limit, and the field's own update limit (changes that each fit it must not add up
 * to one that does not).
 */
export const fieldBudget = (field: CrdtField, maxCommandBytes: number): number => Math.min(coalescedBudget(maxCommandBytes), field.maxUpdateBytes ?? Infinity)

/** Bytes of a local update (Yjs: the update; Automerge: its changes). */
const sizeOf = (u: unknown): number => (u instanceof Uint8Array ? u.length : Array.isArray(u) ? u.reduce((n: number, x: unknown) => n + sizeOf(x), 0) : 0)

export interface CrdtOutboxPort {
  /** Submits a merge command (as `doc.submit`); a receipt with clientSeq -1 was refused before queuing. */
  submit(name: string, args: unknown): Promise<unknown> & { readonly clientSeq: number }
  /**
   * A change of `field` was refused before it was queued (over the command limit): it stays in
   * this replica's field only, and the app must hear of it.
   */
  unsendable(field: string, refusal: { readonly code: string; readonly message: string }): void
  /** A connection is up. */
  online(): boolean
  /** Names of the pending (unconfirmed) commands. */
  pendingNames(): Iterable<string>
  /** The replica's command limit (DocOptions.maxCommandBytes): coalesced runs stay well under it. */
  readonly maxCommandBytes: number
}

export class CrdtOutbox {
  private scheduled = false
  private readonly stop: () => void

  constructor(
    private readonly fields: CrdtFields,
    /** The replica's buffer (ReplicaFields, replica.ts): re-merged there if the fields are reloaded. */
    private readonly unsent: Map<string, unknown[]>,
    private readonly port: CrdtOutboxPort,
  ) {
    this.stop = fields.onLocalChange((field, update) => {
      let list = unsent.get(field)
      if (list === undefined) unsent.set(field, (list = []))
      list.push(update)
      this.kick()
    })
  }

  /** Looks at the buffer soon (after a change, a confirmation, a connection change). */
  kick(): void {
    if (this.scheduled) return
    this.scheduled = true
    // After the app's transaction: the handle's own event is not the place to submit from.
    queueMicrotask(() => this.flush(false))
  }

  /**
   * Submits what is buffered; unless `all`, a field with a merge in flight keeps coalescing
   * (up to the bounds). What is buffered goes as one command per run within the bounds.
   */
  flush(all: boolean): void {
    this.scheduled = false
    let busy: Set<string> | undefined
    for (const [field, list] of this.unsent) {
      if (list.length === 0) continue
      const f = this.fields.field(field)
      const budget = fieldBudget(f, this.port.maxCommandBytes)
      if (!all && list.length < MAX_COALESCED && sizeOf(list) < budget && this.port.online()) {
        busy ??= new Set(this.port.pendingNames())
        if (busy.has(crdtCommandName(field))) continue
      }
      // Consecutive runs within the coalescing bounds (an update over them alone).
      const updates = consecutiveRuns(list, sizeOf, budget, MAX_COALESCED).map((run) => f.coalesce(run))
      this.unsent.set(field, [])
      for (const update of updates) {
        const receipt = this.port.submit(crdtCommandName(field), update)
        // The hub's refusals of queued merges come as `rejected`, as for any command.
        if (receipt.clientSeq === -1) receipt.catch((e: { code: string; message: string }) => this.port.unsendable(field, e))
      }
    }
  }

  close(): void {
    this.flush(true)
    this.stop()
  }
}

/** `doc.crdt`: each field's live handle, by name (a getter: a reloaded field has a new handle). */
export type CrdtHandles<M> = M extends Machine<any, any, infer C>
  ? C extends CrdtDecls ? { readonly [K in keyof C]: HandleOf<C[K]> } : {}
  : {}

export const crdtHandles = (fields: CrdtFields): Record<string, unknown> => {
  const out: Record<string, unknown> = {}
  for (const name of fields.fieldNames) Object.defineProperty(out, name, { get: () => fields.field(name).handle, enumerable: true })
  return Object.freeze(out)
}
