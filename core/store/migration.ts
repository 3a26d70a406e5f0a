/**
 * The storage-format migration runner: brings a store written in an older layout to the
 * current one when it is opened, before anything reads it.
 *
 * The store's format number is the record under `formatKey`. Migrations are an ordered list
 * of steps, each from format N to N + 1. A step must be safe to run again after a crash at
 * any point: it writes in bounded slices, each one atomic batch that converts some records
 * and removes their old form, so what is still in the old layout is what is left to do. The
 * runner bumps the format number only after a step has finished, in its own synced batch, so
 * a store says "format N + 1" only when nothing of format N is left in it. A kill -9 in the
 * middle leaves format N with some slices done; the next open runs the step again and it
 * finishes the rest (test/storage-format-crash.test.ts kills a real migration to show it).
 *
 * Errors: a store of a newer format is refused (`storage-too-new`) untouched; a step that
 * fails leaves a consistent store at the old format and the error (`storage-failed`, or
 * `storage-corrupt` when a record cannot be read) says which step, why, and that opening
 * again resumes.
 */
import { CanonError, canonError } from "../errors.js"
import type { KVStore } from "../ports/storage.js"
import { readFormat, tooNew, writeFormat } from "./format.js"

/** One layout change, from format `from` to `to` (= from + 1). */
export interface MigrationStep {
  readonly from: number
  readonly to: number
  /** What it converts, for errors and progress reports. */
  readonly what: string
  /**
   * This build's readers (other than the writers the step exists for) still read a store at
   * `from` correctly, so a read-only open (canon inspect) may read it without migrating.
   */
  readonly readableBefore: boolean
  /**
   * Converts everything still in format `from`, in bounded atomic slices, calling `progress`
   * with the count of records converted so far. Safe to run again after a crash at any point.
   * Must not write the format key (the runner does, once the step is complete).
   */
  run(kv: KVStore, progress: (records: number) => void): Promise<void>
}

/** What a migration reports while it runs (a hub can log these). */
export type MigrationEvent =
  | { readonly type: "migration-started"; readonly from: number; readonly to: number; readonly what: string }
  | { readonly type: "migration-progress"; readonly from: number; readonly to: number; readonly records: number }
  | { readonly type: "migration-finished"; readonly from: number; readonly to: number; readonly records: number }

export interface OpenFormatOptions {
  /**
   * The store must not be written (canon inspect). An older format then opens as it is if
   * every pending step is `readableBefore`, and is refused otherwise; a fresh store is not stamped.
   */
  readonly readOnly?: boolean
  readonly onMigration?: (event: MigrationEvent) => void
}

const failed = (step: MigrationStep, e: unknown): CanonError => {
  const message = e instanceof Error ? e.message : String(e)
  const why = /[.!?]$/.test(message) ? message : `${message}.`
  const code = e instanceof CanonError && e.code === "storage-corrupt" ? "storage-corrupt" : "storage-failed"
  return canonError(code, `Migrating the store from format ${step.from} to ${step.to} (${step.what}) failed: ${why} ` +
    `Nothing was lost: the records converted so far are whole and the rest are still in format ${step.from}. ` +
    `Fix the cause and open the store again; the migration resumes where it stopped.`)
}

/**
 * Checks the stored format and runs the steps from it up to `target`, in order. A store
 * without a format key is new and is stamped with `target`: every Canon since the first
 * stamped the key at its first open, before writing anything else. (The same reads and
 * writes as before migrations existed, so simulator runs keep their I/O schedule.)
 */
export const runMigrations = async (kv: KVStore, steps: ReadonlyArray<MigrationStep>, target: number, options: OpenFormatOptions = {}): Promise<void> => {
  const version = await readFormat(kv)
  if (version === undefined) {
    if (options.readOnly !== true) await writeFormat(kv, target, false)
    return
  }
  if (version > target) {
    throw tooNew(version, target)
  }
  const pending: MigrationStep[] = []
  for (let v = version; v < target; v++) {
    const step = steps.find((s) => s.from === v)
    if (step === undefined || step.to !== v + 1) {
      throw canonError("storage-failed", `This build has no migration from storage format ${v} to ${v + 1}; it cannot open a format-${version} store. Open it with the Canon release that follows format ${v}, then with this one.`)
    }
    pending.push(step)
  }
  if (options.readOnly === true) {
    const blocking = pending.find((s) => !s.readableBefore)
    if (blocking === undefined) return
    throw canonError("storage-failed", `The store is in format ${version} and this build reads format ${target}; it migrates a store when it opens it for writing (${blocking.what}), which a read-only open cannot do. Start the hub on it once (the migration is crash-safe), then open it again.`)
  }
  const report = options.onMigration ?? (() => {})
  for (const step of pending) {
    report({ type: "migration-started", from: step.from, to: step.to, what: step.what })
    let records = 0
    try {
      await step.run(kv, (n) => {
        records = n
        report({ type: "migration-progress", from: step.from, to: step.to, records: n })
      })
      await writeFormat(kv, step.to)
    } catch (e) {
      throw failed(step, e)
    }
    report({ type: "migration-finished", from: step.from, to: step.to, records })
  }
}
