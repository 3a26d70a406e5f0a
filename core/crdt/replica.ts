/**
 * What a replica (core/replica) does for its CRDT fields, handed to it by the fields runtime
 * (`machine.crdtRuntime.replicaFields`): a replica of a machine without fields carries none of
 * it. ReplicaState asks it whether the fields are busy or broken, for the snapshot value, and
 * to reload the fields with the authority's state; Doc connects its outbox and hands out the
 * fields' handles.
 */
import { canonError } from "../errors.js"
import { isMerge, type Desync, type PendingCommand } from "../replica/replica-state.js"
import { fieldsOf, snapshotValue, takeEncodedFields, type CrdtDecls, type CrdtFields } from "./fields.js"
import { CrdtOutbox, crdtHandles, type CrdtOutboxPort } from "./outbox.js"

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

  constructor(replica: FieldsReplica) {
    this.#replica = replica
    this.#fields = fieldsOf(replica.machine.crdt!, replica.host)
    this.#fields.onRefusedMerge((field, rejection) => {
      const m = /^(crdt-[a-z-]+): ([^]*)$/.exec(rejection.message)
      this.#refused.push({
        code: m?.[1] ?? rejection.code,
        message: `A merge into field "${field}" of "${replica.docId}" that the hub ordered was refused; the field keeps what it had (a hub sending it is broken or hostile): ${m?.[2] ?? rejection.message}`,
      })
    })
  }

  /**
   * The fields hold merges the authority has not confirmed (pending merge commands, local
   * changes not yet submitted): their confirmed-only content is unknown, so checkpoints are
   * not checked and no local snapshot is written until they settle.
   */
  busy(): boolean {
    for (const u of this.#unsent.values()) if (u.length > 0) return true
    return this.#replica.pending.some(isMerge)
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
    fieldsOf(fields.decls, replica.host)
    for (const p of replica.pending) if (isMerge(p)) p.journal = undefined
    for (const [field, updates] of this.#unsent) for (const u of updates) fields.merge(field, u, replica.clientId)
  }

  /** Local changes go out through Doc from now on (as merge commands, see outbox.ts). */
  connect(port: ReplicaFieldsPort): this {
    const { docId } = this.#replica
    this.#port = port
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
    this.#outbox?.kick()
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
   * A refused merge is already in its field and cannot be taken out: the replica reloads the
   * fields from the authority's state (pending merges are merged again on top).
   */
  refused(commands: Iterable<PendingCommand>): boolean {
    for (const p of commands) if (isMerge(p)) return true
    return false
  }
}

export const replicaFields = (replica: FieldsReplica): ReplicaFields => new ReplicaFields(replica)
