/**
 * A document a hub could not upgrade: it was loaded by a newer version of its machine, and the
 * app's `migrateState` threw on its stored state (or returned one a snapshot cannot hold). The
 * app's bug must touch only what needs that migration, so the document stays at the version its
 * state is stored at: nothing is written (no `$migrate` marker), sessions at that version or
 * older are served as before, and a session at a newer version is refused `migration-failed`
 * with this sentence. The upgrade is tried again at every load, so a hub running a fixed
 * migration upgrades the document then (test/schema-migrate-contained-hub.test.ts).
 */
import { canonError, errorText, type CanonError } from "../errors.js"
import type { Machine } from "../machine.js"
import { boundedMessage, quoted } from "../limits.js"

export interface HeldVersion {
  /** The version the document's state is at, and the hub serves it at. */
  readonly version: number
  /** What a session at a newer version is told. */
  readonly error: CanonError
}

export const holdAt = (docId: string, machine: Machine<any, any>, version: number, failure: unknown): HeldVersion => ({
  version,
  // The app's error last: its text (which may quote the document's values) is what a cut takes.
  error: canonError("migration-failed", boundedMessage(
    `Document ${quoted(docId)} stays at "${machine.name}" v${version} on this hub: the app's migration of its state to v${machine.version} failed. ` +
      `Apps at v${version} or older keep syncing it; apps at a newer version can once the hub runs a migrateState that handles this state ` +
      `(nothing was changed; the hub tries again each time it loads the document). The failure: ${errorText(failure)}`,
  )),
})

/** The refusal of a session at `version` to a held document, or undefined when it is served. */
export const heldRefusal = (held: HeldVersion | undefined, version: number): CanonError | undefined =>
  held !== undefined && version > held.version ? held.error : undefined
