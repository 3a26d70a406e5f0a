/**
 * The engine port of whole CRDT documents: what the CRDT document authority needs from a CRDT
 * library (Yjs, Automerge) without importing it. Adapters implement it (adapters/yjs-server,
 * adapters/automerge-server); core never loads a CRDT library, so browser bundles of `canon`
 * stay free of them.
 *
 * An "update" is the unit the hub stores and fans out: a Yjs V1 update, one Automerge change.
 * Updates from the network are untrusted: `check` decodes and bounds one before anything
 * touches the live document, and `apply` may still throw (a library bug, a hostile input the
 * checks missed); the authority then rebuilds the document from storage.
 *
 * `check` and `apply` may return promises: an engine whose work grows with the update (an
 * Automerge document chunk of 262,144 changes is seconds of decoding) does it in slices
 * between turns of the event loop, so one peer's upload never stalls every other document on
 * the hub. The authority keeps arrival order either way.
 *
 * @example
 * ```ts
 * const host = new CrdtDocHost({ engines: [yjsDocEngine()], storage, runtime })
 * const doc = await host.open("yjs", "notes")
 * await doc.submit([update])
 * ```
 */

/** Why an update was refused (stable code, a sentence a person can act on). */
export interface CrdtRejection {
  readonly code: CrdtRejectionCode
  readonly message: string
}

export type CrdtRejectionCode =
  | "update-too-large" // over the engine's byte limit
  | "update-malformed" // does not decode, or fails a structural check
  | "update-missing-deps" // depends on data the hub does not have
  | "update-failed" // the library threw while applying it (the document was rebuilt)
  | "unauthorized" // the principal may not write this document
  | "not-owner" // writes as a Yjs client / Automerge actor another principal wrote first
  | "doc-kind-mismatch" // the document exists with another kind
  | "doc-unavailable" // the document could not be loaded (storage)
  | "doc-id-invalid" // the document id is empty, too long or not well-formed

/**
 * A check's verdict. `weight`: the hub work the update stands for, in estimated microseconds,
 * counted before decoding (structs, changes, ops); the submitting principal's work budget pays
 * it (work-budget.ts). Without it the update costs nothing there.
 */
export type CheckResult = { readonly ok: true; readonly weight?: number } | ({ readonly ok: false } & CrdtRejection)

export interface CrdtDocEngine<D> {
  /** Stable kind name, stored with the document ("yjs", "automerge"). */
  readonly kind: string
  /** A new empty document. */
  empty(): D
  /** A document from `encode`'s bytes (trusted: written by this hub). */
  load(bytes: Uint8Array): D
  /** The document's compact state (Yjs V2 state update, Automerge save), as the base record. */
  encode(doc: D): Uint8Array
  /** Decodes and bounds an untrusted update before it is applied. Never throws (nor rejects). */
  check(update: Uint8Array): CheckResult | Promise<CheckResult>
  /**
   * Merges updates into the document, in order. Returns, per update, whether it added
   * anything (an update whose data is all known already is not stored), or a rejection
   * (dependencies missing: the hub refuses rather than holds). May throw (or reject). The
   * authority never runs two applies on one document at once; an asynchronous one must read
   * the document afresh after each pause (endpoints may replace an Automerge handle meanwhile).
   */
  apply(doc: D, updates: ReadonlyArray<Uint8Array>): ReadonlyArray<boolean | CrdtRejection> | Promise<ReadonlyArray<boolean | CrdtRejection>>
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
