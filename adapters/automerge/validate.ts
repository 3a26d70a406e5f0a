/**
 * What an honest Automerge would produce: the checks both Automerge paths (CRDT fields,
 * adapters/automerge/engine.ts; whole documents, adapters/automerge-server/engine.ts) run on
 * an untrusted change before `applyChanges` sees it. Automerge's own `decodeChange` and
 * `applyChanges` check the encoding, hash, actor, seq and deps, but not what the ops do: a
 * forged `pred` naming an op of another object, a `startOp` reusing op counters, or a map key
 * on a list op are all applied, and then `save()` no longer loads, or loads other content
 * with equal heads.
 *
 * Two parts:
 *
 * - `measureChunk(bytes)`: a bound on decoded work BEFORE decoding. Automerge's columns are
 *   run-length encoded (and may be deflated), so a 135-byte change can stand for 100,000
 *   ops, and `decodeChange` costs ~10 µs per op. The chunk's header and column metadata are
 *   parsed and every column's runs counted (O(bytes), nothing materialized); deflated data is
 *   inflated under a byte bound (only where an `inflate` is given: the hub in Node).
 * - `OpIndex` / `Overlay`: an incremental index of the document (op id -> object and key or
 *   element; object id -> type; change hash -> highest op counter in its history; actor ->
 *   last seq and op counter), so checking a change costs O(its ops + deps), not O(document).
 *
 * Not checked (not cheap): that an op a change references (obj, element, pred) is in the
 * change's dependency history rather than concurrent with it. Its counter must be below the
 * referencing op's, which keeps Automerge's Lamport order; a concurrent reference so named is
 * deterministic on every peer and survives save/load.
 */
import * as A from "@automerge/automerge"
import { opStringBytes } from "./growth.js"
import { ByteReader, hexOf } from "../../core/bytes.js"

// ---------------------------------------------------------------------------------------------
// Bounding decoded work

const MAGIC = [0x85, 0x6f, 0x4a, 0x83] as const
export const CHUNK_DOCUMENT = 0
export const CHUNK_CHANGE = 1
const CHUNK_COMPRESSED_CHANGE = 2

export interface MeasureLimits {
  /** Most entries any column may decode to (ops, preds, or changes of a document chunk). */
  readonly maxOps: number
  /** Most bytes inflating the chunk's deflated parts may produce. */
  readonly maxInflatedBytes: number
  /** Raw DEFLATE with a bound: the inflated bytes, or undefined when over `max`. Absent: deflated data is refused. */
  readonly inflate?: (data: Uint8Array, max: number) => Uint8Array | undefined
  /** Longest actor id, in bytes (MAX_ACTOR_BYTES for a peer's updates). Absent: any (stored ones). */
  readonly maxActorBytes?: number
}

/**
 * The longest actor id a peer's change may name, in bytes (Automerge makes 16). Every op's id
 * names its actor, and the hub's index keeps each id as a string: a review's change of 10,000
 * ops under a 16 KB actor took 26.5 KB and 1.2 GB of the hub's memory, and one of 1 MB crashed it.
 */
export const MAX_ACTOR_BYTES = 64

export type Measured =
  | {
    readonly ok: true; readonly type: number; readonly ops: number; readonly changes: number; readonly chunks: number
    /**
     * The changes the chunks encode, exactly (`changes` bounds work: a document chunk's
     * dependency column, one entry per dependency, outnumbers its changes once one merges).
     */
    readonly encodedChanges: number
    /** What there is to decode: the bytes and what their deflated parts inflate to. */
    readonly bytes: number
    /** Of `ops`, a document chunk's successors (counted twice there: see `columns`). */
    readonly succs: number
  }
  | { readonly ok: false; readonly tooLarge: boolean; readonly message: string }

class Bad extends Error {
  constructor(message: string, readonly tooLarge = false) {
    super(message)
  }
}

/** core/bytes.ts's reader (truncation, minimal LEB128 up to 2^53), plus Automerge's signed LEB128. */
class Reader extends ByteReader {
  sleb(): number {
    let v = 0, mul = 1, x = 0
    for (let i = 0; i < 10; i++) {
      x = this.byte()
      v += (x & 0x7f) * mul
      mul *= 128
      if ((x & 0x80) === 0) break
      if (i === 9) throw new Bad("integer too long")
    }
    if (x & 0x40) v -= mul
    if (!isSafeInteger(v)) throw new Bad("integer out of range")
    return v
  }
}

/** Entries a column decodes to, from its runs (type: the column spec's low 3 bits). */
const countColumn = (data: Uint8Array, type: number): number => {
  const r = new Reader(data)
  let n = 0
  if (type === 7) return 0 // raw value bytes: bounded by their length
  if (type === 4) {
    // boolean: alternating run lengths
    while (!r.done()) n += r.varint()
    return n
  }
  const value = type === 3 ? () => void r.sleb() : type === 5 ? () => void r.raw(r.varint()) : () => void r.varint()
  while (!r.done()) {
    const len = r.sleb()
    if (len > 0) {
      value()
      n += len
    } else if (len < 0) {
      for (let i = 0; i < -len; i++) value()
      n += -len
    } else n += r.varint()
  }
  return n
}

interface Budget {
  inflated: number
}

const inflateBounded = (data: Uint8Array, limits: MeasureLimits, budget: Budget): Uint8Array => {
  if (limits.inflate === undefined) throw new Bad("deflated data is not accepted here")
  const left = limits.maxInflatedBytes - budget.inflated
  const out = left < 0 ? undefined : limits.inflate(data, left)
  if (out === undefined) throw new Bad(`deflated data inflates to more than ${limits.maxInflatedBytes} bytes`, true)
  budget.inflated += out.length
  return out
}

/** A document's successor column (op counters): a delete is a successor there, not an op. */
const SUCC_COUNTER = (8 << 4) | 3

/**
 * Reads the columns that follow their metadata; returns the largest entry count among them,
 * plus (for a document's ops) the successors, which decode to delete ops of their own.
 */
const columns = (r: Reader, specs: Array<[number, number]>, limits: MeasureLimits, budget: Budget, succ?: { succs: number }, counts?: number[]): number => {
  let most = 0, succs = 0
  for (const [spec, len] of specs) {
    let data = r.raw(len)
    if (spec & 8) data = inflateBounded(data, limits, budget)
    const n = countColumn(data, spec & 7)
    counts?.push(n)
    if (n > most) most = n
    if (succ !== undefined && (spec & ~8) === SUCC_COUNTER) succs += n
    if (most + succs > limits.maxOps) throw new Bad(`the columns decode to more than ${limits.maxOps} entries`, true)
  }
  if (succ !== undefined) succ.succs += succs
  return most + succs
}

const columnSpecs = (r: Reader): Array<[number, number]> => {
  const count = r.varint()
  if (count > 64) throw new Bad("too many columns")
  const specs: Array<[number, number]> = []
  for (let i = 0; i < count; i++) specs.push([r.varint(), r.varint()])
  return specs
}

/** Column types (a spec's low 3 bits): a group column's entries count the entries its members hold for each row. */
const COLUMN_GROUP = 0

/**
 * The rows of a document's change columns: one per change. A column that is a member of a group
 * (its id is a group column's: the dependencies, the extra bytes) holds entries per dependency
 * or per byte instead, so the rows are the most any other column holds.
 */
const rowsOf = (specs: Array<[number, number]>, counts: number[]): number => {
  const groups = new Set(specs.filter(([spec]) => (spec & 7) === COLUMN_GROUP).map(([spec]) => spec >> 4))
  let rows = 0
  specs.forEach(([spec], i) => {
    if ((spec & 7) !== COLUMN_GROUP && groups.has(spec >> 4)) return
    rows = Math.max(rows, counts[i] ?? 0)
  })
  return rows
}

/** Skips an actor id, refusing one longer than the limits allow. */
const actor = (r: Reader, limits: MeasureLimits): void => {
  const length = r.varint()
  if (limits.maxActorBytes !== undefined && length > limits.maxActorBytes) throw new Bad(`an actor id of ${length} bytes (at most ${limits.maxActorBytes})`)
  r.raw(length)
}

const measureBody = (type: number, body: Uint8Array, limits: MeasureLimits, budget: Budget): { ops: number; changes: number; succs: number; encoded: number } => {
  const r = new Reader(body)
  if (type === CHUNK_CHANGE) {
    // The header as changeHeader reads it, skipped here without decoding (every submit is measured).
    const deps = r.varint()
    r.raw(deps * 32)
    actor(r, limits) // its actor
    r.varint() // seq
    r.varint() // startOp
    r.sleb() // time
    r.raw(r.varint()) // message
    const others = r.varint()
    if (others > body.length) throw new Bad("truncated")
    for (let i = 0; i < others; i++) actor(r, limits)
    const ops = columns(r, columnSpecs(r), limits, budget)
    return { ops, changes: 1, succs: 0, encoded: 1 }
  }
  // Document chunk: actors, heads, change columns, op columns.
  const actors = r.varint()
  if (actors > body.length) throw new Bad("truncated")
  for (let i = 0; i < actors; i++) actor(r, limits)
  r.raw(r.varint() * 32)
  const changeSpecs = columnSpecs(r)
  const opSpecs = columnSpecs(r)
  const counts: number[] = []
  // The largest column: a bound on the work (the dependencies of merges count).
  const changes = columns(r, changeSpecs, limits, budget, undefined, counts)
  const succ = { succs: 0 }
  const ops = columns(r, opSpecs, limits, budget, succ)
  return { ops, changes, succs: succ.succs, encoded: rowsOf(changeSpecs, counts) }
}

/**
 * The chunks of `bytes`, one after another (Automerge's sync sends several changes as change
 * chunks back to back in one element of a message's changes). Throws on bytes that are not
 * whole chunks.
 */
export const splitChunks = (bytes: Uint8Array): Array<{ readonly type: number; readonly bytes: Uint8Array }> => {
  const out: Array<{ type: number; bytes: Uint8Array }> = []
  const r = new Reader(bytes)
  while (!r.done()) {
    const start = r.pos
    for (const m of MAGIC) if (r.byte() !== m) throw new Error("not an Automerge chunk")
    r.raw(4) // checksum
    const type = r.byte()
    r.raw(r.varint())
    out.push({ type, bytes: bytes.subarray(start, r.pos) })
  }
  return out
}

/**
 * The deps, actor and seq of a change, read from its header without decoding its ops
 * (`decodeChange` takes ~27 µs an op: 0.2 s for a 7,000 character paste). Undefined if `bytes`
 * is not one uncompressed change chunk.
 */
export const changeHeader = (bytes: Uint8Array): ChangeHeader | undefined => {
  try {
    const r = new Reader(bytes)
    for (const m of MAGIC) if (r.byte() !== m) return undefined
    r.raw(4) // checksum
    if (r.byte() !== CHUNK_CHANGE) return undefined
    const body = new Reader(r.raw(r.varint()))
    return r.done() ? readHeader(body) : undefined
  } catch {
    return undefined
  }
}

export interface ChangeHeader {
  readonly deps: string[]
  readonly actor: string
  readonly seq: number
}

/** A change body's first fields (deps, actor, seq), leaving `r` after them. */
const readHeader = (r: Reader): ChangeHeader => {
  const deps: string[] = []
  for (let n = r.varint(); n > 0; n--) deps.push(hexOf(r.raw(32)))
  const actor = hexOf(r.raw(r.varint()))
  return { deps, actor, seq: r.varint() }
}

/**
 * The decoded work a chunk (a change, a compressed change, a document; several concatenated)
 * stands for, from its header and column runs, without decoding it.
 */
export const measureChunk = (bytes: Uint8Array, limits: MeasureLimits): Measured => {
  const budget: Budget = { inflated: 0 }
  let ops = 0, changes = 0, succs = 0, type = -1, chunks = 0, encodedChanges = 0
  try {
    const r = new Reader(bytes)
    if (r.done()) throw new Bad("empty")
    while (!r.done()) {
      for (const m of MAGIC) if (r.byte() !== m) throw new Bad("not an Automerge chunk")
      r.raw(4) // checksum
      const t = r.byte()
      const body = r.raw(r.varint())
      if (t > CHUNK_COMPRESSED_CHANGE) throw new Bad(`unknown chunk type ${t}`)
      if (type === -1) type = t
      chunks++
      const m = t === CHUNK_COMPRESSED_CHANGE
        ? measureBody(CHUNK_CHANGE, inflateBounded(body, limits, budget), limits, budget)
        : measureBody(t, body, limits, budget)
      ops += m.ops
      changes += m.changes
      encodedChanges += m.encoded
      succs += m.succs
      if (ops > limits.maxOps) throw new Bad(`more than ${limits.maxOps} ops`, true)
    }
  } catch (e) {
    if (e instanceof Bad) return { ok: false, tooLarge: e.tooLarge, message: e.message }
    return { ok: false, tooLarge: false, message: e instanceof Error ? e.message : String(e) }
  }
  return { ok: true, type, ops, changes, encodedChanges, chunks, bytes: bytes.length + budget.inflated, succs }
}

// ---------------------------------------------------------------------------------------------
// What the ops do

type ObjType = "map" | "list" | "text" | "table"

interface OpEntry {
  /** The object the op is in. */
  readonly obj: string
  /** Map ops: "k" + key; list ops: "e" + the element (an insert's own id). */
  readonly slot: string
  /** Whether it creates an element of a list or text. */
  readonly insert: boolean
}

interface ActorState {
  readonly seq: number
  readonly maxOp: number
}

// Builtins read per op are read once here (globals are slow inside a vm context; core/bytes.ts).
const { isSafeInteger } = Number
const { isArray } = Array
const { max } = Math
const toNumber = Number

const ROOT = "_root"
const HEAD = "_head"
const MAKES: Record<string, ObjType> = { makeMap: "map", makeList: "list", makeText: "text", makeTable: "table" }
/** The object type an op's action makes, if it makes one (own keys only: the action comes from a peer's change). */
const makes = (action: string): ObjType | undefined => (Object.hasOwn(MAKES, action) ? MAKES[action] : undefined)
/**
 * How deep objects may nest (the root is depth 0; a map in it, 1), as for Yjs
 * (adapters/yjs/integrable.ts): a chain of about 2,000 broke structuredClone of the value on
 * every replica, and one of 7,800 in one change aborted Automerge's WebAssembly, after which
 * every Automerge call of the process threw ("Module terminated").
 */
export const MAX_OBJECT_DEPTH = 128
/**
 * What a change's map ops may weigh, each its object's depth (at least 1): Automerge's JS
 * value costs about that per op (measured: 60,000 puts into one map took 1.3 s at depth 1 and
 * 42 s at depth 128), so a change within the op limit can still not keep a peer busy for long.
 */
export const MAX_MAP_DEPTH_WEIGHT = 1 << 19
const ACTIONS = new Set(["makeMap", "makeList", "makeText", "makeTable", "set", "del", "inc", "markBegin", "markEnd"])

const counterOf = (opId: string): number => {
  const at = opId.indexOf("@")
  const n = at > 0 ? toNumber(opId.slice(0, at)) : NaN
  return isSafeInteger(n) && n > 0 ? n : -1
}
/** The actor of an op id ("counter@actor"). */
const actorOf = (opId: string): string => opId.slice(opId.indexOf("@") + 1)

/** Why a change is refused: `clock` when it reuses seqs or op counters (equivocation), else its ops. */
export interface Verdict {
  readonly clock: boolean
  readonly message: string
}

/** Lookups both the index and an overlay answer. */
interface View {
  op(id: string): OpEntry | undefined
  obj(id: string): ObjType | undefined
  depth(id: string): number | undefined
  hmax(hash: string): number | undefined
  actor(a: string): ActorState | undefined
  /** The highest op counter of the document and what is staged on it. */
  top(): number
  /** The longest map key or mark name (UTF-8 bytes) of the document and what is staged on it (growth.ts). */
  longest(): number
  /** The longest key or mark name of an object's ops; undefined for an object without any. */
  longestIn(obj: string): number | undefined
}

/** The document as far as validation needs it. Built once from the document, then kept up to date. */
export class OpIndex implements View {
  readonly ops = new Map<string, OpEntry>()
  readonly objs = new Map<string, ObjType>([[ROOT, "map"]])
  readonly depths = new Map<string, number>([[ROOT, 0]])
  /** Change hash -> the highest op counter in the change and its history. */
  readonly historyMax = new Map<string, number>()
  readonly actors = new Map<string, ActorState>()
  /** The highest op counter of any change (see View). */
  topOp = 0
  /** The longest map key or mark name (see View). */
  longestString = 0
  /** Object -> the longest key or mark name of its ops (see View). */
  readonly objLongest = new Map<string, number>()
  /** Actor -> entries of a save's actor columns that may name it (see `refs`). */
  readonly actorRefs = new Map<string, number>()
  #sorted: string[] | undefined

  /** The index of a document: decodes every change (O(document), once). */
  static of(doc: A.Doc<unknown>): OpIndex {
    const index = new OpIndex()
    const o = new Overlay(index)
    for (const c of A.getAllChanges(doc)) o.stage(A.decodeChange(c))
    o.commit()
    return index
  }

  op(id: string): OpEntry | undefined {
    return this.ops.get(id)
  }
  obj(id: string): ObjType | undefined {
    return this.objs.get(id)
  }
  depth(id: string): number | undefined {
    return this.depths.get(id)
  }
  hmax(hash: string): number | undefined {
    return this.historyMax.get(hash)
  }
  actor(a: string): ActorState | undefined {
    return this.actors.get(a)
  }
  top(): number {
    return this.topOp
  }
  longest(): number {
    return this.longestString
  }
  longestIn(obj: string): number | undefined {
    return this.objLongest.get(obj)
  }
  /**
   * At most how many entries of a save's actor columns name `actor`: its changes, its ops (and
   * the successors it stores on others' ops), and the ops in its objects or after its elements.
   * Each is one byte wider when the actor's index in the save crosses 128 or 16,384 (growth.ts
   * `actorWidening`).
   */
  refs(actor: string): number {
    return this.actorRefs.get(actor) ?? 0
  }
  /** The document's actors in the save's order (by their bytes: hex strings compare alike). */
  sortedActors(): readonly string[] {
    return (this.#sorted ??= [...this.actors.keys()].sort())
  }
  /** A new actor was committed: the order is made again when next asked for. */
  actorsChanged(): void {
    this.#sorted = undefined
  }
}

/**
 * For each of an update's changes, the highest op counter among its changes that start lower
 * (0 for none), which it may start right above (Overlay.check's `below`). A change made with
 * A.changeAt on older heads starts above everything its writer knows, a concurrent change the
 * same update carries included, whichever order they come in. Each step up is at most a
 * change's ops, so the update lifts counters no further than its ops.
 */
export const countersBelow = (changes: ReadonlyArray<A.DecodedChange>): number[] => {
  const order = changes.map((_, i) => i).sort((a, b) => changes[a]!.startOp - changes[b]!.startOp)
  const out = new Array<number>(changes.length).fill(0)
  let top = 0
  for (let i = 0; i < order.length;) {
    const start = changes[order[i]!]!.startOp
    let j = i
    // Changes starting at the same op do not lift each other.
    for (; j < order.length && changes[order[j]!]!.startOp === start; j++) out[order[j]!] = top
    for (; i < j; i++) {
      const c = changes[order[i]!]!
      top = max(top, c.startOp + c.ops.length - 1)
    }
  }
  return out
}

/** Changes checked (or taken as they are) on top of an index or another overlay, not yet in it. */
export class Overlay implements View {
  readonly ops = new Map<string, OpEntry>()
  readonly objs = new Map<string, ObjType>()
  readonly depths = new Map<string, number>()
  readonly historyMax = new Map<string, number>()
  readonly actors = new Map<string, ActorState>()
  topOp = 0
  longestString = 0
  readonly objLongest = new Map<string, number>()
  readonly actorRefs = new Map<string, number>()

  constructor(readonly base: OpIndex | Overlay) {}

  op(id: string): OpEntry | undefined {
    return this.ops.get(id) ?? this.base.op(id)
  }
  obj(id: string): ObjType | undefined {
    return this.objs.get(id) ?? this.base.obj(id)
  }
  depth(id: string): number | undefined {
    return this.depths.get(id) ?? this.base.depth(id)
  }
  hmax(hash: string): number | undefined {
    return this.historyMax.get(hash) ?? this.base.hmax(hash)
  }
  actor(a: string): ActorState | undefined {
    return this.actors.get(a) ?? this.base.actor(a)
  }
  top(): number {
    return max(this.topOp, this.base.top())
  }
  longest(): number {
    return max(this.longestString, this.base.longest())
  }
  longestIn(obj: string): number | undefined {
    const mine = this.objLongest.get(obj)
    const below = this.base.longestIn(obj)
    return mine === undefined ? below : below === undefined ? mine : max(mine, below)
  }

  /** Whether a change is known (in the index or staged). */
  has(hash: string): boolean {
    return this.hmax(hash) !== undefined
  }

  /**
   * Checks an untrusted change against the document and what is staged; on success stages
   * it. Returns why it is not what an honest Automerge produces, or undefined. Its deps must
   * be known (checked by the caller).
   */
  check(c: A.DecodedChange, below = 0): Verdict | undefined {
    const why = this.judge(c, below)
    if (why === undefined) this.stage(c)
    return why
  }

  private judge(c: A.DecodedChange, below: number): Verdict | undefined {
    const clock = (message: string): Verdict => ({ clock: true, message })
    const ops = (message: string): Verdict => ({ clock: false, message })
    const short = `change ${c.hash.slice(0, 12)}`
    let histMax = 0
    for (const d of c.deps) {
      const m = this.hmax(d)
      if (m === undefined) return ops(`${short} depends on ${d.slice(0, 12)}, which is not in the document`)
      if (m > histMax) histMax = m
    }
    const last = this.actor(c.actor)
    if (c.seq !== (last?.seq ?? 0) + 1) return clock(`${short} has seq ${c.seq}; actor ${c.actor}'s next is ${(last?.seq ?? 0) + 1}`)
    if (last !== undefined && last.maxOp > histMax) histMax = last.maxOp
    if (!isSafeInteger(c.startOp) || c.startOp <= histMax) return clock(`${short} starts at op ${c.startOp}, reusing op counters up to ${histMax} of its history`)
    // Automerge starts a change right above the counters it knows (`below`: those of the
    // update's changes that start lower, see countersBelow). One far above them is no help to
    // anyone and costs every load: A.load allocates per counter up to an actor's highest, so a
    // 77-byte change at 2^24 made each save-and-reload of the document 3.7 s and 1.2 GB, and at
    // 2^27 the document's save no longer loaded (its compaction failed for good).
    const top = max(this.top(), below)
    if (c.startOp > top + 1) return ops(`${short} starts at op ${c.startOp}; the highest op counter of the document and of what comes with it is ${top}, and a change starts at most one above it`)
    // Ops of this change, as they are checked.
    const mine = new Map<string, OpEntry>()
    const mineObjs = new Map<string, ObjType>()
    const op = (id: string) => mine.get(id) ?? this.op(id)
    const objType = (id: string) => mineObjs.get(id) ?? this.obj(id)
    const mineDepths = new Map<string, number>()
    let weight = 0
    for (let i = 0; i < c.ops.length; i++) {
      const o = c.ops[i]! as A.DecodedChange["ops"][number] & { elemId?: string; insert?: boolean }
      const counter = c.startOp + i
      const id = `${counter}@${c.actor}`
      const at = `${short} op ${id}`
      if (!ACTIONS.has(o.action)) return ops(`${at}: unknown action ${String(o.action)}`)
      const type = objType(o.obj)
      if (type === undefined) return ops(`${at}: object ${o.obj} does not exist`)
      if (o.obj !== ROOT && counterOf(o.obj) >= counter) return ops(`${at}: object ${o.obj} is not older than the op`)
      let slot: string
      const insert = o.insert === true
      if (type === "map" || type === "table") {
        if (typeof o.key !== "string" || o.elemId !== undefined || insert) return ops(`${at}: an op on map ${o.obj} needs a key, not an element`)
        if (o.action === "markBegin" || o.action === "markEnd") return ops(`${at}: a mark on map ${o.obj}`)
        if (o.key === "__proto__") return ops(`${at}: the map key __proto__ (Automerge's materialized value would take it as its prototype)`)
        weight += max(1, mineDepths.get(o.obj) ?? this.depth(o.obj) ?? 0)
        if (weight > MAX_MAP_DEPTH_WEIGHT) return ops(`${short}: its map ops weigh more than ${MAX_MAP_DEPTH_WEIGHT} (each counts its map's depth); split it, or keep data flatter`)
        slot = `k${o.key}`
      } else {
        if (typeof o.elemId !== "string" || o.key !== undefined) return ops(`${at}: an op on ${type} ${o.obj} needs an element, not a key`)
        if (o.elemId !== HEAD) {
          const e = op(o.elemId)
          if (e === undefined || !e.insert || e.obj !== o.obj) return ops(`${at}: element ${o.elemId} is not in ${type} ${o.obj}`)
          if (counterOf(o.elemId) >= counter) return ops(`${at}: element ${o.elemId} is not older than the op`)
        } else if (!insert) return ops(`${at}: only an insert may name the head of ${type} ${o.obj}`)
        if (!insert && (o.action === "markBegin" || o.action === "markEnd")) return ops(`${at}: a mark that inserts nothing`)
        slot = insert ? `e${id}` : `e${o.elemId}`
      }
      if (!isArray(o.pred)) return ops(`${at}: no pred`)
      if (insert && o.pred.length > 0) return ops(`${at}: an insert cannot overwrite anything`)
      if ((o.action === "del" || o.action === "inc") && o.pred.length === 0) return ops(`${at}: a ${o.action} of nothing`)
      for (const p of o.pred) {
        const e = typeof p === "string" ? op(p) : undefined
        if (e === undefined) return ops(`${at}: pred ${String(p)} does not exist`)
        if (e.obj !== o.obj || e.slot !== slot) return ops(`${at}: pred ${p} is another ${e.obj !== o.obj ? "object's op" : "key's or element's op"}`)
        if (counterOf(p) >= counter) return ops(`${at}: pred ${p} is not older than the op`)
      }
      mine.set(id, { obj: o.obj, slot, insert })
      const made = makes(o.action)
      if (made !== undefined) {
        const d = (mineDepths.get(o.obj) ?? this.depth(o.obj) ?? 0) + 1
        if (d > MAX_OBJECT_DEPTH) return ops(`${at}: objects nest deeper than ${MAX_OBJECT_DEPTH} levels`)
        mineObjs.set(id, made)
        mineDepths.set(id, d)
      }
    }
    return undefined
  }

  /** Stages a change without judging it (trusted: the authority already checked it). */
  stage(c: A.DecodedChange): void {
    let histMax = c.ops.length > 0 ? c.startOp + c.ops.length - 1 : 0
    this.topOp = max(this.topOp, histMax)
    for (const d of c.deps) histMax = max(histMax, this.hmax(d) ?? 0)
    this.historyMax.set(c.hash, histMax)
    const last = this.actor(c.actor)
    if (last === undefined || c.seq > last.seq) this.actors.set(c.actor, { seq: c.seq, maxOp: max(last?.maxOp ?? 0, c.startOp + c.ops.length - 1) })
    const refs = this.actorRefs
    const ref = (actor: string, n: number) => void refs.set(actor, (refs.get(actor) ?? 0) + n)
    // The change's row, its ops (or the successors its deletes and overwrites store on others'
    // ops), and the objects and elements its ops name (a run of ops in one object, or after
    // this change's own elements, counted without reading the actor out of each id).
    let own = 1, obj = ROOT, inObj = 0, prev = ""
    c.ops.forEach((o0, i) => {
      const o = o0 as A.DecodedChange["ops"][number] & { elemId?: string; insert?: boolean; name?: string }
      own += 1 + o.pred.length
      if (o.obj !== obj) {
        if (obj !== ROOT) ref(actorOf(obj), inObj)
        obj = o.obj
        inObj = 0
      }
      inObj++
      const id = `${c.startOp + i}@${c.actor}`
      const e = o.elemId
      if (e !== undefined && e !== HEAD) {
        if (e === prev) own++
        else ref(actorOf(e), 1)
      }
      prev = id
      const insert = o.insert === true
      const slot = o.elemId === undefined ? `k${o.key}` : insert ? `e${id}` : `e${o.elemId}`
      this.ops.set(id, { obj: o.obj, slot, insert })
      const n = opStringBytes(o)
      if (n > (this.longestIn(o.obj) ?? -1)) this.objLongest.set(o.obj, n)
      if (n > this.longestString) this.longestString = n
      const made = makes(o.action)
      if (made !== undefined) {
        this.objs.set(id, made)
        this.depths.set(id, (this.depth(o.obj) ?? 0) + 1)
      }
    })
    if (obj !== ROOT) ref(actorOf(obj), inObj)
    ref(c.actor, own)
  }

  /** Moves what is staged into the index (or the overlay below). */
  commit(): void {
    for (const [k, v] of this.ops) this.base.ops.set(k, v)
    for (const [k, v] of this.objs) this.base.objs.set(k, v)
    for (const [k, v] of this.depths) this.base.depths.set(k, v)
    for (const [k, v] of this.historyMax) this.base.historyMax.set(k, v)
    const fresh = [...this.actors.keys()].some((a) => this.base.actor(a) === undefined)
    for (const [k, v] of this.actors) this.base.actors.set(k, v)
    if (fresh && this.base instanceof OpIndex) this.base.actorsChanged()
    for (const [k, v] of this.actorRefs) this.base.actorRefs.set(k, (this.base.actorRefs.get(k) ?? 0) + v)
    this.actorRefs.clear()
    this.base.topOp = max(this.base.topOp, this.topOp)
    this.base.longestString = max(this.base.longestString, this.longestString)
    for (const [k, v] of this.objLongest) if (v > (this.base.longestIn(k) ?? -1)) this.base.objLongest.set(k, v)
    this.objLongest.clear()
    this.topOp = 0
    this.longestString = 0
    this.ops.clear()
    this.objs.clear()
    this.depths.clear()
    this.historyMax.clear()
    this.actors.clear()
  }
}

/**
 * A document's save with its columns plain, not deflated: what the hub stores, sends and
 * measures against a document's bound, on both routes. What a change pays for is bounded by
 * what it adds to the columns (growth.ts); deflate folds a repeat only within 32 KiB, so a
 * deflated save bounds nothing a change pays for: content repeated a hundred times measured as
 * one copy, and a 330-byte change putting a row before each copy grew such a save by 3.8 MB,
 * past a 1 MiB bound (a review). Plain, a document measures what Automerge holds of it.
 */
export const savePlain = (doc: A.Doc<unknown>): Uint8Array => A.getBackend(doc).saveNoCompress()

/**
 * Whether `save()`'s bytes load back to a document with the same heads (the last line of
 * defence before storing them as a base or snapshot). Returns why not, or undefined.
 */
export const saveReloads = (doc: A.Doc<unknown>, saved: Uint8Array): string | undefined => {
  try {
    const again = A.load(saved)
    const a = [...A.getHeads(again)].sort().join(",")
    A.free(again)
    const b = [...A.getHeads(doc)].sort().join(",")
    return a === b ? undefined : "save() loads back with other heads"
  } catch (e) {
    return `save() does not load back (${e instanceof Error ? e.message.slice(0, 160) : String(e)})`
  }
}
