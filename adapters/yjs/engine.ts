/**
 * The Yjs engine of a CRDT field (core/crdt/engine.ts): one Y.Doc per field, its one root type
 * named by the field kind ("t" text, "m" map, "a" array).
 *
 * Untrusted input (see the research notes, D.1): updates are V1 only (V1 decoding is bounded
 * by its length; a 26-byte V2 update can take gigabytes), at most `maxUpdateBytes`, decoded
 * with `Y.decodeUpdate` before anything touches the document, and checked: no subdocuments,
 * no other root type, clocks below 2^40, every clientID owned by the sending Canon client
 * (the first client to use one owns it), no overlap with clocks the field has (equivocation),
 * and all of it integrable: every origin, parent and deleted range present and no cycle
 * inside the update (./integrable.ts, else `crdt-missing-deps`), each item between an origin
 * and right origin a writer could have had as neighbours (else `crdt-invalid`: Yjs would place
 * it differently on each replica), so Yjs never holds structs
 * pending, the state vector covers everything the field has, and encodings hold nothing else. A library
 * throw while applying, or a document that cannot be encoded afterwards, breaks the field: it
 * is reloaded from what is durable. Entries the hub ordered (`trusted`) are not judged for
 * ownership or dependencies, but what no field may hold is refused on them too, as a hostile
 * hub sends what it likes: the nesting bound (typesTooDeep), the key `__proto__` and
 * subdocuments (countV1Structs); and on a replica another writer's must integrate whole
 * (notIntegrable without the origin check, ValidateOptions `foreign`: else Yjs would hold it
 * pending for as long as the field lives), while the replica's own may wait there for a
 * tombstone. A stored or snapshot state loads only if its count and keys
 * (countV2Structs, before decoding) and its nesting (docTooDeep, before anyone reads it) pass.
 *
 * Determinism: Y.Text formatting cleanup makes a replica emit a new local update while it
 * merges a remote one when rich-text formatting is present, so replicas would diverge. The
 * `afterTransaction` hook clears Yjs's private `_needFormattingCleanup` flag (pinned yjs,
 * covered by test/crdt-yjs.test.ts). The field hash is the hash of
 * `encodeSnapshotV2(snapshot(doc))` (state vector + delete set): order-independent, and it
 * identifies the content because the hub never lets two structs share an ID.
 */
import * as Y from "yjs"
import * as Schema from "effect/Schema"
import { decodeCanonical, encodeCanonical, isBytes } from "../../core/canonical.js"
import { hashBytes } from "../../core/hash.js"
import { limited } from "../../core/crdt/engine.js"
import {
  DEFAULT_MAX_UPDATE_BYTES, crdtRejection,
  type CrdtEngine, type CrdtField, type CrdtLimits, type ValidateOptions, type ValidateResult, type ValidatedUpdate,
} from "../../core/crdt/engine.js"
import { dependsOn, onlyDeletes, onlyPlaces, tombstoneOf } from "./tombstone.js"
import { deletionGrowth, type DeleteSet } from "./deletion.js"
import { MAX_UPDATE_STRUCTS, countV1Structs, countV2Structs, docTooDeep, dropPending, encodeIntegratedV2, holdsPending, notIntegrable, typesTooDeep, unsupportedStructs, weighedStructs } from "./integrable.js"

/** Origin of the updates Canon merges (they are not the app's local changes). */
const CANON = Symbol("canon-merge")
const ENCODING = "y1"

export type YKind = "text" | "map" | "array"
const ROOT: Record<YKind, string> = { text: "t", map: "m", array: "a" }

interface Validated extends ValidatedUpdate {
  readonly bytes: Uint8Array
  /** Yjs clientIDs the update writes, for the ownership table. */
  readonly clients: ReadonlyArray<number>
  readonly owner: string
  readonly untrusted: boolean
  /** Found to integrate whole (untrusted, or another writer's on a replica). */
  readonly whole: boolean
  /** Untrusted, and holds no content: a tombstone (deleted items and GC ranges only, no deletions) or only deletions (see `fills`). */
  readonly fills: boolean
  /** Only deletions: its delete set (see `growth`). */
  readonly deletes?: DeleteSet
  /** Content and deletions: its delete set (see `extraGrowth`). */
  readonly alsoDeletes?: DeleteSet
  /** Untrusted: the structs it can add, at most (see `weighs`). */
  readonly added?: number
  /** Untrusted: what its structs hold (heldContent's measure: values, and its bytes one per 128). */
  readonly content?: number
}

type Id = { client: number; clock: number }
type Struct = { id: Id; length: number } & {
  origin?: Id | null
  rightOrigin?: Id | null
  parent?: Id | string | null
  content?: unknown
}

/**
 * What kind of struct `s` is, by class identity: a bundler renames classes (esbuild turns
 * Yjs's `Item` into `_Item`, or `t` when minifying), so `constructor.name` would make a
 * browser replica refuse every merge, incoming ones included, and desync at each checkpoint.
 */
const structKind = (s: unknown): "Item" | "GC" | "Skip" | undefined =>
  s instanceof Y.Item ? "Item" : s instanceof Y.GC ? "GC" : s instanceof Y.Skip ? "Skip" : undefined

const rootType = (doc: Y.Doc, kind: YKind): Y.AbstractType<any> =>
  kind === "text" ? doc.getText(ROOT.text) : kind === "map" ? doc.getMap(ROOT.map) : doc.getArray(ROOT.array)

const newDoc = (kind: YKind): Y.Doc => {
  // A fixed guid: nothing reads it (subdocuments are refused), and a random one costs ~0.3 ms
  // per field a replica opens (31 getRandomValues calls; bench/crdt-board.ts, a doc per card).
  const doc = new Y.Doc({ gc: true, guid: "canon-field" })
  // Formatting cleanup would make this replica write while merging (see above).
  doc.on("afterTransaction", (tr: Y.Transaction) => {
    (tr as unknown as { _needFormattingCleanup: boolean })._needFormattingCleanup = false
  })
  rootType(doc, kind)
  return doc
}

/**
 * What a field's structs hold beyond themselves, one per value of a list or map entry (a run of
 * them is one struct: `{}` took 68 bytes of heap apiece, a review) and per 128 bytes of text or
 * bytes (a paste is one struct): counted whole once on the hub (`weight`), then added up per merge.
 */
const heldContent = (doc: Y.Doc): number => {
  let n = 0
  for (const list of doc.store.clients.values()) {
    for (const s of list) {
      const c = (s as Y.Item).content
      if (c instanceof Y.ContentAny) n += c.getLength()
      else if (c instanceof Y.ContentString) n += (c as unknown as { str: string }).str.length >> 7
      else if (c instanceof Y.ContentBinary) n += (c as unknown as { content: Uint8Array }).content.length >> 7
    }
  }
  return n
}

class YField<H extends Y.AbstractType<any>> implements CrdtField<H> {
  broken = false
  /** heldContent, counted when the hub first asks (`weight`), then added up per merge. */
  private content: number | undefined
  private cachedHash: string | undefined
  private readonly listeners = new Set<(update: unknown) => void>()
  readonly handle: H

  constructor(
    readonly doc: Y.Doc,
    private readonly kind: YKind,
    /** The largest update the field takes (its byte limit): local changes are coalesced within it. */
    readonly maxUpdateBytes: number,
    /** Most structs the field may hold (what loads again: `checkFieldState`). */
    private readonly maxStructs: number,
    /** Yjs clientID -> the Canon clientId that owns it. */
    private readonly owners: Map<number, string>,
  ) {
    this.handle = rootType(doc, kind) as H
    doc.on("update", (update: Uint8Array, origin: unknown) => {
      this.cachedHash = undefined
      if (origin === CANON) return
      for (const fn of this.listeners) fn(update)
    })
  }

  validate(update: unknown, options: ValidateOptions): ValidateResult {
    if (!isBytes(update)) return crdtRejection("crdt-invalid", "A Yjs update must be bytes.")
    // This field's limits say what it accepts from now on, not what the authority ordered
    // (`trusted`, unless `local`), perhaps under larger ones: refusing that would drop
    // acknowledged changes, or leave this replica's field unlike every other.
    if (update.length > this.maxUpdateBytes && limited(options)) return crdtRejection("crdt-too-large", `The Yjs update has ${update.length} bytes; a field accepts at most ${this.maxUpdateBytes}.`)
    const seen: { deleteRanges: number; values?: number } = { deleteRanges: 0 }
    const structs = countV1Structs(update, MAX_UPDATE_STRUCTS, seen)
    if (typeof structs === "string") return crdtRejection("crdt-invalid", structs)
    if (structs === undefined) return crdtRejection("crdt-too-large", `The Yjs update holds more than ${MAX_UPDATE_STRUCTS} structs; a field accepts at most that many in one update.`)
    // What is accepted must load again, everywhere (a stored state past the bound is refused
    // at load: the document could no longer be opened). At most: the update's structs, one
    // split of an existing struct for each (an insert inside an item), two for each deleted range.
    const added = 2 * structs + 2 * seen.deleteRanges
    let after = weighedStructs(this.doc) + added
    // The held types' tally is an upper bound: counted again before it refuses anything.
    if (after > Math.min(this.maxStructs, MAX_FIELD_STRUCTS)) after = weighedStructs(this.doc, true) + added
    const bound = after > this.maxStructs && limited(options) ? this.maxStructs : MAX_FIELD_STRUCTS
    if (after > bound) {
      return crdtRejection("crdt-too-large", `The Yjs field would hold up to ${after} structs, more than a field may (${bound}); split the data over more fields or documents.`)
    }
    let decoded: { structs: Struct[]; ds: { clients: Map<number, Array<{ clock: number; len: number }>> } }
    try {
      decoded = Y.decodeUpdate(update) as unknown as typeof decoded
    } catch (e) {
      return crdtRejection("crdt-invalid", `The bytes are not a Yjs V1 update (${e instanceof Error ? e.message : String(e)}).`)
    }
    const unsupported = unsupportedStructs(decoded)
    if (unsupported !== undefined) return crdtRejection("crdt-invalid", unsupported)
    const clients: number[] = []
    // Per client: [first clock, end clock) written by this update (structs come in clock order).
    const ranges = new Map<number, [number, number]>()
    for (const s of decoded.structs) {
      const name = structKind(s)
      const { client, clock } = s.id
      if (name === "Skip") {
        if (!options.trusted) return crdtRejection("crdt-missing-deps", `The update skips clocks of client ${client} from ${clock}.`)
        continue
      }
      if (name === undefined) return crdtRejection("crdt-invalid", "The update holds a struct that is not a Yjs Item, GC or Skip.")
      const r = ranges.get(client)
      if (r === undefined) {
        ranges.set(client, [clock, clock + s.length])
        clients.push(client)
      } else if (r[1] === clock) {
        r[1] = clock + s.length
      } else if (!options.trusted) {
        return crdtRejection("crdt-missing-deps", `The update skips clocks of client ${client} from ${r[1]} to ${clock}.`)
      }
      if (name === "Item") {
        if (typeof s.parent === "string" && s.parent !== ROOT[this.kind]) {
          return crdtRejection("crdt-invalid", `The update writes the root type "${s.parent}"; this ${this.kind} field has only "${ROOT[this.kind]}".`)
        }
      }
    }
    if (options.trusted) {
      // Ordered by the authority, but a hostile hub orders what it likes: the depth bound
      // still holds (5,000 nested maps would break every toJSON() of the field for good).
      const deep = typesTooDeep(decoded, this.doc)
      if (deep !== undefined) return crdtRejection(deep.reason === "missing" ? "crdt-missing-deps" : "crdt-invalid", deep.message)
      let whole = false
      if (options.foreign !== undefined) {
        // On a replica: another writer's update must integrate whole, as the hub checked it
        // against what this replica has; Yjs would hold the rest pending for as long as the
        // field lives (in no hash), re-merging it at every update. This replica's own may
        // wait there for a tombstone. (What the origin check adds is left to the hub.)
        const cannot = notIntegrable(update, decoded, (client) => Y.getState(this.doc.store, client))
        if (cannot !== undefined && options.foreign()) return crdtRejection(cannot.reason === "missing" ? "crdt-missing-deps" : "crdt-invalid", cannot.message)
        whole = cannot === undefined
      }
      return { ok: true, update: this.validated(update, clients, options, false, whole) }
    }

    const sv = Y.decodeStateVector(Y.encodeStateVector(this.doc))
    for (const [client, [from, to]] of ranges) {
      const owner = this.owners.get(client)
      if (owner !== undefined && owner !== options.clientId) {
        return crdtRejection("crdt-not-owner", `Yjs client ${client} belongs to another Canon client; use a Y.Doc clientID of your own.`)
      }
      const known = sv.get(client) ?? 0
      if (from < known) return crdtRejection("crdt-equivocation", `The update rewrites clocks ${from}..${Math.min(to, known) - 1} of Yjs client ${client}, which the field has.`)
      if (from > known) return crdtRejection("crdt-missing-deps", `Yjs client ${client} from clock ${known} is missing (the update starts at ${from}).`)
    }
    // Every origin, parent and deleted range present, no cycle inside the update: Yjs
    // integrates all of it (nothing held pending, which would let the same IDs be written again).
    const cannot = notIntegrable(update, decoded, (client) => sv.get(client) ?? 0, this.doc)
    if (cannot !== undefined) return crdtRejection(cannot.reason === "missing" ? "crdt-missing-deps" : "crdt-invalid", cannot.message)
    // No content (tombstone.ts): a tombstone (deleted items and GC ranges, no deletions) or a
    // deletion (a delete set, no structs).
    const deletes = onlyDeletes(decoded)
    const checked = this.validated(update, clients, options, true, true, deletes || onlyPlaces(decoded))
    const withSet: Validated = deletes ? { ...checked, deletes: decoded.ds.clients } : decoded.ds.clients.size > 0 ? { ...checked, alsoDeletes: decoded.ds.clients } : checked
    const weighed: Validated = { ...withSet, added, content: (seen.values ?? 0) + (update.length >> 7) }
    return { ok: true, update: weighed }
  }

  private validated(bytes: Uint8Array, clients: number[], options: ValidateOptions, untrusted: boolean, whole: boolean, fills = false): Validated {
    return { __validated: true, bytes, clients, owner: options.clientId, untrusted, whole, fills }
  }

  fills(update: ValidatedUpdate): boolean {
    return (update as Validated).fills === true
  }

  weight(): number {
    this.content ??= heldContent(this.doc)
    return weighedStructs(this.doc) + this.content
  }

  weighs(update: ValidatedUpdate): number {
    const v = update as Validated
    return (v.added ?? 0) + (v.content ?? 0)
  }

  growth(update: ValidatedUpdate): number | undefined {
    const deletes = (update as Validated).deletes
    return deletes === undefined ? undefined : deletionGrowth(this.doc, deletes, (update as Validated).bytes.length)
  }

  extraGrowth(update: ValidatedUpdate): number {
    const deletes = (update as Validated).alsoDeletes
    // Its bytes are charged already (for its content): the deletions' own are not counted again.
    return deletes === undefined ? 0 : Math.max(0, deletionGrowth(this.doc, deletes, 0))
  }

  apply(batch: ReadonlyArray<ValidatedUpdate>): void {
    for (const u of batch as ReadonlyArray<Validated>) {
      const sv = u.untrusted ? Y.encodeStateVector(this.doc) : undefined
      // Found whole on a replica holding nothing pending: nothing may be held after it either.
      const nonePending = !u.untrusted && u.whole && !holdsPending(this.doc)
      try {
        Y.applyUpdate(this.doc, u.bytes, CANON)
        if (nonePending && holdsPending(this.doc)) throw new Error("Yjs held part of an ordered update that was found integrable.")
        if (sv !== undefined) {
          // validate() makes this unreachable; if Yjs disagrees, the field is reloaded.
          if (holdsPending(this.doc)) throw new Error("Yjs held part of an update that validation found integrable.")
          // Where a poisoned document shows: it can no longer encode its delete set.
          Y.encodeStateAsUpdate(this.doc, sv)
        }
      } catch (e) {
        this.broken = true
        throw e
      }
      for (const c of u.clients) if (!this.owners.has(c)) this.owners.set(c, u.owner)
      if (this.content !== undefined) this.content += u.content ?? 0
    }
  }

  hash(): string {
    return (this.cachedHash ??= hashBytes(Y.encodeSnapshotV2(Y.snapshot(this.doc))))
  }

  encode(): Uint8Array {
    const owners = [...this.owners].sort((a, b) => a[0] - b[0])
    return encodeCanonical([ENCODING, encodeIntegratedV2(this.doc), owners])
  }

  onLocalChange(listener: (update: unknown) => void): () => void {
    this.listeners.add(listener)
    return () => this.listeners.delete(listener)
  }

  coalesce(updates: ReadonlyArray<unknown>): unknown {
    return updates.length === 1 ? updates[0] : Y.mergeUpdates(updates as Uint8Array[])
  }

  tombstone(update: unknown, dependents?: ReadonlyArray<unknown>): unknown {
    return tombstoneOf(this.doc, update, dependents)
  }

  dependsOn(update: unknown, refused: unknown): boolean {
    return dependsOn(update, refused)
  }

  destroy(): void {
    this.listeners.clear()
    this.doc.destroy()
  }
}

export interface YFieldOptions extends CrdtLimits {
  /**
   * Most structs the field may hold: an update that could take it past is refused
   * (`crdt-too-large`). Default and most MAX_FIELD_STRUCTS (2^22); a lower one on the hub and
   * the replicas keeps fields smaller. What is stored or logged under a higher one still loads
   * (a state past MAX_FIELD_STRUCTS does not).
   */
  readonly maxStructs?: number
}

/**
 * The hub work of an update, in estimated µs, from its bytes (`countV1Structs`, as `validate`
 * bounds it): validating and merging cost about 1 µs a byte on the machine measured (12,000
 * typed characters, 204 KB, 0.16-0.21 s; 8,000 deleted ranges in 176 KB, 0.2 s), plus the
 * per-struct and per-range costs the hub's whole documents weigh (2 and 9 µs). What
 * `validate` refuses before decoding weighs only its length.
 */
const weighUpdate = (update: unknown, maxBytes: number): number => {
  if (!isBytes(update)) return 0
  if (update.length > maxBytes) return 0
  const seen = { deleteRanges: 0 }
  const structs = countV1Structs(update, MAX_UPDATE_STRUCTS, seen)
  return update.length + (typeof structs === "number" ? 2 * structs + 9 * seen.deleteRanges : 0)
}

/**
 * Most structs a field's stored or snapshot state may hold (2^22, a shared type weighing 4):
 * loading costs about 1-5 µs and 140 bytes a struct, so a few seconds and ~600 MB at most.
 * No bound relative to the state's bytes is sound: V2 run-length columns hold an honest text
 * typed backwards and deleted, 100,000 structs, in 50 bytes. So the bound is absolute, and
 * larger than one update's (MAX_UPDATE_STRUCTS, 2^18: a field accumulates updates). Every
 * struct reaches a field in a V1 update of at most `maxUpdateBytes`, where it takes about 10
 * bytes (a character with its origin; GC structs, 2 bytes, merge when adjacent), so an honest
 * field gets here only after some 40 MB of updates, 160 of the largest: past what a CRDT
 * field is meant to carry (split such data into documents or fields). A forged V2 state
 * claims 10^8 structs in 62 bytes.
 */
export const MAX_FIELD_STRUCTS = 1 << 22

/** Throws, with a sentence, unless `state` is a V2 update of at most `max` structs (countV2Structs, without decoding it). */
const checkFieldState = (state: Uint8Array, max: number): void => {
  const count = countV2Structs(state, max)
  if (count === undefined) throw new Error(`The Yjs state holds more than ${max} structs, more than a CRDT field may hold; it is not loaded (decoding it could exhaust memory).`)
  if (typeof count === "string") throw new Error(count)
}

/** The Yjs engine for one field kind. */

export const yjsEngine = <H extends Y.AbstractType<any>>(kind: YKind, options: YFieldOptions = {}): CrdtEngine<H> => {
  const max = options.maxUpdateBytes ?? DEFAULT_MAX_UPDATE_BYTES
  const maxStructs = options.maxStructs ?? MAX_FIELD_STRUCTS
  if (!Number.isSafeInteger(maxStructs) || maxStructs < 1 || maxStructs > MAX_FIELD_STRUCTS) {
    throw new TypeError(`maxStructs must be a whole number from 1 to ${MAX_FIELD_STRUCTS}, not ${String(options.maxStructs)}.`)
  }
  return {
    kind: `yjs-${kind}/1`,
    args: Schema.Uint8Array as unknown as Schema.Codec<unknown, unknown>,
    create: () => new YField<H>(newDoc(kind), kind, max, maxStructs, new Map()),
    weigh: (update) => weighUpdate(update, max),
    load: (bytes) => {
      const v = decodeCanonical(bytes) as unknown
      if (!Array.isArray(v) || v[0] !== ENCODING || !isBytes(v[1]) || !Array.isArray(v[2])) throw new Error("Not a Canon Yjs field encoding.")
      const owners = new Map<number, string>()
      for (const o of v[2] as unknown[]) {
        if (!Array.isArray(o) || typeof o[0] !== "number" || typeof o[1] !== "string") throw new Error("Bad ownership table.")
        owners.set(o[0], o[1])
      }
      const doc = newDoc(kind)
      // Snapshots come from the authority's own encoding (verified by hash), hence V2; a
      // hostile hub's too (a hash only says the bytes are the ones it meant): counted first,
      // against the bound of what loads safely (a lower `maxStructs` is what the field accepts
      // from now on: a state stored under a higher one still loads).
      checkFieldState(v[1], MAX_FIELD_STRUCTS)
      try {
        Y.applyUpdateV2(doc, v[1], CANON)
        // An older hub's snapshot may hold structs Yjs could not integrate: they are in no hash.
        dropPending(doc)
        // Into a document nobody reads yet: too deep, it is dropped before the app sees it.
        const deep = docTooDeep(doc)
        if (deep !== undefined) throw new Error(`${deep} The state is not loaded.`)
      } catch (e) {
        doc.destroy()
        throw e
      }
      return new YField<H>(doc, kind, max, maxStructs, owners)
    },
  }
}
