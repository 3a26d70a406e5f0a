/**
 * The storage format: which layout of Canon's records a store holds, the number under
 * `formatKey` (keys.ts).
 *
 *   format 1  the first layout: one idempotency record per document and client ("a" "c").
 *   format 2  no format-1 idempotency records: client marks ("a" "w") and outcome runs
 *             ("a" "o") only (migrate-client-records.ts converts the rest).
 *
 * A fresh store is stamped with STORAGE_FORMAT at its first open; a newer one is refused
 * with `storage-too-new`, untouched. A hub's store of an older format is migrated when
 * AuthorityStore opens it (migrations.ts, crash-safe: migration.ts). Replica records are the
 * same in every format so far, so a replica's open only moves the number (below); this file
 * is all a browser bundle carries of it. To change the layout: add a step from
 * STORAGE_FORMAT to STORAGE_FORMAT + 1 to MIGRATIONS (migrations.ts), bump STORAGE_FORMAT,
 * and test the step on a store written in the old layout (test/storage-format.test.ts); a
 * step that changes replica records must also run in `ensureReplicaFormat`.
 */
import { decodeCanonical, encodeCanonical } from "../canonical.js"
import { type CanonError, canonError } from "../errors.js"
import type { KVStore } from "../ports/storage.js"
import { formatKey } from "./keys.js"

export const STORAGE_FORMAT = 2

/** The stored format number, or undefined if the key is absent (a new store). */
export const readFormat = async (kv: KVStore): Promise<number | undefined> => {
  const raw = await kv.get(formatKey)
  if (raw === undefined) return undefined
  let version: unknown
  try {
    version = decodeCanonical(raw)
  } catch {
    version = undefined
  }
  if (typeof version !== "number" || !Number.isInteger(version) || version < 1) {
    throw canonError("storage-corrupt", "The store's format key is unreadable; this is not a Canon store, or it is damaged.")
  }
  return version
}

/** Stamps the format; synced, so whatever a migration wrote before is durable first. */
export const writeFormat = (kv: KVStore, version: number, sync = true): Promise<void> =>
  kv.batch([{ type: "put", key: formatKey, value: encodeCanonical(version) }], { sync })

export const tooNew = (version: number, reads: number): CanonError =>
  canonError("storage-too-new", `The store was written by a newer Canon (format ${version}; this build reads up to ${reads}). Upgrade Canon to open it.`)

/**
 * A replica's open: stamps a new store, refuses a newer one, and moves an older one to
 * STORAGE_FORMAT (its records need no conversion), unless it also holds a hub's records,
 * which only the hub's open converts.
 */
export const ensureReplicaFormat = async (kv: KVStore): Promise<void> => {
  const version = await readFormat(kv)
  if (version === undefined) return writeFormat(kv, STORAGE_FORMAT, false)
  if (version > STORAGE_FORMAT) throw tooNew(version, STORAGE_FORMAT)
  if (version === STORAGE_FORMAT) return
  if ((await kv.range({ gte: Uint8Array.of(0x61), lt: Uint8Array.of(0x62), limit: 1 })).length > 0) {
    throw canonError("storage-failed", `This store is in storage format ${version} and also holds a hub's records, which only the hub migrates: open it with the hub first, then as a replica.`)
  }
  return writeFormat(kv, STORAGE_FORMAT)
}
