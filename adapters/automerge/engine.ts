/**
 * The Automerge engine of a CRDT field (core/crdt/engine.ts). An update is a list of
 * Automerge changes (the bytes of `getLastLocalChange`, or several coalesced).
 *
 * Untrusted input (research notes, D.3): every change is decoded with `decodeChange` before
 * anything touches the document (it validates and gives hash, actor, seq and deps); the
 * actor must belong to the sending Canon client (the first client to use an actor owns it),
 * its seq must follow the actor's last one (a reused seq with other content is
 * equivocation), and every dependency must be known or earlier in the same update, else the
 * update is refused with `crdt-missing-deps` naming the missing hashes: never held silently
 * (Automerge would keep it pending and never tell). On a replica, another writer's change the
 * hub ordered (`trusted`) is refused so too (ValidateOptions `foreign`), not its own (which may
 * wait behind a refused change). A throw from `applyChanges` breaks the field, which is then
 * reloaded.
 *
 * What the ops do is checked too (validate.ts): before decoding, the work a change stands for is
 * bounded by counting its column runs (`maxUpdateOps`; compressed or deflated chunks, which
 * an honest Automerge never sends as a change, are refused); an untrusted change must then
 * start above every op counter of its history (`crdt-equivocation` otherwise), and every op
 * must name an existing object of the right type, existing elements and preds of the same
 * object and key (`crdt-invalid` otherwise). The index this needs is built on the first
 * untrusted check (the hub) and kept up to date by `apply`.
 *
 * A field's state (`load`: a hub's snapshot on a client, a stored state) is measured the same
 * way before Automerge decodes it, against bounds for a whole field (MAX_FIELD_OPS and the
 * others below); the hub keeps every field within them, so what it accepted always loads.
 *
 * Determinism: `save()` differs between arrival orders but the heads do not (sorted SHA-256
 * change hashes, committing to the whole history), so the field hash is the hash of the
 * sorted heads; snapshots carry the save, its columns plain (validate.ts `savePlain`). The
 * initial content is one change made with a fixed actor and time 0, so every replica starts
 * from the same history.
 */
import * as A from "@automerge/automerge"
import * as Schema from "effect/Schema"
import { decodeCanonical, encodeCanonical, isBytes } from "../../core/canonical.js"
import { hashBytes } from "../../core/hash.js"
import { hexOf } from "../../core/bytes.js"
import { limited } from "../../core/crdt/engine.js"
import { CHUNK_CHANGE, CHUNK_DOCUMENT, MAX_ACTOR_BYTES, OpIndex, Overlay, countersBelow, measureChunk, savePlain, saveReloads } from "./validate.js"
import { inflateRawBounded } from "./inflate.js"
import { updateGrowth } from "./growth.js"
import { coveredBy, remakeWithout } from "./remake.js"
import {
  DEFAULT_MAX_UPDATE_BYTES, crdtRejection,
  type CrdtEngine, type CrdtField, type CrdtLimits, type ValidateOptions, type ValidateResult, type ValidatedUpdate,
} from "../../core/crdt/engine.js"

const ENCODING = "a1"
/** The actor of the initial change, the same on every replica. */
const INITIAL_ACTOR = "00000000000000000000000000000000"
/** Changes in one update. */
const MAX_CHANGES = 4096

const tooManyOps = (max: number): ValidateResult => crdtRejection("crdt-too-large", `The Automerge update decodes to more than ${max} ops; a field accepts at most that many.`)
/*
 * Ops (or preds) one update may decode to, by default: one per byte of the byte limit. An
 * honest insert costs at least a byte (its value), so insert-only updates under the byte limit
 * are never refused; a delete costs almost nothing (100,000 deleted characters are a 135-byte
 * change) and `decodeChange` costs ~10 µs per op, so deleting more than this in one change is
 * refused like an over-large change.
 */

/*
 * Bounds on a field's saved state (`encode()`'s bytes, from a hub's snapshot or a store),
 * measured before Automerge loads it (`measureChunk`: column runs counted, deflated columns
 * inflated under the byte bound). A.load costs 1-6 µs an op or successor and 5 µs a change
 * on the machine measured, and run-length columns make them free to send: a 1 KB document of
 * 1,000,000 list elements inserted and deleted took 3.7-7.3 s and 233 MB to load, 16,000,000
 * characters (70 KB) 22 s, 300,000 empty changes (208 bytes) 1 s. Within these bounds a load
 * is about 3 s at most there (500,000 elements inserted then deleted, 2^20 as measured: 2-3 s;
 * 100,000 one-keystroke changes took 1.2 s, so 2^18 about 3). Honest fields pass well below:
 * the automerge-paper trace (182,000 inserts, 77,000 deletes) would measure about 260,000.
 * The hub refuses an update that would take a field past them (`crdt-too-large`, see
 * FieldSize), so a field never grows out of its own snapshots.
 */
/** Most ops (successors counted twice, as `measureChunk` counts them) a field's state may decode to. */
export const MAX_FIELD_OPS = 1 << 20
/** Most changes (or dependency entries) a field's state may hold. */
export const MAX_FIELD_CHANGES = 1 << 18
/**
 * Most bytes a field's state may be with its deflated columns inflated: memory, not time
 * (a 16 MB value loads in 0.2 s), as large as snapshots a client takes by default allow for.
 */
export const MAX_FIELD_BYTES = 256 << 20

/**
 * What a field's `save()` measures to at most, kept as changes are applied: the bound the hub
 * holds updates to, so that what it accepts always loads. An estimate from above (exact after
 * a load): a change adds its ops that are not deletes, each pred becomes a successor of the
 * op it names, a change and each dependency are entries of the change columns, and each op or
 * entry costs at most 64 bytes of columns besides the change's own bytes (values, keys).
 */
interface FieldSize {
  /** Ops stored (deletes are successors, not ops, in a saved document). */
  stored: number
  succs: number
  changes: number
  bytes: number
}

const measuredOps = (s: FieldSize): number => Math.max(s.stored, s.succs) + s.succs

/**
 * What a field of this size holds in memory, in ops and changes, and its bytes one per 128
 * (CrdtField `weight`: about 300 bytes each on the hub, its index included; a value of 200 KB
 * is one op, a review).
 */
const weightOf = (s: FieldSize): number => measuredOps(s) + s.changes + Math.ceil(s.bytes / 128)

/** The bounds of a field's state (AutomergeFieldOptions.maxState). */
export interface FieldStateBounds {
  readonly ops: number
  readonly changes: number
  readonly bytes: number
}

const DEFAULT_STATE_BOUNDS: FieldStateBounds = { ops: MAX_FIELD_OPS, changes: MAX_FIELD_CHANGES, bytes: MAX_FIELD_BYTES }

/** Why a field of this size may not be loaded, or undefined. */
const oversize = (s: FieldSize, b: FieldStateBounds): string | undefined =>
  measuredOps(s) > b.ops ? `more than ${b.ops} ops`
  : s.changes > b.changes ? `more than ${b.changes} changes`
  : s.bytes > b.bytes ? `more than ${b.bytes} bytes`
  : undefined

/** `size` grown by a change (its decoded form and byte length). */
const grow = (size: FieldSize, c: A.DecodedChange, length: number): void => {
  let preds = 0, dels = 0
  for (const o of c.ops) {
    preds += o.pred.length
    if (o.action === "del") dels++
  }
  size.stored += c.ops.length - dels
  size.succs += preds
  size.changes += Math.max(1, c.deps.length)
  size.bytes += 2 * length + 64 * (c.ops.length + preds + 1 + c.deps.length)
}

/**
 * The size of a field's saved state (`measureChunk` bounded by the limits above), or why it
 * may not be loaded. Concatenated change chunks (encode's fallback) do not tell ops from
 * preds: both are taken at the whole count.
 */
const measureState = (saved: Uint8Array, b: FieldStateBounds): FieldSize | string => {
  const m = measureChunk(saved, { maxOps: b.ops, maxInflatedBytes: b.bytes, inflate: inflateRawBounded })
  if (!m.ok) return m.message
  const size = m.type === CHUNK_DOCUMENT && m.chunks === 1
    ? { stored: m.ops - m.succs, succs: m.succs, changes: m.changes, bytes: m.bytes }
    : { stored: m.ops, succs: m.ops, changes: m.changes, bytes: m.bytes }
  return oversize(size, b) ?? size
}

interface Validated extends ValidatedUpdate {
  readonly changes: ReadonlyArray<Uint8Array>
  /** The decoded changes. */
  readonly meta: ReadonlyArray<A.DecodedChange>
  readonly owner: string
  /** The changes as checked against the index (untrusted), to commit once applied. */
  readonly overlay?: Overlay
  /** Untrusted: the ops and changes it adds (see `weighs`). */
  readonly added?: number
}

const randomActor = (): string => {
  const b = new Uint8Array(16)
  globalThis.crypto.getRandomValues(b)
  return hexOf(b)
}

/** The live handle the app edits: `handle.doc` is the current document, `change(fn)` edits it. */
export class AutomergeHandle<T> {
  private current: A.Doc<T>
  private readonly watchers = new Set<(doc: A.Doc<T>) => void>()
  /** @internal the field listens here for local changes */
  readonly local = new Set<(changes: Uint8Array[]) => void>()

  constructor(doc: A.Doc<T>) {
    this.current = doc
  }

  /** The current document (an immutable Automerge value: read `handle.doc` again after a change). */
  get doc(): A.Doc<T> {
    return this.current
  }

  /** Edits the document; the change becomes the field's merge command. */
  change(fn: A.ChangeFn<T>): void {
    const next = A.change(this.current, fn)
    if (next === this.current) return
    const change = A.getLastLocalChange(next)
    this.current = next
    // The field hears of it before the app's watchers: one reading `doc.pendingCount` there
    // counts it, and one that throws does not keep it from becoming a merge command.
    if (change !== undefined) for (const l of this.local) l([change])
    this.set(next)
  }

  /** Called after every change, local or merged. */
  onChange(fn: (doc: A.Doc<T>) => void): () => void {
    this.watchers.add(fn)
    return () => this.watchers.delete(fn)
  }

  /** @internal */
  set(doc: A.Doc<T>): void {
    this.current = doc
    for (const w of this.watchers) w(doc)
  }
}

/** A text field's handle: `text`, and `splice` for edits. */
export class AutomergeTextHandle extends AutomergeHandle<{ text: string }> {
  get text(): string {
    return this.doc.text
  }

  /** Deletes `del` characters at `index` and inserts `insert` there. */
  splice(index: number, del: number, insert?: string): void {
    this.change((d) => {
      A.splice(d, ["text"], index, del, insert)
    })
  }
}

class AmField<T, H extends AutomergeHandle<T>> implements CrdtField<H> {
  broken = false
  private cachedHash: string | undefined
  /** encode()'s bytes until the field or its owners change: a save() and its reload check are O(document). */
  private cachedEncoding: Uint8Array | undefined
  /** What validation needs of the document (built on the first untrusted check). */
  private index: OpIndex | undefined
  private readonly listeners = new Set<(update: unknown) => void>()
  private readonly stopLocal: () => void

  constructor(
    readonly handle: H,
    /** The largest update the field takes (its byte limit): local changes are coalesced within it. */
    readonly maxUpdateBytes: number,
    private readonly maxOps: number,
    /** Automerge actor -> the Canon clientId that owns it. */
    private readonly owners: Map<string, string>,
    /** What the field's `save()` measures to at most (see FieldSize). */
    private readonly size: FieldSize,
    private readonly bounds: FieldStateBounds,
  ) {
    const onLocal = (changes: Uint8Array[]) => {
      this.cachedHash = undefined
      this.cachedEncoding = undefined
      for (const fn of this.listeners) fn(changes)
    }
    handle.local.add(onLocal)
    this.stopLocal = () => handle.local.delete(onLocal)
  }


  validate(update: unknown, options: ValidateOptions): ValidateResult {
    if (!Array.isArray(update) || update.length === 0 || !update.every(isBytes)) return crdtRejection("crdt-invalid", "An Automerge update must be a non-empty list of changes (bytes).")
    if (update.length > MAX_CHANGES) return crdtRejection("crdt-too-large", `The update has ${update.length} changes; at most ${MAX_CHANGES}.`)
    let total = 0
    for (const c of update as Uint8Array[]) total += c.length
    // This field's update limits say what it accepts from now on, not what the authority ordered
    // (`trusted`, unless `local`), perhaps under larger ones: refusing that would drop
    // acknowledged changes. The field's state bounds (in its kind: every peer has them) hold.
    if (total > this.maxUpdateBytes && limited(options)) return crdtRejection("crdt-too-large", `The Automerge update has ${total} bytes; a field accepts at most ${this.maxUpdateBytes}.`)
    // Bound the decoded work before decoding: RLE columns make a 135-byte change 100,000 ops.
    const maxOps = options.trusted ? Math.max(this.maxOps, this.bounds.ops) : this.maxOps
    let ops = 0
    for (const c of update as Uint8Array[]) {
      // A peer's actor ids are bounded too (every op id names one: MAX_ACTOR_BYTES); ordered ones judged by none.
      const m = measureChunk(c, { maxOps: maxOps - ops, maxInflatedBytes: 0, ...(limited(options) ? { maxActorBytes: MAX_ACTOR_BYTES } : {}) })
      if (!m.ok) return m.tooLarge
        ? tooManyOps(maxOps)
        : crdtRejection("crdt-invalid", `A change is not an uncompressed Automerge change (${m.message}).`)
      if (m.type !== CHUNK_CHANGE || m.changes !== 1) return crdtRejection("crdt-invalid", "A change is not one uncompressed Automerge change chunk.")
      ops += m.ops
    }
    if (ops > this.maxOps && limited(options)) return tooManyOps(this.maxOps)
    const meta: A.DecodedChange[] = []
    for (const c of update as Uint8Array[]) {
      try {
        const d = A.decodeChange(c)
        if (typeof d.hash !== "string") throw new Error("no hash")
        meta.push(d)
      } catch (e) {
        return crdtRejection("crdt-invalid", `A change is not an Automerge change (${e instanceof Error ? e.message : String(e)}).`)
      }
    }
    const changes = update as Uint8Array[]
    if (options.trusted) {
      if (options.foreign !== undefined) {
        // On a replica: another writer's changes must merge whole, as the hub checked them
        // against what this replica has; Automerge would queue one whose dependencies are
        // missing, silently, for as long as the field lives (the heads do not show it). This
        // replica's own may wait (what came after a refused change, until it is made again).
        const doc = this.handle.doc
        const here = new Set<string>()
        for (const m of meta) here.add(m.hash)
        for (const m of meta) {
          const missing = m.deps.filter((h) => !here.has(h) && !A.hasHeads(doc, [h]))
          if (missing.length === 0) continue
          if (!options.foreign()) break
          return crdtRejection("crdt-missing-deps", `Change ${m.hash.slice(0, 12)} depends on changes the field does not have: ${missing.join(", ")}.`)
        }
      }
      return { ok: true, update: { __validated: true, changes, meta, owner: options.clientId } as Validated }
    }

    const doc = this.handle.doc
    const index = (this.index ??= OpIndex.of(doc))
    const overlay = new Overlay(index)
    const seqs = new Map<string, number>()
    const here = new Set<string>()
    const below = countersBelow(meta)
    for (let i = 0; i < meta.length; i++) {
      const m = meta[i]!
      const owner = this.owners.get(m.actor)
      if (owner !== undefined && owner !== options.clientId) return crdtRejection("crdt-not-owner", `Automerge actor ${m.actor} belongs to another Canon client; use an actor of your own.`)
      if (m.actor === INITIAL_ACTOR) return crdtRejection("crdt-not-owner", "The initial actor writes only the initial content.")
      if (here.has(m.hash) || A.hasHeads(doc, [m.hash])) continue // known: merging it again is a no-op
      const last = seqs.get(m.actor) ?? index.actors.get(m.actor)?.seq ?? 0
      if (m.seq <= last) return crdtRejection("crdt-equivocation", `Automerge actor ${m.actor} already has a change ${m.seq} with other content.`)
      const missing = m.deps.filter((h) => !here.has(h) && !A.hasHeads(doc, [h]))
      if (missing.length > 0 || m.seq !== last + 1) {
        return crdtRejection("crdt-missing-deps", `Change ${m.hash.slice(0, 12)} depends on changes the field does not have: ${missing.length > 0 ? missing.join(", ") : `seq ${last + 1} of actor ${m.actor}`}.`)
      }
      const verdict = overlay.check(m, below[i])
      if (verdict !== undefined) return crdtRejection(verdict.clock ? "crdt-equivocation" : "crdt-invalid", `${verdict.message}: not what Automerge makes.`)
      seqs.set(m.actor, m.seq)
      here.add(m.hash)
    }
    // What is accepted must load again, everywhere: the field stays within the load bounds.
    const after = { ...this.size }
    meta.forEach((m, i) => {
      if (here.has(m.hash)) grow(after, m, changes[i]!.length)
    })
    const over = oversize(after, this.bounds)
    if (over !== undefined) return crdtRejection("crdt-too-large", `The Automerge field would hold ${over}, more than a field may (its snapshots could not be loaded); split the data over more fields or documents.`)
    const added = weightOf(after) - this.weight()
    return { ok: true, update: { __validated: true, changes, meta, owner: options.clientId, overlay, added } as Validated }
  }

  weight(): number {
    return weightOf(this.size)
  }

  weighs(update: ValidatedUpdate): number {
    return (update as Validated).added ?? 0
  }

  extraGrowth(update: ValidatedUpdate): number {
    const v = update as Validated
    // Untrusted updates only (the hub's), weighed on the field's index: their overlay holds them
    // already, so an object they make would look as if it had rows of its own.
    if (v.overlay === undefined || this.index === undefined) return 0
    const doc = this.handle.doc
    return updateGrowth(v.meta.filter((m) => !A.hasHeads(doc, [m.hash])), this.index)
  }

  apply(batch: ReadonlyArray<ValidatedUpdate>): void {
    const doc = this.handle.doc
    this.cachedEncoding = undefined // owners may change even when no change is new
    const fresh: Uint8Array[] = []
    // One applyChanges per batch: much of its cost is per call; known changes are skipped.
    for (const u of batch as ReadonlyArray<Validated>) {
      u.changes.forEach((c, i) => {
        if (!A.hasHeads(doc, [u.meta[i]!.hash])) {
          fresh.push(c)
          grow(this.size, u.meta[i]!, c.length)
        }
      })
    }
    if (fresh.length > 0) {
      let next: A.Doc<T>
      try {
        ;[next] = A.applyChanges(doc, fresh)
      } catch (e) {
        this.broken = true
        throw e
      }
      this.cachedHash = undefined
      this.handle.set(next)
    }
    const index = this.index
    for (const u of batch as ReadonlyArray<Validated>) {
      for (const m of u.meta) {
        if (m.actor !== INITIAL_ACTOR && !this.owners.has(m.actor)) this.owners.set(m.actor, u.owner)
      }
      if (index === undefined) continue
      if (u.overlay?.base === index) u.overlay.commit()
      else {
        // Trusted (or checked against an older index): taken as they are.
        const o = new Overlay(index)
        for (const m of u.meta) if (!o.has(m.hash)) o.stage(m)
        o.commit()
      }
    }
  }

  hash(): string {
    return (this.cachedHash ??= hashBytes(encodeCanonical(["a", [...A.getHeads(this.handle.doc)].sort()])))
  }

  encode(): Uint8Array {
    return (this.cachedEncoding ??= this.encodeNow())
  }

  private encodeNow(): Uint8Array {
    const owners = [...this.owners].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))
    const doc = this.handle.doc
    // Plain columns: the state a document's bound measures (validate.ts savePlain).
    let saved = savePlain(doc)
    // Last line of defence: a save() that does not load back as the same document is never
    // handed out; the changes themselves are (A.load takes concatenated change chunks too).
    if (saveReloads(doc, saved) !== undefined) {
      const all = A.getAllChanges(doc)
      const joined = new Uint8Array(all.reduce((n, c) => n + c.length, 0))
      let at = 0
      for (const c of all) {
        joined.set(c, at)
        at += c.length
      }
      const why = saveReloads(doc, joined)
      if (why !== undefined) throw new Error(`The Automerge field cannot be encoded so that it loads again: ${why}.`)
      saved = joined
    }
    return encodeCanonical([ENCODING, saved, owners])
  }

  onLocalChange(listener: (update: unknown) => void): () => void {
    this.listeners.add(listener)
    return () => this.listeners.delete(listener)
  }

  coalesce(updates: ReadonlyArray<unknown>): unknown {
    return (updates as ReadonlyArray<Uint8Array[]>).flat()
  }

  remake(update: unknown, maxBytes: number): { readonly updates: ReadonlyArray<unknown>; readonly covered: unknown } | undefined {
    const r = remakeWithout(this.handle.doc, update, randomActor(), { bytes: maxBytes, ops: this.maxOps })
    if (r === undefined) return undefined
    this.cachedHash = undefined
    this.cachedEncoding = undefined
    this.index = undefined
    this.handle.set(r.doc)
    return { updates: r.changes.map((c) => [c]), covered: r.covered }
  }

  dependsOn(update: unknown, covered: unknown): boolean {
    return coveredBy(update, covered)
  }

  destroy(): void {
    this.listeners.clear()
    this.stopLocal()
  }
}

/**
 * The hub work of an update, in estimated µs, from its bytes (`measureChunk`, as `validate`
 * bounds it): validating and merging cost 18-43 µs an op on the machine measured (100,000
 * inserted characters 1.8 s; 100,000 deleted, 153 bytes, 2.8 s; 25,000 map puts 0.76 s; an
 * attack review's re-deletes 43 µs an op, median of 9). The estimate takes the cheap end, 20
 * an op (a paste is not charged twice its cost), plus 35 a change and 0.3 a byte: what it
 * misses (deletes, map ops deep in nested maps) the hub measures as the update merges and
 * charges after it (core/authority/crdt-work.ts). What `validate` refuses before decoding
 * weighs only what was read to refuse it.
 */
const weighUpdate = (update: unknown, maxBytes: number, maxOps: number): number => {
  if (!Array.isArray(update) || update.length > MAX_CHANGES || !update.every(isBytes)) return 0
  let bytes = 0
  for (const c of update as Uint8Array[]) bytes += c.length
  const micros = 35 * update.length + Math.ceil(0.3 * bytes)
  if (bytes > maxBytes) return micros
  let ops = 0
  for (const c of update as Uint8Array[]) {
    const m = measureChunk(c, { maxOps: maxOps - ops, maxInflatedBytes: 0 })
    if (!m.ok) break
    ops += m.ops
  }
  return micros + 20 * ops
}

export interface AutomergeFieldOptions extends CrdtLimits {
  /** Most ops (or preds) one update may decode to, counted before decoding. Default: one per byte of `maxUpdateBytes` (262,144). */
  readonly maxUpdateOps?: number
  /**
   * Most a field's state may hold (MAX_FIELD_OPS, MAX_FIELD_CHANGES, MAX_FIELD_BYTES by
   * default): a state past them is not loaded, and the hub refuses updates that would take
   * the field past them. Other bounds are part of the field's kind (peers must agree on them).
   */
  readonly maxState?: Partial<FieldStateBounds>
}

/**
 * The Automerge engine of a field starting as `initial` (plain data, the same on every
 * replica), with the handle `makeHandle` builds.
 */
export const automergeEngine = <T, H extends AutomergeHandle<T>>(
  kind: string,
  initial: T,
  makeHandle: (doc: A.Doc<T>) => H,
  options: AutomergeFieldOptions = {},
): CrdtEngine<H> => {
  const max = options.maxUpdateBytes ?? DEFAULT_MAX_UPDATE_BYTES
  const maxOps = options.maxUpdateOps ?? max
  const bounds: FieldStateBounds = { ...DEFAULT_STATE_BOUNDS, ...options.maxState }
  const custom = bounds.ops !== MAX_FIELD_OPS || bounds.changes !== MAX_FIELD_CHANGES || bounds.bytes !== MAX_FIELD_BYTES
  // The same first change everywhere: fixed actor, time 0.
  let base: Uint8Array | undefined
  let baseSize: FieldSize | undefined
  const initialSave = (): Uint8Array => {
    if (base === undefined) {
      const empty = A.init<T>({ actor: INITIAL_ACTOR })
      const keys = Object.keys(initial as object)
      const doc = keys.length === 0 ? empty : A.change(empty, { time: 0 }, (d) => {
        for (const k of keys) (d as Record<string, unknown>)[k] = (initial as Record<string, unknown>)[k]
      })
      base = savePlain(doc)
      const size = measureState(base, bounds)
      if (typeof size === "string") throw new TypeError(`The initial content of an Automerge field is too large: ${size}.`)
      baseSize = size
    }
    return base
  }
  return {
    kind: `automerge-${kind}/1:${JSON.stringify(initial)}${custom ? `;state<=${bounds.ops},${bounds.changes},${bounds.bytes}` : ""}`,
    args: Schema.Array(Schema.Uint8Array) as unknown as Schema.Codec<unknown, unknown>,
    create: () => new AmField<T, H>(makeHandle(A.load<T>(initialSave(), { actor: randomActor() })), max, maxOps, new Map(), { ...baseSize! }, bounds),
    weigh: (update) => weighUpdate(update, max, maxOps),
    load: (bytes) => {
      const v = decodeCanonical(bytes) as unknown
      if (!Array.isArray(v) || v[0] !== ENCODING || !isBytes(v[1]) || !Array.isArray(v[2])) throw new Error("Not a Canon Automerge field encoding.")
      const owners = new Map<string, string>()
      for (const o of v[2] as unknown[]) {
        if (!Array.isArray(o) || typeof o[0] !== "string" || typeof o[1] !== "string") throw new Error("Bad ownership table.")
        owners.set(o[0], o[1])
      }
      // From a hub's snapshot or a store: measured before Automerge decodes it.
      const size = measureState(v[1], bounds)
      if (typeof size === "string") throw new Error(`The Automerge state is not loaded: ${size} (a field holds at most ${bounds.ops} ops, ${bounds.changes} changes and ${bounds.bytes} bytes inflated).`)
      return new AmField<T, H>(makeHandle(A.load<T>(v[1], { actor: randomActor() })), max, maxOps, owners, size, bounds)
    },
  }
}
