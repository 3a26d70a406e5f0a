/**
 * The engine port of whole CRDT documents: what the CRDT document authority needs from a CRDT
 * library (Yjs, Automerge) without importing it. Adapters implement it (adapters/yjs-server,
 * adapters/automerge-server); core never loads a CRDT library, so browser bundles of `canon`
 * stay free of them.
 *
 * An "update" is the unit the hub stores and fans out: a Yjs V1 update, one Automerge change.
 * Updates from the network are untrusted: `check` decodes and bounds one before anything
 * touches the live document, and `apply` may still throw (a library bug, a hostile input the
 * checks missed); the authority then rebuilds the document from storage. Updates read back
 * from storage are trusted (this hub accepted them) and take another way in, `restore`:
 * limits for a peer's updates never apply to them, whatever they were lowered to since.
 *
 * An update is checked in two steps. `check`, where it enters: synchronous and cheap (bytes
 * and counts read without decoding), it bounds the update and weighs the work it stands for,
 * which the sender pays (work-budget.ts). `prepare`, for an engine whose decoding is costly
 * (an Automerge document chunk of 262,144 changes is seconds of it): run when the update's turn
 * comes in the document's queue, in slices between turns of the event loop, and within the
 * host's bound on heavy work in flight, so one upload never stalls the hub's other documents
 * and many at once never exhaust its memory. `apply` may return a promise too.
 *
 * @example
 * ```ts
 * const host = new CrdtDocHost({ engines: [yjsDocEngine()], storage, runtime })
 * const doc = await host.open("yjs", "notes")
 * await doc.submit([update])
 * ```
 */
import type { HeldWeight } from "../authority/held-weight.js"

/**
 * The largest update a whole-document engine takes by default: one Yjs V1 update (a step2
 * included), one Automerge change or document chunk. A stock client sends everything it did
 * offline in one message (y-websocket's step2, a Repo's sync message), so a bound of 1 MiB
 * kept a user's offline work above it from ever reaching the hub: its socket was closed 1009
 * at every reconnect. Decoding costs per struct or op, bounded apart; bytes cost about 10 µs
 * per KiB to decode, merge and encode (8 MiB of Yjs text: 80 ms), weighed as such.
 */
export const DEFAULT_MAX_DOC_UPDATE_BYTES = 8 << 20

/**
 * What a route's message may hold besides its updates (the protocol's header; an automerge-repo
 * message's fields, and a sync message's heads and Bloom filter of the peer's changes, about
 * 10 bits each). A CRDT route's frame limit is DEFAULT_MAX_DOC_UPDATE_BYTES plus this.
 */
export const DOC_MESSAGE_OVERHEAD_BYTES = 1 << 20

/** The CRDT routes' default frame limit: an update of the default bound and what travels around it. */
export const DEFAULT_MAX_DOC_MESSAGE_BYTES = DEFAULT_MAX_DOC_UPDATE_BYTES + DOC_MESSAGE_OVERHEAD_BYTES

/** Why an update was refused (stable code, a sentence a person can act on). */
export interface CrdtRejection {
  readonly code: CrdtRejectionCode
  readonly message: string
}

export type CrdtRejectionCode =
  | "update-too-large" // over the engine's limits: the update's bytes or counts, or what the document would hold after it
  | "update-malformed" // does not decode, or fails a structural check
  | "update-missing-deps" // depends on data the hub does not have
  | "update-failed" // the library threw while applying it (the document was rebuilt)
  | "unauthorized" // the principal may not write this document
  | "not-owner" // writes as a Yjs client / Automerge actor another principal wrote first
  | "doc-kind-mismatch" // the document exists with another kind
  | "doc-unavailable" // the document could not be loaded (storage), or the hub has no room for it or for the update now (retry later)
  | "doc-id-invalid" // the document id is empty, too long or not well-formed

/**
 * A check's verdict. `weight`: the hub work the update stands for, in estimated microseconds,
 * counted before decoding (structs, changes, ops, delete ranges); the submitting principal's
 * work budget pays it, refused or not (work-budget.ts). Without it the update costs nothing there.
 */
export type CheckResult = ({ readonly ok: true } | ({ readonly ok: false } & CrdtRejection)) & { readonly weight?: number }

/**
 * Tells work done in slices that its document is closing (an AbortSignal fits): the engine
 * looks at it after each pause and stops there, rejecting, so a closed hub does not decode
 * a large upload for seconds more. The authority refuses the updates it stopped.
 */
export interface StopSignal {
  readonly aborted: boolean
}

import type { SliceMeter } from "../stopwatch.js"
export type { SliceMeter } from "../stopwatch.js"

/** An engine's work on a loaded document before its first apply (`warm`). */
export interface DocWarmUp {
  /** Its estimated work in microseconds (for the host's bound on heavy work in flight). */
  readonly weight: number
  /** Does it, in slices; may reject (then `apply` does it itself). Stops once `stop` is aborted. */
  run(stop?: StopSignal): Promise<void>
}

/** What `apply` made of one update: added nothing (false), added it (true), added these bytes of it, or refused it. */
export type Applied = boolean | Uint8Array | CrdtRejection

export interface CrdtDocEngine<D> {
  /** Stable kind name, stored with the document ("yjs", "automerge"). */
  readonly kind: string
  /**
   * Counts what the engine's loaded documents hold toward the hub's memory too (one gauge in
   * estimated bytes for every kind of document: core/authority/held-weight.ts), refusing a
   * load or an update past it as past its own bound (`doc-unavailable`). A Hub calls it once
   * as it is made, before any document is loaded.
   */
  shareMemory?(memory: HeldWeight): void
  /** A new empty document. */
  empty(): D
  /** A document from `encode`'s bytes (trusted: written by this hub). */
  load(bytes: Uint8Array): D
  /**
   * Merges into a loaded document the updates stored after its base, in seq order. Trusted:
   * this hub accepted every one of them, so none of the limits for a peer's updates applies
   * (an operator may have lowered them since; judging stored updates by them would drop
   * acknowledged data from the live document, and at the next compaction for good). This is
   * the only way stored updates reach an engine: `check`, `prepare` and `apply` are for a
   * peer's. Throws when one does not decode or does not integrate in full (the authority
   * reports it as `storage-corrupt`); never drops one. A CrdtDocError it throws (the hub has
   * no room to hold the document now: `doc-unavailable`) is passed on as it is. Done in
   * slices, it tells `meter` around each turn of the event loop it lets through.
   */
  restore(doc: D, updates: ReadonlyArray<Uint8Array>, meter?: SliceMeter): void | Promise<void>
  /**
   * Work a document needs once after it is loaded, before its first apply (the Automerge
   * engine's index of the document, about 12 µs an op: seconds for a large one), done in
   * slices between turns of the event loop; undefined when there is none. The authority
   * starts it when the first update to apply arrives, within the host's bound on heavy work
   * in flight, and holds applies until it is done; `apply` must still work without it (doing
   * the work itself, in slices).
   */
  warm?(doc: D): DocWarmUp | undefined
  /**
   * Optional, for engines whose updates can delete without adding content (Yjs: a delete set,
   * no structs). For an update `check` and `prepare` passed, given the document before it:
   * undefined unless it only deletes; else the bytes it can add to the document's encoding less
   * what it surely frees (negative: it shrinks it; adapters/yjs/deletion.ts), charged instead
   * of three times its bytes. An engine that has it keeps the last 64th of a document's bound
   * for deletions (core/authority/size-bound.ts): the refusal of a full document tells its
   * writers to delete something first, and they can. `batch` is one object for every update
   * of a batch weighed on `doc` as it was before the batch: what an earlier one of it deletes,
   * a later one does not free again.
   */
  deletionGrowth?(doc: D, update: Uint8Array, batch: object): number | undefined
  /**
   * Optional. For an update with content (one `deletionGrowth` does not weigh): the bytes it can
   * add to the document's encoding beyond three times its own (>= 0), charged on top (`batch` as
   * for deletionGrowth): a Yjs update's deletions, an Automerge change's ops that land between
   * the document's (CrdtField `extraGrowth`).
   */
  extraGrowth?(doc: D, update: Uint8Array, batch: object): number
  /** The document's compact state (Yjs V2 state update, Automerge save), as the base record. */
  encode(doc: D): Uint8Array
  /** Bounds and weighs an untrusted update where it enters, before anything costly (see the header). Never throws. */
  check(update: Uint8Array): CheckResult
  /**
   * The costly rest of the check (decoding), for an update `check` passed, when its turn comes
   * (see the header). Never rejects, but for `stop` (then it may reject, or refuse, at any
   * pause). An engine without it does everything in `check`.
   */
  prepare?(update: Uint8Array, stop?: StopSignal): Promise<CheckResult>
  /**
   * Merges updates into the document, in order. Returns, per update, whether it added
   * anything (an update whose data is all known already is not stored), or a rejection
   * (dependencies missing: the hub refuses rather than holds). An engine whose updates may
   * carry data the document skips (Yjs: IDs it holds already, whatever content they claim)
   * returns, for one that added something, the bytes of what the document took in: those are
   * stored and relayed, never the peer's (relayed as sent, a peer still syncing integrated the
   * skipped content under another writer's clientID, for good). May throw (or reject). The
   * authority never runs two applies on one document at once; an asynchronous one must read
   * the document afresh after each pause (endpoints may replace an Automerge handle meanwhile).
   * Once `stop` is aborted it may reject at any pause, the document half-changed: the authority
   * then drops it unsaved. Done in slices, it tells `meter` around each turn of the event loop
   * it lets through (the authority charges the apply's measured time to its payer).
   */
  apply(doc: D, updates: ReadonlyArray<Uint8Array>, stop?: StopSignal, meter?: SliceMeter): ReadonlyArray<Applied> | Promise<ReadonlyArray<Applied>>
  /**
   * The writer identities `update` (already checked) adds data under, given the document as it
   * is before the update: Yjs clientIDs with structs past the document's clock, actors of
   * Automerge changes the document lacks. Data it already has does not count, so relaying
   * known data is never writing. The authority binds each identity to the principal that
   * first writes under it, and refuses another principal's writes under it (`not-owner`).
   */
  writers?(doc: D, update: Uint8Array): ReadonlyArray<string>
  /** Releases the document (wasm memory, listeners). */
  dispose?(doc: D): void
}
