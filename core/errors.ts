/**
 * Errors are values with a stable `code` (for programs) and a `message` (for people).
 * They extend Effect's `Data.TaggedError`, so the same class works as a rejected Promise
 * and in an Effect's typed error channel.
 *
 * @example
 * ```ts
 * try { await doc.submit("move", { id: "c1", to: "done" }) }
 * catch (e) { if (e instanceof CommandRejected) console.log(e.code, e.message) }
 * ```
 */
import * as Data from "effect/Data"

/** Why the authority (or the local replica, for invalid arguments) refused a command. */
export type RejectionCode =
  | WireRejectionCode
  /** Local only (never on the wire): the hub's document moved to a version this app cannot
   * show or write; its commands are kept in the outbox until the app is updated. */
  | "update-required"

/** The rejection codes a hub sends (the wire's kind table, append only). */
export type WireRejectionCode =
  | "rejected" // the command called ctx.reject(reason)
  | "command-failed" // the command threw
  | "invalid-args" // arguments failed the command's schema
  | "unknown-command" // the machine has no command of that name
  | "outcome-expired" // a retry arrived after the authority forgot the outcome (see DocAuthority)
  | "unauthorized" // the hub's authorize hook refused this client write access
  | "state-unencodable" // the command wrote something that is not plain data (see README: state model)
  | "command-too-large" // the command's entry would be larger or deeper than the hub's bound

/** A command's refusal, as carried on the wire and stored in the idempotency table. */
export interface Rejection {
  readonly code: RejectionCode
  readonly message: string
}

/** The promise of a submitted command rejects with this when the authority refuses it. */
export class CommandRejected extends Data.TaggedError("CommandRejected")<{
  readonly code: RejectionCode
  readonly message: string
  readonly command: string
  readonly clientSeq: number
}> {}

/** Codes for failures of the engine itself (not of one command). */
export type CanonErrorCode =
  | "state-unencodable"
  | "state-read-only"
  | "decode-failed"
  | "storage-failed"
  | "storage-corrupt"
  | "storage-too-new"
  | "storage-in-use" // another open client holds the storage (KVStore.claim): one client per storage
  | "client-id-changed" // opened as another clientId than the storage's, with commands not yet sent numbered as it
  | "machine-mismatch"
  | "invalid-doc-id" // one the wire cannot carry: empty, too long, not well-formed (core/limits.ts docIdProblem)
  | "protocol-error"
  | "closed"
  | "refused" // the hub refused this client (see CanonClient.refusal); the outbox is kept
  | "migration-failed" // the app's own migration code (evolve: upcast, migrateState) threw
  | "hub-full" // the hub has no room now for what the document's CRDT fields hold (maxHostFieldWeight): tried again later

/** An engine failure: storage, codec, misuse of the API. */
export class CanonError extends Data.TaggedError("CanonError")<{
  readonly code: CanonErrorCode
  readonly message: string
}> {}

export const canonError = (code: CanonErrorCode, message: string): CanonError =>
  new CanonError({ code, message })

/** What an error says, for a sentence of our own: its message, or the thrown value as a string. */
export const errorText = (e: unknown): string => (e instanceof Error ? e.message : String(e))
