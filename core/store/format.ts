/**
 * The storage format: which layout of Canon's records a store holds (the number under
 * `formatKey`, see keys.ts), and the migrations that bring an older store to it on open.
 *
 *   format 1  the first layout: one idempotency record per document and client ("a" "c").
 *   format 2  no format-1 idempotency records: client marks ("a" "w") and outcome runs
 *             ("a" "o") only (migrate-client-records.ts converts the rest).
 *
 * Opening a store (AuthorityStore, ReplicaStore) runs `ensureFormat` before its first read:
 * a fresh store is stamped with STORAGE_FORMAT, an older one is migrated (crash-safe, see
 * migration.ts), a newer one is refused with `storage-too-new`. To change the layout: add a
 * step from STORAGE_FORMAT to STORAGE_FORMAT + 1 to MIGRATIONS, bump STORAGE_FORMAT, and
 * give the step a test with a store written in the old layout (test/storage-format.test.ts).
 */
import type { KVStore } from "../ports/storage.js"
import { type MigrationStep, type OpenFormatOptions, runMigrations } from "./migration.js"
import { clientRecordsToMarks } from "./migrate-client-records.js"

export const STORAGE_FORMAT = 2

/** Every migration, in order: step i goes from format i + 1 to i + 2. */
export const MIGRATIONS: ReadonlyArray<MigrationStep> = [clientRecordsToMarks]

/** Write opens in progress, per store: two stores opened on one KVStore run one migration. */
const migrating = new WeakMap<KVStore, Promise<void>>()

/** Checks the format and migrates an older store (unless read-only); see migration.ts. */
export const ensureFormat = async (kv: KVStore, options: OpenFormatOptions = {}): Promise<void> => {
  const running = migrating.get(kv)
  if (options.readOnly === true) {
    await running?.catch(() => {})
    return runMigrations(kv, MIGRATIONS, STORAGE_FORMAT, options)
  }
  if (running !== undefined) return running
  const run = runMigrations(kv, MIGRATIONS, STORAGE_FORMAT, options).finally(() => {
    if (migrating.get(kv) === run) migrating.delete(kv)
  })
  migrating.set(kv, run)
  return run
}
