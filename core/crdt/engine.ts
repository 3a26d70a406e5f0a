/**
 * The CRDT field port: what Canon needs from a CRDT library (Yjs, Automerge) to hold one
 * field of a document, merge updates from peers, hash it canonically and snapshot it. The core
 * never imports a CRDT library: `canon/yjs` and `canon/automerge` implement this interface and
 * machines name them in `crdt: { ... }` (see fields.ts).
 *
 * API (stable; also used for whole CRDT documents):
 *
 *   engine.create()            a new, empty field
 *   engine.load(bytes)         a field from `field.encode()` (throws CanonError "crdt-invalid")
 *   field.handle               the library's live object (a Y.Text, an Automerge handle) for the app
 *   field.validate(update, o)  decode and check a peer's update WITHOUT changing the field:
 *                              `{ ok: true, update }` (a validated update) or `{ ok: false, rejection }`
 *                              with a stable code: crdt-invalid, crdt-too-large, crdt-missing-deps,
 *                              crdt-not-owner, crdt-equivocation
 *   field.apply(batch)         merges validated updates, in order (idempotent, commutative). A
 *                              throw means the library failed half-way: the field is broken
 *                              (`field.broken`), drop it and load it again from what is durable
 *   field.hash()               canonical hash: equal for equal content and history whatever the
 *                              arrival order (Yjs: state vector + delete set; Automerge: heads)
 *   field.encode()             compact bytes for snapshots (Yjs V2 state, Automerge save()),
 *                              plus the ownership table the hub checks against
 *   field.onLocalChange(fn)    the app changed `handle` itself: `fn(update)` with the update args
 *   field.coalesce(updates)    several local updates as one (sent while a submit is in flight)
 *   field.tombstone(update)    optional: what fills a refused local change's place in its
 *                              writer's history, so the writer's later changes still merge
 *   field.remake(update)       optional, where no tombstone can: the writer's later changes
 *                              made again without the refused one, under a new writer
 *
 * A field declaration (what `yText()` returns) is `{ engine, runtime }`: `runtime` is
 * core/crdt/runtime.ts, brought by the declaration so apps without CRDT fields never bundle it.
 *
 * Updates are a command's arguments: plain data (bytes) that the engine's `args` schema checks.
 * Validation options: `clientId` (the Canon client sending it; the first one to use a Yjs
 * clientID or an Automerge actor owns it) and `trusted` (entries already ordered by the
 * authority: still decoded before they are applied, but ownership and dependencies are not
 * re-judged; ownership is still recorded so a reloaded hub knows it). What no document may
 * hold is refused on both (a hostile hub orders what it likes): Yjs's nesting bound and the
 * key `__proto__`, for instance. On a replica (`foreign`), another writer's ordered update
 * that would not merge whole (held pending by the library) is refused too.
 */
import type * as Schema from "effect/Schema"
import type { Rejection } from "../errors.js"
import type { CrdtRuntime } from "./runtime.js"

/** Limits on one update (the hub's command limit applies too). */
export interface CrdtLimits {
  /** Largest update bytes. Default 256 KiB. */
  readonly maxUpdateBytes?: number
}

export const DEFAULT_MAX_UPDATE_BYTES = 256 << 10

export interface ValidateOptions {
  /** The Canon clientId that sent the update. */
  readonly clientId: string
  /**
   * Ordered by the authority already (a log replay, a replica's incoming entry), or this
   * replica's own: the field's limits on what it accepts (update size, `maxStructs`) judge it
   * only if `local` says it is a change made here, since an ordered one was accepted perhaps
   * under larger limits; the bounds of what loads safely always do.
   */
  readonly trusted: boolean
  /** With `trusted`: asked only when a limit would refuse it, whether it is a change made here (not ordered yet). */
  readonly local?: () => boolean
  /**
   * With `trusted`, on a replica only (the authority replaying its own log leaves it out):
   * asked only when the update would not merge whole (Yjs would hold structs or deletions
   * pending, Automerge would queue changes), whether it is another writer's, not one of this
   * replica's own merges. An honest authority checked another writer's update against the
   * content this replica has, so one that would not merge whole is refused
   * (`crdt-missing-deps`) rather than held, unbounded and in no hash, for as long as the field
   * lives. This replica's own may wait there legitimately (a change behind a refused one,
   * until its tombstone is merged).
   */
  readonly foreign?: () => boolean
}

/** Whether the field's limits on what it accepts judge this update (see ValidateOptions). */
export const limited = (options: ValidateOptions): boolean => !options.trusted || options.local?.() === true

/** An update that passed `validate` against the field as it was then. Opaque to the core. */
export interface ValidatedUpdate {
  readonly __validated: true
}

export type ValidateResult =
  | { readonly ok: true; readonly update: ValidatedUpdate }
  | { readonly ok: false; readonly rejection: Rejection }

export interface CrdtField<H = unknown> {
  readonly handle: H
  /** Optional: the most update bytes `validate` takes; local changes are coalesced within it. */
  readonly maxUpdateBytes?: number
  /** The library threw while changing the field: its content is not trustworthy. */
  readonly broken: boolean
  validate(update: unknown, options: ValidateOptions): ValidateResult
  apply(batch: ReadonlyArray<ValidatedUpdate>): void
  hash(): string
  encode(): Uint8Array
  onLocalChange(listener: (update: unknown) => void): () => void
  coalesce(updates: ReadonlyArray<unknown>): unknown
  /**
   * Optional. What takes the place of `update`, a local change the hub refused, so that this
   * writer's later changes still merge (Yjs: its clocks as deleted items, see
   * adapters/yjs/tombstone.ts); undefined if nothing can (or `update` writes nothing). A
   * refused tombstone has one more, in as few structs as the engine can, with no place to be
   * refused for (Yjs: GC ranges); the last form has none.
   */
  tombstone?(update: unknown, dependents?: ReadonlyArray<unknown>): unknown
  /**
   * With `tombstone`: whether `update` needs what `refused` wrote (so it was refused with it).
   * `refused` may be the refused change or its tombstone, or a list of a tombstone and the
   * changes refused for needing it (the chain crosses writers): only the clocks they hold count.
   * With `remake`: whether `update` is among what a remake covered (`refused` is its `covered`).
   */
  dependsOn?(update: unknown, refused: unknown): boolean
  /**
   * Optional, for engines whose changes cannot be tombstoned (Automerge: a change is named by
   * the hash of its bytes). Takes `update`, a local change the hub refused, and everything
   * made after it out of the field, and makes what came after again without it, under a new
   * writer (adapters/automerge/remake.ts): the local updates to send, in order, each from a
   * run of later changes of at most `maxBytes` together, and what was taken out (`covered`,
   * for `dependsOn`). Undefined if the field does not hold `update`.
   */
  remake?(update: unknown, maxBytes: number): { readonly updates: ReadonlyArray<unknown>; readonly covered: unknown } | undefined
  /**
   * Optional. Whether `update`, as the hub's `validate` passed it, holds no content: the place
   * of clocks (Yjs: deleted items and GC ranges, no deletions: what `tombstone` makes), or
   * deletions only. It may use the reserve of the document's size bound
   * (core/authority/size-bound.ts): a tombstone refused, every later change of its writer
   * would be refused for needing it; a deletion refused, a full document could not be trimmed.
   */
  fills?(update: ValidatedUpdate): boolean
  /**
   * Optional. For an update `fills` passed that only deletes: the bytes merging it can add to
   * the field's encoding less what it surely frees (negative: it shrinks it), charged instead
   * of three times its bytes (adapters/yjs/deletion.ts). Undefined for any other update.
   */
  growth?(update: ValidatedUpdate): number | undefined
  /**
   * Optional. For an update with content (one `growth` does not weigh): the bytes it can add to
   * the field's encoding beyond three times its own (>= 0), charged on top. A Yjs update's
   * deletions (a delete set of one byte a range can split an item twice a range:
   * adapters/yjs/deletion.ts); an Automerge change's ops, each a new row among the document's
   * where it lands (a change of runs stands for any number of them: adapters/automerge/growth.ts).
   */
  extraGrowth?(update: ValidatedUpdate): number
  /**
   * Optional. What the field holds in memory, in units of a few hundred bytes (an Automerge op
   * or change, a Yjs struct): what a hub's bound on the fields it holds loaded counts
   * (core/authority/held-weight.ts). The encoding says little of it: a run of one value
   * stores in a few hundred bytes and held 350 MB.
   */
  weight?(): number
  /** Optional, with `weight`: what merging `update`, as `validate` passed it, can add to it (an upper bound). */
  weighs?(update: ValidatedUpdate): number
  /** Releases listeners and library objects. */
  destroy(): void
}

export interface CrdtEngine<H = unknown> {
  /** Stable name of the field kind and its encoding ("yjs-text/1"): part of the machine fingerprint. */
  readonly kind: string
  /** Schema of an update (a command's arguments) on the wire. */
  readonly args: Schema.Codec<unknown, unknown>
  create(): CrdtField<H>
  load(bytes: Uint8Array): CrdtField<H>
  /**
   * The hub work `update` stands for (validating and merging it), in estimated microseconds,
   * read from its bytes alone in O(bytes), without decoding: a few bytes can stand for
   * seconds (an Automerge change deleting 100,000 characters is 153 bytes). The hub charges
   * it to the sender's command rate where the submit enters (hub.ts). Whatever `validate`
   * will refuse unread weighs by its length.
   */
  weigh(update: unknown): number
}

/** What `crdt: { ... }` holds per field: `yText()`, `automergeDoc(...)`. */
export interface CrdtFieldDecl<H = unknown> {
  readonly engine: CrdtEngine<H>
  /** The field code (core/crdt/runtime.ts), brought by the declaration so the core need not import it. */
  readonly runtime: CrdtRuntime
}

/** The handle type of a field declaration. */
export type HandleOf<D> = D extends CrdtFieldDecl<infer H> ? H : never

/**
 * Why a CRDT update was refused. The wire's rejection codes are a fixed table (protocol v1),
 * so the reason travels as the first word of the message, `crdt-missing-deps: ...`, under the
 * nearest rejection code (see `crdtRejection`); `crdtReason(rejection)` reads it back.
 */
export type CrdtReason =
  | "crdt-invalid" // not decodable, or a structure a field does not allow (code invalid-args)
  | "crdt-too-large" // more bytes than the field's limit (code command-too-large)
  | "crdt-missing-deps" // depends on updates the field does not have (code invalid-args)
  | "crdt-not-owner" // uses a Yjs clientID / Automerge actor another client owns (code unauthorized)
  | "crdt-equivocation" // reuses clocks or sequence numbers with different content (code invalid-args)
  | "crdt-failed" // the library threw while merging; the field was reloaded (code command-failed)

const CODE_OF: Record<CrdtReason, Rejection["code"]> = {
  "crdt-invalid": "invalid-args",
  "crdt-too-large": "command-too-large",
  "crdt-missing-deps": "invalid-args",
  "crdt-not-owner": "unauthorized",
  "crdt-equivocation": "invalid-args",
  "crdt-failed": "command-failed",
}

/** A rejection of an update, carrying its reason. */
export const crdtRejection = (reason: CrdtReason, message: string): { readonly ok: false; readonly rejection: Rejection } =>
  ({ ok: false, rejection: { code: CODE_OF[reason], message: `${reason}: ${message}` } })

/** The CRDT reason of a rejection (or of a CommandRejected), if it is one. */
export const crdtReason = (rejection: { readonly message: string }): CrdtReason | undefined => {
  const m = /^(crdt-[a-z-]+):/.exec(rejection.message)
  return m !== null && m[1]! in CODE_OF ? (m[1] as CrdtReason) : undefined
}
