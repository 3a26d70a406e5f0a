/**
 * What a document opens with from the replica store: its stored state (a snapshot with the
 * confirmed entries after it replayed, or, written by an older version of the app, migrated by
 * the machine's history), its confirmed seq and its outbox. It comes with a storage
 * (ReplicaStore.openDoc), so an app without storage does not ship it.
 */
import { applyLogged } from "../apply.js"
import { decodeCanonical } from "../canonical.js"
import { canonError, errorText } from "../errors.js"
import { JournaledState } from "../journal.js"
import type { CompiledCommand, Machine } from "../machine.js"
import type { DocInit } from "../replica/doc.js"
import type { PendingCommand } from "../replica/replica-state.js"
import * as Result from "effect/Result"
import { historyOf, newerStoreError } from "../schema/registry.js"
import type { ReplicaStore } from "./replica-store.js"
import type { QueuedChange } from "../replica/doc-lane.js"
import * as K from "./keys.js"

/** A stored snapshot's state: damaged bytes are storage-corrupt, naming the document. */
const storedState = (docId: string, bytes: Uint8Array): unknown => {
  try {
    return decodeCanonical(bytes)
  } catch (e) {
    throw canonError("storage-corrupt", `The stored snapshot of document "${docId}" is unreadable: ${errorText(e)}`)
  }
}

/**
 * A stored outbox command as the document takes it back: decoded by its schema to be applied
 * again on top of the state. One stored by an older machine and no longer valid here applies
 * as nothing and is sent as it is: the authority will say so.
 */
const restored = (machine: Machine<any, any>, o: { readonly clientSeq: number; readonly name: string; readonly args: unknown; readonly madeAs?: number }): PendingCommand => {
  const cmd = machine.compiled.get(o.name)
  const decoded = cmd?.decode(o.args)
  const valid = cmd !== undefined && decoded !== undefined && !Result.isFailure(decoded)
  return {
    clientSeq: o.clientSeq, name: o.name, args: valid ? decoded.success : undefined, encoded: o.args,
    cmd: valid ? cmd : nothing(machine),
    journal: undefined, localRejection: undefined, persisted: true, madeAs: o.madeAs,
  }
}

/**
 * A command that does nothing, run by this machine's runtime. Not another command's merge: a
 * stored merge of a field this build lacks was checked as the first field's, and the app told
 * of a refused merge into that field.
 */
const nothing = (machine: Machine<any, any>): CompiledCommand<any> => {
  const first = machine.compiled.values().next().value!
  if (first.crdt === undefined) return { ...first, apply: () => undefined }
  const { field: _field, ...crdt } = first.crdt
  return { ...first, crdt, apply: () => undefined }
}

/** The stored document `docId` opened with `machine`, or undefined when nothing is stored. */
export const openStoredDoc = async <S>(store: ReplicaStore, docId: string, machine: Machine<S, any>): Promise<DocInit<S> | undefined> => {
  const stored = await store.load(docId)
  if (stored === undefined) return undefined
  if (stored.meta.machine !== machine.name) {
    throw canonError("machine-mismatch", `Stored document "${docId}" belongs to machine "${stored.meta.machine}", not "${machine.name}".`)
  }
  // Stored by a newer version of the app: never read. By an older one: migrated by the
  // machine's version history, if it has one (core/schema/replica-upgrade.ts); a one-version
  // machine whose version was bumped reads what it stored as it is.
  if (stored.meta.version > machine.version) throw newerStoreError(docId, stored.meta.version, machine)
  const upgraded = await historyOf(machine)?.upgradeStoredReplica(store, docId, stored, machine)
  const host = new JournaledState<S>(upgraded !== undefined ? (upgraded.state as S) : stored.snapshot ? (storedState(docId, stored.snapshot.state) as S) : machine.initial())
  let seq = upgraded?.confirmedSeq ?? stored.snapshot?.seq ?? 0
  for (const e of upgraded !== undefined ? [] : stored.entries) {
    if (e.seq !== seq + 1) break
    applyLogged(host, docId, machine, e)
    seq = e.seq
  }
  if (upgraded === undefined && seq !== stored.meta.confirmedSeq) {
    throw canonError("storage-corrupt", `Stored document "${docId}" claims seq ${stored.meta.confirmedSeq} but its state reaches ${seq}.`)
  }
  const outbox = upgraded?.outbox ?? stored.outbox
  const { queued, lost } = await sendableQueue(store, docId, machine, stored.queued)
  if (upgraded?.failure !== undefined) lost.push(upgraded.failure)
  return {
    state: host.root,
    confirmedSeq: seq,
    // Never below a stored command's number: a reused number would overwrite that command.
    nextClientSeq: outbox.reduce((n, o) => Math.max(n, o.clientSeq + 1), stored.meta.nextClientSeq),
    snapshotSeq: upgraded?.snapshotSeq ?? stored.snapshot?.seq ?? 0,
    outbox: outbox.map((o) => restored(machine, o)),
    fetchState: upgraded !== undefined || stored.provisional,
    queued,
    ...(lost.length > 0 ? { lost } : {}),
  }
}

/**
 * The stored CRDT changes waiting to go again that this build can send. One whose field it no
 * longer has (or has as another kind) could never go, and was tried again at every open: its
 * record is deleted, and the app told (`lost`, an `error` once the document is connected).
 */
const sendableQueue = async (store: ReplicaStore, docId: string, machine: Machine<any, any>, stored: ReadonlyArray<QueuedChange>) => {
  const queued: QueuedChange[] = []
  const lost: Array<{ readonly code: string; readonly message: string }> = []
  const gone: QueuedChange[] = []
  for (const q of stored) {
    // The field's merge command (crdt/fields.ts `crdtCommandName`, not imported: that module is
    // the CRDT runtime, which apps without fields never load).
    const cmd = machine.compiled.get(`$crdt.${q.field}`)
    const decoded = cmd?.crdt?.field === q.field ? cmd.decode(q.update) : undefined
    if (decoded !== undefined && !Result.isFailure(decoded)) {
      queued.push(q)
      continue
    }
    gone.push(q)
    lost.push({
      code: cmd === undefined ? "unknown-command" : "invalid-args",
      message: `A change to field "${q.field}" of "${docId}" waiting to go again is lost: this build of "${machine.name}" ${cmd === undefined ? "has no such field" : "has it as another kind of field"}.`,
    })
  }
  if (gone.length > 0) await store.kv.batch(gone.map((q) => ({ type: "del" as const, key: K.replicaQueued(docId, q.key) })))
  return { queued, lost }
}
