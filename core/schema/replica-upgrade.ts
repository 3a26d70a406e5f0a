/**
 * A replica's store written by an older version of the app, opened by a newer one.
 *
 * The stored confirmed state (and the confirmed entries after it) are of the stored version
 * k: they are replayed with v(k) and the state is migrated to the app's version n. That
 * state is provisional (the replica may have followed an older version's view of the
 * document), so the replica fetches the authority's state on its next connection.
 *
 * The outbox keeps every command in the version it was written in: a record of v(k) becomes
 * `$as {v: k, name, args}`, sent as it is; the hub decodes it with v(k) and upcasts it, and
 * its idempotency hash covers the original form, so a command that was sent before the
 * upgrade and is sent again after it is applied once. Crash-safe in two writes: first the
 * outbox in its `$as` form (valid at any version), then the migrated state with the new
 * version in the meta.
 *
 * The app's `migrateState` runs on a state other clients wrote: when it throws (or returns a
 * state a snapshot cannot hold), the document still opens. It starts over at the app's
 * version's initial state at seq 0, the stored state of the older version dropped (the
 * authority has it), and takes the authority's state on its next connection; the outbox is
 * kept as above, and the app is told `migration-failed` (an `error` event once connected).
 */
import { decodeCanonical, encodeCanonical } from "../canonical.js"
import { canonError, errorText } from "../errors.js"
import { JournaledState } from "../journal.js"
import type { Machine } from "../machine.js"
import { makeContext } from "../machine.js"
import type { ReplicaStore, StoredReplicaDoc } from "../store/replica-store.js"
import { AS, MIGRATE, historyOf, isReserved, newerStoreError, type UpgradedReplica } from "./registry.js"
import { replayEntry } from "./serve.js"

export type { UpgradedReplica } from "./registry.js"

/**
 * Migrates a stored document to `machine`'s version, or returns undefined when it is at that
 * version already. Throws `machine-mismatch` for a store of a newer version, or of a version
 * the machine's history does not have.
 */
export const upgradeStoredReplica = async (
  store: ReplicaStore | undefined, docId: string, stored: StoredReplicaDoc, machine: Machine<any, any>,
): Promise<UpgradedReplica | undefined> => {
  const k = stored.meta.version
  if (k === machine.version) return undefined
  if (k > machine.version) throw newerStoreError(docId, k, machine)
  const h = historyOf(machine)
  if (h === undefined || !h.has(k)) {
    // A one-version machine whose version was bumped: what it stored is read as it is (as before versions existed).
    return undefined
  }
  const old = h.at(k)
  const host = new JournaledState<unknown>(stored.snapshot ? decodeCanonical(stored.snapshot.state) : old.initial())
  let seq = stored.snapshot?.seq ?? 0
  for (const e of stored.entries) {
    if (e.seq !== seq + 1) break
    // Entries came converted to k, but the hub's version markers pass as they are: as live, they are nothing here.
    if (e.name !== MIGRATE) replayEntry(host, docId, h, k, e)
    seq = e.seq
  }
  if (seq !== stored.meta.confirmedSeq) {
    throw canonError("storage-corrupt", `Stored document "${docId}" claims seq ${stored.meta.confirmedSeq} but its state reaches ${seq}.`)
  }
  const ctx = makeContext(docId, seq, 0, "$local")
  let state: unknown
  let at = seq
  let failure: UpgradedReplica["failure"]
  // CRDT fields go into the migrated snapshot as a stored one holds them (`$crdt`); the
  // migration leaves them as they are.
  const fields = old.crdtRuntime?.fieldsOf(old.crdt!, host)
  try {
    state = h.migrateState(fields === undefined ? host.root : fields.snapshotOf(host.root), k, machine.version, ctx)
  } catch (e) {
    // Never a document that cannot open: its start here, the authority's state on connecting.
    state = machine.initial()
    at = 0
    failure = {
      code: "migration-failed",
      message: `The stored replica of "${docId}" (v${k}) could not be migrated to v${machine.version}, so it opened at v${machine.version}'s initial state and takes the hub's state when it connects; its unsent commands are kept. ${errorText(e)}`,
    }
  }
  // A renumbered command keeps the number it was made under (the hub finds it by that, core/authority/client-table.ts).
  const outbox = stored.outbox.map((o) => (isReserved(o.name) ? o : { clientSeq: o.clientSeq, name: AS, args: { v: k, name: o.name, args: o.args }, madeAs: o.madeAs }))
  if (store !== undefined) {
    const moves = outbox.filter((o, i) => o !== stored.outbox[i]).map((o) => ({ from: o.clientSeq, to: o.clientSeq, name: o.name, args: o.args, madeAs: o.madeAs }))
    if (moves.length > 0) await store.renumberOutbox(docId, stored.meta, moves)
    await store.confirm(docId, {
      meta: { ...stored.meta, version: machine.version, confirmedSeq: at },
      entries: [],
      settled: [],
      snapshot: { seq: at, state: encodeCanonical(state), dropFrom: (stored.snapshot?.seq ?? 0) + 1, dropTo: seq },
      // Until the authority's state arrives, a restart must ask for it again.
      provisional: true,
    })
  }
  return { state, confirmedSeq: at, snapshotSeq: at, outbox, ...(failure !== undefined ? { failure } : {}) }
}
