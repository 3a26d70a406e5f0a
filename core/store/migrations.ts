/**
 * Every storage-format migration, in order, and the open that runs them for a hub's store
 * (AuthorityStore): see format.ts for the formats and migration.ts for the runner.
 */
import type { KVStore } from "../ports/storage.js"
import { STORAGE_FORMAT } from "./format.js"
import { type MigrationStep, type OpenFormatOptions, runMigrations } from "./migration.js"
import { clientRecordsToMarks } from "./migrate-client-records.js"

/** Step i goes from format i + 1 to i + 2. */
export const MIGRATIONS: ReadonlyArray<MigrationStep> = [clientRecordsToMarks]

/** Write opens in progress, per store: two stores opened on one KVStore run one migration. */
const migrating = new WeakMap<KVStore, Promise<void>>()

/** Checks the format and migrates an older store (unless read-only). */
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
