/**
 * Whether Yjs integrates every struct and every deletion of a V1 update, decided before the
 * update touches a document. One check for both Yjs engines: the CRDT field
 * (adapters/yjs/engine.ts) and the whole document on the hub (adapters/yjs-server/engine.ts).
 *
 * Yjs never refuses what it cannot integrate: it keeps it in `store.pendingStructs` /
 * `store.pendingDs`, the state vector does not advance past it, and the held structs are
 * merged into every encoding of the document. A hub holding them would accept the same IDs
 * again with other content (equivocation), write them into snapshots that load into other
 * text than the log gives (with the same state-vector hash), and re-merge them on every
 * update. So an update is accepted only if Yjs integrates all of it, which is the case when:
 *
 * - each client has one block of structs (Yjs keeps only the last block of a client, so a
 *   second or an empty block makes the decoded structs differ from what is applied);
 * - each client's structs continue the document (no clock past what the document plus the
 *   earlier structs of the update have; a Skip is only allowed where nothing follows it that
 *   the document lacks);
 * - every origin, right origin and parent is in the document or in the update, a reference
 *   to the struct's own client points below the struct's clock, and the references inside
 *   the update form no cycle (a struct depends on the one holding each referenced clock, and
 *   on the previous struct of its client);
 * - every deleted range ends at or before what the document plus the update have;
 * - no map key is `__proto__` (`toJSON()` assigns keys to a plain object: that one would set
 *   its prototype to a peer's value);
 * - shared types nest at most `MAX_TYPE_DEPTH` deep (Yjs walks nested types recursively:
 *   `toJSON`, deletion and garbage collection of a chain of thousands overflow the stack on
 *   every peer, for good: nobody could read or delete it);
 * - every item goes where every replica and every reload puts it: its origin and right origin
 *   could have been neighbours for a writer (OriginCheck). Else Yjs placed it by what had
 *   arrived before: the hub's live text read "aQbcdefghij", a reload of its state and its peers
 *   "abcdefghijQ".
 */
import * as Y from "yjs"
import { ByteReader } from "../../core/bytes.js"
import { MAX_DEPTH } from "../../core/canonical.js"

/** What `Y.decodeUpdate` gives (the fields read here). */
export interface DecodedYUpdate {
  readonly structs: ReadonlyArray<unknown>
  readonly ds: { readonly clients: Map<number, ReadonlyArray<{ readonly clock: number; readonly len: number }>> }
}

/** Why an update cannot be integrated: `malformed` (block structure) or `missing` (a dependency Yjs would wait for). */
export interface NotIntegrable {
  readonly reason: "malformed" | "missing"
  readonly message: string
}

type Id = { readonly client: number; readonly clock: number }

/** The first varUint of a V1 update: its number of client blocks (-1 if unreadable). */
const blockCount = (bytes: Uint8Array): number => {
  try {
    return new ByteReader(bytes).varint()
  } catch {
    return -1
  }
}

const missing = (message: string): NotIntegrable => ({ reason: "missing", message })

/** "__proto__" in UTF-8. */
const PROTO = [0x5f, 0x5f, 0x70, 0x72, 0x6f, 0x74, 0x6f, 0x5f, 0x5f]

/** Most structs one update may hold (decoding costs ~1-3 µs each: at most about half a second). */
export const MAX_UPDATE_STRUCTS = 1 << 18

/**
 * How deep a lib0 value (a ContentAny value, an embed, a format's value) may nest: the same
 * bound as Canon's own values (MAX_DEPTH). lib0's readAny and writeAny recurse, so a deeper
 * value passes only while the reader's stack lasts: Node's ends near 4,000 levels (sooner in
 * a deep call stack or another engine). One a hub took at 3,000 levels would then be a
 * document some replicas, or the hub itself on a later load, cannot read: poisoned for good.
 */
export const MAX_VALUE_DEPTH = MAX_DEPTH

/** Why skipAnyValue stopped: a refused key, or a value nested past MAX_VALUE_DEPTH. */
type SkipRefusal = "key" | "deep"

/**
 * Skips one lib0 `readAny` value, with a stack of open containers instead of recursion, at
 * most MAX_VALUE_DEPTH deep. `refusedKey` reads each object key and says whether to stop
 * there. Undefined when the value passes, else why it was refused.
 */
const skipAnyValue = (r: ByteReader, refusedKey: () => boolean): SkipRefusal | undefined => {
  const open: Array<{ readonly object: boolean; left: number }> = []
  let values = 1
  for (;;) {
    const top = open[open.length - 1]
    if (top === undefined) {
      if (values-- === 0) return undefined
    } else {
      if (top.left === 0) {
        open.pop()
        continue
      }
      top.left--
      if (top.object && refusedKey()) return "key"
    }
    const type = r.byte()
    if (type === 127 || type === 126 || type === 121 || type === 120) continue
    if (type === 125) while (r.byte() & 0x80);
    else if (type === 124) r.raw(4)
    else if (type === 123 || type === 122) r.raw(8)
    else if (type === 119 || type === 116) r.raw(r.varint())
    else if (type === 117 || type === 118) {
      if (open.length >= MAX_VALUE_DEPTH) return "deep"
      open.push({ object: type === 118, left: r.varint() })
    } else throw new RangeError(`unknown value type ${type}`)
  }
}

/**
 * Whether JSON text (`code(i)` its bytes or UTF-16 units, i from `from` to `to`) nests deeper
 * than MAX_VALUE_DEPTH. Yjs reads a JSON content, and V1's embeds and format values, with
 * JSON.parse (which copes with any depth) but writes them back with JSON.stringify, which
 * recurses: 5,000 levels in one 10 KB update made a document no hub could encode again.
 */
export const jsonTooDeep = (code: (i: number) => number, from: number, to: number): boolean => {
  let depth = 0
  let inString = false
  for (let i = from; i < to; i++) {
    const c = code(i)
    if (inString) {
      if (c === 0x5c) i++ // a backslash: the next unit is escaped
      else if (c === 0x22) inString = false
    } else if (c === 0x22) inString = true
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > MAX_VALUE_DEPTH) return true
    } else if (c === 0x5d || c === 0x7d) depth--
  }
  return false
}

/** The sentence for a value skipAnyValue refused, `where` naming the struct if known. */
const valueRefused = (why: SkipRefusal, where: string): string =>
  why === "key"
    ? `The key "__proto__" is refused (a key inside a value${where}): reading it would make a value the prototype of the object Yjs builds.`
    : `A value nests deeper than ${MAX_VALUE_DEPTH} levels${where}: Yjs reads and writes values recursively, so it could not be read back everywhere. Flatten the data (e.g. items keyed by id, with parent ids).`

/**
 * What a shared type (a Y.Map, Y.Array, Y.Text, XML node) weighs in countV1Structs and
 * weighedStructs: decoding builds a type object for it (~4 µs, 750 bytes); held in a
 * document, about 650 bytes of heap against 210 for a plain struct (a review's measure).
 */
export const TYPE_WEIGHT = 4

/**
 * What decoding a V1 update would cost, read without decoding it (no object per struct): its
 * structs, a shared type weighing TYPE_WEIGHT; the ranges of its delete set are told in
 * `seen.deleteRanges` (work, but not bounded here: see below), its shared types in `seen.types` and
 * the values of its lists and map entries in `seen.values`. Undefined when that is more than `max`; a
 * sentence when the bytes are not an update or hold a subdocument (refused on every route,
 * and each one decodes into a whole Y.Doc: 262,144 of them in 1.3 MB took 4 s and 625 MB).
 * Decoding costs per struct, and a GC struct is 2 bytes: 8 MiB of them took `Y.decodeUpdate`
 * 5 s and 1 GB, and 63 MiB killed the process. Every route counts before it decodes.
 */
export const countV1Structs = (update: Uint8Array, max: number, seen?: { deleteRanges: number; types?: number; values?: number }): number | undefined | string => {
  const r = new ByteReader(update)
  let client = 0
  let valueRefusal: string | undefined
  const skipString = () => void r.raw(r.varint())
  const value = () => void (seen !== undefined && (seen.values = (seen.values ?? 0) + 1))
  const skipJson = () => {
    const b = r.raw(r.varint())
    if (jsonTooDeep((i) => b[i]!, 0, b.length)) valueRefusal = valueRefused("deep", `, Yjs client ${client}`)
  }
  // Yjs and lib0 build objects by assignment (obj[key] = value): a key "__proto__" would make a
  // value the prototype of the object the app reads (toJSON, get, toDelta, getAttributes),
  // with properties the app never saw as data. Refused wherever a key is read, on every route.
  const protoKey = (): boolean => {
    const b = r.raw(r.varint())
    return b.length === 9 && PROTO.every((c, i) => b[i] === c)
  }
  let protoIn: string | undefined
  const skipAny = () => {
    const why = skipAnyValue(r, protoKey)
    if (why !== undefined) valueRefusal = valueRefused(why, `, Yjs client ${client}`)
  }
  try {
    let count = 0
    const clients = r.varint()
    for (let c = 0; c < clients; c++) {
      const structs = r.varint()
      count += structs
      if (count > max) return undefined
      client = r.varint()
      r.varint() // clock
      for (let i = 0; i < structs; i++) {
        const info = r.byte()
        const ref = info & 31
        if (ref === 0 || ref === 10) {
          r.varint() // GC or Skip length
          continue
        }
        if (info & 0x80) (r.varint(), r.varint()) // origin
        if (info & 0x40) (r.varint(), r.varint()) // right origin
        if ((info & 0xc0) === 0) {
          if (r.varint() === 1) skipString() // parent: a root type's name
          else (r.varint(), r.varint()) // parent: an item's id
          if (info & 0x20 && protoKey()) protoIn = "a map key" // parentSub (also an XML attribute's name)
        }
        switch (ref) {
          case 1: r.varint(); break // deleted
          case 2: for (let n = r.varint(); n > 0 && valueRefusal === undefined; n--) (skipJson(), value()); break // JSON
          case 3: case 4: skipString(); break // binary, string
          case 5: skipJson(); break // embed
          case 6: if (protoKey()) protoIn = "a text format's name"; skipJson(); break // format
          case 7: { // a shared type
            const t = r.varint()
            if (t === 3 || t === 5) skipString()
            else if (t > 6) throw new RangeError(`unknown type ${t}`)
            count += TYPE_WEIGHT - 1
            if (seen !== undefined) seen.types = (seen.types ?? 0) + 1
            if (count > max) return undefined
            break
          }
          case 8: for (let n = r.varint(); n > 0 && valueRefusal === undefined; n--) (skipAny(), value()); break // any
          case 9: return "Yjs subdocuments are not supported."
          default: throw new RangeError(`unknown content ${ref}`)
        }
        if (valueRefusal !== undefined) return valueRefusal
        if (protoIn !== undefined) return `The key "__proto__" is refused (${protoIn}, Yjs client ${client}): reading it would make a value the prototype of the object Yjs builds.`
      }
    }
    // The delete set: each range is work too (applying one splits an item, about 9 µs; 150,000
    // of them in 592 KB took 1.4 s), told in `seen` for the sender's work budget. Not counted
    // against `max`: every step2 carries the document's whole delete set, which grows through
    // many small honest updates, and a bound on it would refuse every later step2 for good.
    if (seen !== undefined) {
      let ranges = 0
      if (!r.done()) {
        for (let c = r.varint(); c > 0; c--) {
          r.varint() // client
          const n = r.varint()
          ranges += n
          for (let i = 0; i < n; i++) (r.varint(), r.varint()) // clock, length
        }
      }
      seen.deleteRanges = ranges
    }
    return count
  } catch (e) {
    return `The bytes are not a Yjs V1 update (${e instanceof Error ? e.message : String(e)}).`
  }
}

/**
 * lib0's UintOptRleDecoder over one V2 column: a run is a varint whose sign says a count
 * follows (-0 for a run of zeros). Past the end it refuses where lib0 reads zeros forever
 * (Yjs's encoder ends every run it writes, so only a forged column gets there).
 */
class UintOptRle {
  #value = 0
  #left = 0
  constructor(private readonly r: ByteReader) {}
  read(): number {
    if (this.#left === 0) {
      const b = this.r.byte()
      this.#value = b & 0x80 ? (b & 0x3f) + 64 * this.r.varint() : b & 0x3f
      this.#left = b & 0x40 ? this.r.varint() + 2 : 1
    }
    this.#left--
    return this.#value
  }
}

/**
 * lib0's RleDecoder of bytes over one V2 column (the info column): a value then its count less
 * one, the last value without a count repeating forever, as Yjs writes it. An empty column
 * refuses (lib0 would read `undefined`, which Yjs takes for a GC struct, forever).
 */
class ByteRle {
  #value = 0
  #left = 0
  constructor(private readonly r: ByteReader) {}
  read(): number {
    if (this.#left === 0) {
      this.#value = this.r.byte()
      this.#left = this.r.done() ? Infinity : this.r.varint() + 1
    }
    this.#left--
    return this.#value
  }
}

/** lib0's signed varint (readVarInt): a sign bit in the first byte, beside 6 bits of the number. */
const signedVarint = (r: ByteReader): number => {
  const b = r.byte()
  const n = b & 0x80 ? (b & 0x3f) + 64 * r.varint() : b & 0x3f
  return b & 0x40 ? -n : n
}

/** lib0's IntDiffOptRleDecoder over one V2 column (key clocks): runs of a difference, its lowest bit saying a count follows. Refuses past the end, as UintOptRle. */
class IntDiffOptRle {
  #value = 0
  #diff = 0
  #left = 0
  constructor(private readonly r: ByteReader) {}
  read(): number {
    if (this.#left === 0) {
      const d = signedVarint(this.r)
      this.#diff = Math.floor(d / 2)
      this.#left = d & 1 ? this.r.varint() + 2 : 1
    }
    this.#value += this.#diff
    this.#left--
    return this.#value
  }
}

/** "__proto__". */
const PROTO_KEY = "__proto__"
/** lib0's utf8TextDecoder (a string column that is not UTF-8 makes Yjs throw: refused as well). */
const UTF8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true })

/**
 * lib0's StringDecoder over the V2 string column: every string of the update as one UTF-8
 * string, then their lengths in UTF-16 code units (a UintOptRle). `next()` passes one string
 * and says whether it is "__proto__"; refuses one running past the column (lib0 would cut it).
 */
class Strings {
  readonly #all: string
  readonly #lengths: UintOptRle
  #at = 0
  constructor(r: ByteReader) {
    this.#all = UTF8.decode(r.raw(r.varint()))
    this.#lengths = new UintOptRle(r)
  }
  next(): boolean {
    const start = this.#at
    this.#at += this.#lengths.read()
    if (this.#at > this.#all.length) throw new RangeError("a string past the end of the string column")
    return this.#at - start === PROTO_KEY.length && this.#all.startsWith(PROTO_KEY, start)
  }
  /** Skips the next string, JSON text: whether it nests deeper than MAX_VALUE_DEPTH. */
  nextJsonTooDeep(): boolean {
    const start = this.#at
    this.next()
    return jsonTooDeep((i) => this.#all.charCodeAt(i), start, this.#at)
  }
}

/**
 * countV1Structs for a V2 update (`Y.encodeStateAsUpdateV2`, what a CRDT field stores and a
 * hub's snapshot carries): its structs, a shared type weighing TYPE_WEIGHT; undefined when
 * that is more than `max`; a sentence when the bytes are not a V2 update, hold a subdocument,
 * or a key `__proto__` where Yjs assigns one by name (as countV1Structs). V2 keeps each struct
 * field in a run-length column whose last run repeats forever, so 62 bytes claim 10^8 structs
 * (1M took Yjs 1 s and 136 MB, 100M killed the process): the claimed counts are summed and
 * checked before any struct is read. Read in Yjs's order without decoding
 * (readClientsStructRefs, UpdateDecoderV2): the struct counts, clocks and some contents (Skip
 * lengths, binary, and embed, format and ContentAny values, all lib0 any values in V2) lie in
 * one byte stream after the columns; strings (root names, map keys and attribute names, text,
 * JSON) lie in the string column in struct order, and the names of formats, XML elements and
 * hooks come through the key cache (a new one from the string column, else an index into the
 * ones read). Clients and clocks of origins and parents are not read. Time is linear in the
 * bytes plus the counted structs. The delete set is not read (each range takes bytes of its own).
 */
export const countV2Structs = (update: Uint8Array, max: number): number | undefined | string => {
  try {
    const r = new ByteReader(update)
    r.varint() // feature flag
    const column = () => new ByteReader(r.raw(r.varint()))
    const keyClock = new IntDiffOptRle(column())
    for (let i = 0; i < 3; i++) column() // clients, left clocks, right clocks
    const info = new ByteRle(column())
    const strings = new Strings(column())
    const parentInfo = new ByteRle(column())
    const typeRef = new UintOptRle(column())
    const len = new UintOptRle(column())
    // UpdateDecoderV2.readKey: an index below the keys read so far names one of them, else the
    // next string is a new key. Which of the keys read are "__proto__".
    const keys: boolean[] = []
    const protoKey = (): boolean => {
      const at = keyClock.read()
      if (at < keys.length) return keys[at] === true
      const proto = strings.next()
      keys.push(proto)
      return proto
    }
    const valueKey = () => {
      const b = r.raw(r.varint())
      return b.length === 9 && PROTO.every((c, i) => b[i] === c)
    }
    let protoIn: string | undefined
    let valueRefusal: string | undefined
    const skipAny = () => {
      const why = skipAnyValue(r, valueKey)
      if (why !== undefined) valueRefusal = valueRefused(why, "")
    }
    // `r` is now what Yjs calls the rest decoder.
    let count = 0
    for (let c = r.varint(); c > 0; c--) {
      const structs = r.varint()
      count += structs
      if (count > max) return undefined
      r.varint() // clock (the client is in its column)
      for (let i = 0; i < structs; i++) {
        const bits = info.read()
        const ref = bits & 31
        if (ref === 0) {
          len.read() // GC
          continue
        }
        if (ref === 10) {
          r.varint() // Skip
          continue
        }
        // Origins (client and clock columns) hold no strings.
        if ((bits & 0xc0) === 0) {
          if (parentInfo.read() === 1) strings.next() // parent: a root type's name
          if (bits & 0x20 && strings.next()) protoIn = "a map key" // parentSub (also an XML attribute's name)
        }
        switch (ref) {
          case 1: len.read(); break // deleted
          case 2: for (let n = len.read(); n > 0 && valueRefusal === undefined; n--) if (strings.nextJsonTooDeep()) valueRefusal = valueRefused("deep", ""); break // JSON
          case 3: r.raw(r.varint()); break // binary
          case 4: strings.next(); break // string
          case 5: skipAny(); break // embed
          case 6: if (protoKey()) protoIn = "a text format's name"; skipAny(); break // format
          case 7: {
            const t = typeRef.read()
            if (t === 3 || t === 5) protoKey() // an XML element's or hook's name (a key, but no object key)
            else if (t > 6) throw new RangeError("unknown type")
            count += TYPE_WEIGHT - 1
            if (count > max) return undefined
            break
          }
          case 8: for (let n = len.read(); n > 0 && valueRefusal === undefined; n--) skipAny(); break // any
          case 9: return "Yjs subdocuments are not supported."
          default: throw new RangeError(`unknown content ${ref}`)
        }
        if (valueRefusal !== undefined) return valueRefusal
        if (protoIn !== undefined) return `The key "${PROTO_KEY}" is refused (${protoIn}): reading it would make a value the prototype of the object Yjs builds.`
      }
    }
    return count
  } catch (e) {
    return `The bytes are not a Yjs V2 update (${e instanceof Error ? e.message : String(e)}).`
  }
}

/** Clocks at or past this are refused (2^40): a 2^52 clock would exhaust a client's range for good. */
export const MAX_YJS_CLOCK = 2 ** 40

/**
 * What no route takes from a peer whatever the document holds, checked right after decoding:
 * a struct or deletion past MAX_YJS_CLOCK, a struct of negative length. (Subdocuments never
 * get this far: countV1Structs refuses them before decoding.) A sentence saying which, or
 * undefined.
 */
export const unsupportedStructs = (decoded: DecodedYUpdate): string | undefined => {
  for (const s of decoded.structs as ReadonlyArray<{ id: Id; length: number }>) {
    if (!(s.length >= 0) || !(s.id.clock + s.length <= MAX_YJS_CLOCK)) return `A Yjs struct of client ${s.id.client} at clock ${s.id.clock} (length ${s.length}) is past the clock limit 2^40.`
  }
  for (const [client, ranges] of decoded.ds.clients) {
    for (const r of ranges) if (!(r.clock + r.len <= MAX_YJS_CLOCK)) return `A Yjs deletion of client ${client} at clock ${r.clock} is past the clock limit 2^40.`
  }
  return undefined
}

/** How deep shared types may nest (a root type is depth 0; a map in it, 1). */
export const MAX_TYPE_DEPTH = 128

/** The depth of the type holding the integrated struct at `id` of `doc` (its root type: 0). */
const depthInDoc = (doc: Y.Doc, id: Id): number => {
  let struct: { parent?: unknown }
  try {
    struct = Y.getItem(doc.store, Y.createID(id.client, id.clock)) as { parent?: unknown }
  } catch {
    return 0
  }
  let depth = 0
  // Bounded: what the document holds was checked (an older store may be deeper: the walk stops past the bound).
  for (let t = struct.parent as { _item: { parent: unknown } | null } | null | undefined; t?._item != null && depth <= MAX_TYPE_DEPTH; t = t._item.parent as typeof t) depth++
  return depth
}

const tooDeep = (client: number, clock: number): NotIntegrable => ({
  reason: "malformed",
  message: `Shared types nest deeper than ${MAX_TYPE_DEPTH} levels (Yjs client ${client}, clock ${clock}): flatten the data (e.g. items keyed by id, with parent ids).`,
})

/**
 * The depth bound for an update whose integrability is not judged (entries the authority
 * ordered: a replica's incoming ones, a hub's log replay), which a hostile hub writes as it
 * likes: undefined when every shared type it creates nests at most MAX_TYPE_DEPTH deep in
 * `doc`, else why not. A type's place comes from its parent, or its origin or right origin
 * (the same parent), in the document or in the update. A type whose place is in neither (or
 * in a cycle inside the update) is refused as `missing`: Yjs would hold it and integrate it
 * later, unchecked, when the missing piece comes. Other structs with missing dependencies are
 * left to Yjs as before (nothing nests under them). A client listed in two blocks is
 * `malformed` (Yjs keeps only the last). Linear in the update's structs plus MAX_TYPE_DEPTH
 * per reference into the document; iterative (a chain can be as long as the update).
 */
export const typesTooDeep = (decoded: DecodedYUpdate, doc: Y.Doc): NotIntegrable | undefined => {
  const structs = decoded.structs as ReadonlyArray<(Y.Item | Y.GC | Y.Skip) & { id: Id; length: number }>
  const n = structs.length
  // Each client's structs: one run of indices, in clock order.
  const runs = new Map<number, { from: number; to: number }>()
  for (let i = 0; i < n; i++) {
    const { client, clock } = structs[i]!.id
    const run = runs.get(client)
    if (run === undefined) runs.set(client, { from: i, to: i })
    else if (run.to === i - 1 && structs[i - 1]!.id.clock + structs[i - 1]!.length <= clock) run.to = i
    else return { reason: "malformed", message: `The update lists Yjs client ${client} in more than one block, or its structs out of clock order (Yjs would apply only the last block).` }
  }
  const nodeAt = (ref: Id): number => {
    const run = runs.get(ref.client)
    let lo = run?.from ?? 0
    let hi = run?.to ?? -1
    while (lo <= hi) {
      const mid = (lo + hi) >> 1
      const s = structs[mid]!
      if (ref.clock < s.id.clock) hi = mid - 1
      else if (ref.clock >= s.id.clock + s.length) lo = mid + 1
      else return mid
    }
    return -1
  }
  const UNKNOWN = -1
  const UNSEEN = -2
  const OPEN = -3
  // The depth of the type holding each struct (a root type: 0), UNKNOWN when not placed.
  const depth = new Int32Array(n).fill(UNSEEN)
  const path: number[] = []
  for (let root = 0; root < n; root++) {
    if (depth[root] !== UNSEEN) continue
    path.push(root)
    while (path.length > 0) {
      const i = path[path.length - 1]!
      const s = structs[i]!
      let d: number
      if (s instanceof Y.GC) d = 0 // what refers to it becomes a GC too: no type
      else if (!(s instanceof Y.Item)) d = UNKNOWN // a Skip: nothing there
      else {
        const parent = s.parent
        const ref = typeof parent === "string" ? null : parent instanceof Y.ID ? parent : (s.origin ?? s.rightOrigin)
        // A parent reference names the type's own item: one deeper than where that item is.
        const below = parent instanceof Y.ID ? 1 : 0
        if (ref === null || ref === undefined) d = 0
        else if (ref.clock < Y.getState(doc.store, ref.client)) d = depthInDoc(doc, ref) + below
        else {
          const j = nodeAt(ref)
          const dj = j < 0 || depth[j] === OPEN ? UNKNOWN : depth[j]!
          if (dj === UNSEEN) {
            depth[i] = OPEN
            path.push(j)
            continue
          }
          d = dj === UNKNOWN ? UNKNOWN : dj + below
        }
        // Checked unless Yjs skips it (the document has all of it).
        if (s.content instanceof Y.ContentType && s.id.clock + s.length > Y.getState(doc.store, s.id.client)) {
          if (d === UNKNOWN) return missing(`A shared type of Yjs client ${s.id.client} at clock ${s.id.clock} is placed under a struct neither the document nor the update has; Yjs would hold it and integrate it unchecked later.`)
          if (d + 1 > MAX_TYPE_DEPTH) return tooDeep(s.id.client, s.id.clock)
        }
      }
      depth[i] = d
      path.pop()
    }
  }
  return undefined
}

/**
 * How deep the shared types of `doc` nest, walked from its root types without recursion and
 * no further than one past MAX_TYPE_DEPTH: a sentence when deeper, else undefined. For a
 * document just loaded from a state (a CRDT field's snapshot, a hub's stored base), before
 * anything reads it. Every item counts, deleted ones and overwritten map values included
 * (what is deleted but not collected still holds its types). Linear in the items.
 */
export const docTooDeep = (doc: Y.Doc): string | undefined => {
  type Type = { _start: Y.Item | null; _map: Map<string, Y.Item> }
  const open: Array<{ readonly type: Type; readonly depth: number }> = []
  for (const type of doc.share.values()) open.push({ type: type as unknown as Type, depth: 0 })
  const visit = (item: Y.Item | null, depth: number, left: boolean): string | undefined => {
    for (let it = item; it !== null; it = left ? (it.left as Y.Item | null) : it.right as Y.Item | null) {
      if (!(it.content instanceof Y.ContentType)) continue
      if (depth + 1 > MAX_TYPE_DEPTH) return tooDeep(it.id.client, it.id.clock).message
      open.push({ type: it.content.type as unknown as Type, depth: depth + 1 })
    }
    return undefined
  }
  for (let top = open.pop(); top !== undefined; top = open.pop()) {
    const deep = visit(top.type._start, top.depth, false)
    if (deep !== undefined) return deep
    // A map key's items: the last one, and those it overwrote to its left.
    for (const item of top.type._map.values()) {
      const d = visit(item, top.depth, true)
      if (d !== undefined) return d
    }
  }
  return undefined
}

/**
 * How many steps the origin check (OriginCheck) may take for one update: items walked between
 * an origin and a right origin, pieces of a run followed back, and items passed while placing
 * the update's own items. ORIGIN_STEPS_BASE plus ORIGIN_STEPS_PER_STRUCT for each struct of the
 * update. A step took about 12 ns on this project's machine: 512 steps are 6 µs, about what
 * the smallest update weighs on the hub (3 µs), and 64 a struct 0.8 µs of the 2 µs a struct
 * weighs. The check as a whole added about 0.45 µs a struct to notIntegrable (2^18
 * one-character structs: 130-160 ms before, 245-280 ms with it; decoding and applying them
 * take seconds).
 */
export const ORIGIN_STEPS_BASE = 512
export const ORIGIN_STEPS_PER_STRUCT = 64

/** What the origin check needs of one character (one clock of a client). */
interface Char {
  /** Yjs turns what refers to it into a GC struct: nothing is placed next to it. */
  readonly gc: boolean
  /** Its list: the parent type, and the map key when it is a value of one (a key's values form a list too). */
  readonly list: string
  /** Whether that list is a map key's values. */
  readonly keyed: boolean
  /** The first clock of the piece holding it, and that piece's origin: the character left of it when written is `clock - 1` inside the piece, else `origin`. */
  readonly start: number
  readonly origin: Id | null
  /** The character right of it when written (its piece's right origin). */
  readonly right: Id | null
  /** The document's item holding it; undefined when the update brings it. */
  readonly item?: Y.Item
}

const PLACED_NOWHERE: Char = { gc: true, list: "", keyed: false, start: 0, origin: null, right: null }

const sameId = (a: Id | null, b: Id | null): boolean => a === b || (a !== null && b !== null && a.client === b.client && a.clock === b.clock)

/** The character left of `id` when it was written (its origin). */
const leftOf = (id: Id, at: Char): Id | null => (id.clock > at.start ? Y.createID(id.client, id.clock - 1) : at.origin)

/** Whether the run of `length` characters of `client` from `clock` holds the character `id`. */
const holds = (client: number, clock: number, length: number, id: Id | null): boolean =>
  id !== null && id.client === client && id.clock >= clock && id.clock < clock + length

const showId = (id: Id | null): string => (id === null ? "none" : `${id.client}:${id.clock}`)

/** Where a list's items start and end before the update: its type in the document (null: the update creates it) and the map key. */
interface ListHome {
  readonly type: Y.AbstractType<unknown> | null
  readonly key: string | null
}

/**
 * A run of one client's characters in a list while the check places the update's items: a
 * document item or part of one, or (part of) an item of the update.
 */
interface Piece {
  readonly client: number
  readonly clock: number
  len: number
  readonly origin: Id | null
  readonly rightOrigin: Id | null
  /** The document's item it is (part of); null for the update's. */
  readonly item: Y.Item | null
  /** Its neighbours; undefined where they are the document's (a document piece at an end of its item, untouched). */
  left: Piece | null | undefined
  right: Piece | null | undefined
}

const TOO_FAR = Symbol("too far")

/** The index of the last of `pieces` (in clock order) starting at or before `clock`. */
const indexAt = (pieces: ReadonlyArray<Piece>, clock: number): number => {
  let lo = 0
  let hi = pieces.length - 1
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1
    if (pieces[mid]!.clock <= clock) lo = mid
    else hi = mid - 1
  }
  return lo
}

/**
 * Whether each item of the update would go where every replica, and every reload of the hub's
 * own state, puts it too. Yjs places an item between its origin o (the character left of it
 * when written) and right origin r (the one right of it), ordering it among what else lies
 * between them; that comes out the same in whatever order the items arrive only if they could
 * have been neighbours for their writer: in one list (a parent type, or one key's values of a
 * map), o before r, and nothing between them that o or r depends on (what the item's own client
 * wrote before does not change where it goes). A peer's item that breaks this (o and r the same
 * character, r before o, in two lists, or skipping a character o or r was written next to)
 * integrated into other text on the hub than on a peer that got the items in another order, or
 * than a reload of the hub's own state: the hub's live document, what it stored and what peers
 * saw differed. Refused (`malformed`). So is a map value of more than one element (Yjs writes
 * one: a split one kept a half live on the hub alone).
 *
 * What o and r depend on between them comes down to two characters (every item the document
 * holds passed this check): what o depends on to its right lies at or after ro(o), the
 * character right of o when o was written, and what r depends on to its left at or before
 * lo(r), the one left of r. So: r none (the end) needs ro(o) none; o none (the start) needs
 * lo(r) none; else o and r in one list and lo(r) <= o < r <= ro(o). Proved without walking
 * when r = ro(o) or lo(r) = o (typing; inserting between characters one of which was written
 * next to the other), or when o's run (o and what its client typed before it in one go, back
 * to where that began) and r were written at one place (the same character left, the same
 * right origin: two replicas typing at one spot), which Yjs orders by client. Else the list is
 * walked from o to r: the document's items (what was written concurrently with the item), and
 * when o or r comes in the update itself, the update's items placed as Yjs places them (only in
 * the lists where that is needed: a relayed step2, a fresh replica's first sync).
 *
 * Cost: a few lookups per item; the walks, runs followed back and placements together at most
 * ORIGIN_STEPS_BASE + ORIGIN_STEPS_PER_STRUCT per struct, past which the update is refused as
 * not checkable (an honest one would need thousands of items written concurrently between an
 * item's neighbours, with none of the proofs above).
 *
 * `done` lists the update's nodes each after what it refers to (so a node's list and whether it
 * is placed at all are known when an item refers to it).
 */
class OriginCheck {
  readonly #budget: number
  #steps = 0
  readonly #placedNowhere: Uint8Array
  readonly #listOf: string[]
  readonly #keyedOf: Uint8Array
  readonly #homes = new Map<string, ListHome>()
  #roots: Map<unknown, string> | undefined
  /** Items whose place needs the update's own items placed first. */
  readonly #deferred = new Set<number>()

  constructor(
    private readonly nodes: ReadonlyArray<(Y.Item | Y.GC) & { id: Id; length: number }>,
    private readonly done: ReadonlyArray<number>,
    private readonly nodeIn: (client: number, clock: number) => number,
    private readonly stateOf: (client: number) => number,
    private readonly doc: Y.Doc,
  ) {
    this.#budget = ORIGIN_STEPS_BASE + ORIGIN_STEPS_PER_STRUCT * nodes.length
    this.#placedNowhere = new Uint8Array(nodes.length)
    this.#listOf = new Array<string>(nodes.length)
    this.#keyedOf = new Uint8Array(nodes.length)
    this.#nodeChars = new Array<Char | undefined>(nodes.length).fill(undefined)
  }

  readonly #states = new Map<number, number>()
  /** The document's clock of a client (it does not change while the check runs). */
  #state(client: number): number {
    let state = this.#states.get(client)
    if (state === undefined) this.#states.set(client, (state = this.stateOf(client)))
    return state
  }

  /** One more step; false past the budget. */
  #step(): boolean {
    return ++this.#steps <= this.#budget
  }

  #rootName(type: unknown): string {
    this.#roots ??= new Map([...this.doc.share].map(([name, t]) => [t as unknown, name]))
    return this.#roots.get(type) ?? ""
  }

  /** A list's key: a root type by its name (JSON: it delimits itself), a nested one by its item's id; the map key after it. */
  #listKey(typeKey: string, key: string | null, type: Y.AbstractType<unknown> | null): string {
    const list = key === null ? typeKey : `${typeKey}.${JSON.stringify(key)}`
    if (!this.#homes.has(list)) this.#homes.set(list, { type, key })
    return list
  }

  #docList(item: Y.Item): string {
    const type = item.parent as Y.AbstractType<unknown>
    const typeKey = type._item !== null ? `${type._item.id.client}:${type._item.id.clock}` : JSON.stringify(this.#rootName(type))
    return this.#listKey(typeKey, item.parentSub, type)
  }

  #structAt(client: number, clock: number): unknown {
    if (clock < this.#state(client)) {
      const structs = this.doc.store.clients.get(client)
      return structs === undefined ? undefined : structs[Y.findIndexSS(structs, clock)]
    }
    const j = this.nodeIn(client, clock)
    return j < 0 || this.#placedNowhere[j] === 1 ? undefined : this.nodes[j]
  }

  /** What #charAt says of each node and document item (the same for all their characters). */
  readonly #nodeChars: Array<Char | undefined>
  readonly #itemChars = new Map<Y.Item, Char>()

  #charAt(id: Id): Char {
    const state = this.#state(id.client)
    if (id.clock < state) {
      const structs = this.doc.store.clients.get(id.client)
      const s = structs === undefined ? undefined : structs[Y.findIndexSS(structs, id.clock)]
      if (!(s instanceof Y.Item)) return PLACED_NOWHERE
      let c = this.#itemChars.get(s)
      if (c === undefined) this.#itemChars.set(s, (c = { gc: false, list: this.#docList(s), keyed: s.parentSub !== null, start: s.id.clock, origin: s.origin, right: s.rightOrigin, item: s }))
      return c
    }
    const j = this.nodeIn(id.client, id.clock)
    if (j < 0 || this.#placedNowhere[j] === 1) return PLACED_NOWHERE
    let c = this.#nodeChars[j]
    if (c === undefined) {
      const s = this.nodes[j]!
      if (!(s instanceof Y.Item)) return PLACED_NOWHERE
      // What the document lacks of this struct begins at its clock, right after what it has.
      const start = Math.max(s.id.clock, state)
      const origin = start > s.id.clock ? Y.createID(id.client, start - 1) : s.origin
      this.#nodeChars[j] = c = { gc: false, list: this.#listOf[j]!, keyed: this.#keyedOf[j] === 1, start, origin, right: s.rightOrigin }
    }
    return c
  }

  /** Where o's run was written: the origin of its first piece, following back the pieces its client typed right after one another (same list, same right origin). Undefined if they stop being one run first. */
  #runOrigin(o: Id, at: Char): Id | null | undefined | typeof TOO_FAR {
    for (let c = at; ;) {
      const before = c.origin
      if (before === null || before.client !== o.client || before.clock !== c.start - 1) return before
      if (!this.#step()) return TOO_FAR
      const prev = this.#charAt(before)
      if (prev.gc || prev.list !== at.list || !sameId(prev.right, at.right)) return undefined
      c = prev
    }
  }

  /** The item's origin as Yjs integrates it (after what the document has of its struct), its list, and its neighbours' characters. */
  #sides(i: number) {
    const s = this.nodes[i] as Y.Item & { id: Id }
    const state = this.#state(s.id.client)
    const o = s.id.clock < state ? Y.createID(s.id.client, state - 1) : s.origin
    return { s, o, r: s.rightOrigin }
  }

  #refusal(i: number, why: string, checkable = true): NotIntegrable {
    const { s, o, r } = this.#sides(i)
    const where = `between its origin (${showId(o)}) and right origin (${showId(r)})`
    return {
      reason: "malformed",
      message: checkable
        ? `The Yjs item of client ${s.id.client} at clock ${s.id.clock} cannot go ${where}: ${why}. No Yjs document writes that, and the hub would place it elsewhere than its peers and its own stored copy do.`
        : `The hub cannot check where the Yjs item of client ${s.id.client} at clock ${s.id.clock} goes, ${where}: ${why}. It is refused rather than placed where peers might not place it.`,
    }
  }

  #tooFar(i: number): NotIntegrable {
    return this.#refusal(i, `that takes more than the hub's bound of ${this.#budget} steps for this update`, false)
  }

  /** Undefined when every item goes where Yjs puts it on every replica; else the first that does not, and why. */
  check(): NotIntegrable | undefined {
    const { nodes } = this
    for (const i of this.done) {
      const s = nodes[i]!
      if (!(s instanceof Y.Item)) {
        this.#placedNowhere[i] = 1
        continue
      }
      // As Yjs: next to a GC struct an item is one too; else its list is its origin's, its right origin's, or its parent.
      const origin = s.origin === null ? null : this.#charAt(s.origin)
      const right = s.rightOrigin === null ? null : this.#charAt(s.rightOrigin)
      // Yjs collects a deleted type's content whole: an item's neighbours are both collected or
      // neither. One of each made it a GC struct here, and an item of a live list on a replica
      // that had not collected (gc off, or the update merged with the deletion).
      if (origin !== null && right !== null && origin.gc !== right.gc && !(s.id.clock + s.length <= this.#state(s.id.client))) {
        return this.#refusal(i, "one of them was collected (deleted with its parent type), the other is in a list")
      }
      let list: string | undefined
      let keyed = s.parentSub !== null
      if (origin !== null || right !== null) {
        const from = (origin ?? right)!
        list = origin?.gc === true || right?.gc === true ? undefined : from.list
        keyed = from.keyed
      } else if (typeof s.parent === "string") {
        list = this.#listKey(JSON.stringify(s.parent), s.parentSub, (this.doc.share.get(s.parent) as Y.AbstractType<unknown> | undefined) ?? null)
      } else if (s.parent instanceof Y.ID) {
        const t = this.#structAt(s.parent.client, s.parent.clock)
        if (t instanceof Y.Item && t.content instanceof Y.ContentType) {
          const inDoc = s.parent.clock < this.#state(s.parent.client)
          list = this.#listKey(`${t.id.client}:${t.id.clock}`, s.parentSub, inDoc ? (t.content.type as Y.AbstractType<unknown>) : null)
        }
      }
      if (list === undefined) {
        this.#placedNowhere[i] = 1
        continue
      }
      this.#listOf[i] = list
      this.#keyedOf[i] = keyed ? 1 : 0
      const { client, clock } = s.id
      const state = this.#state(client)
      // Yjs has all of it (it skips it), or integrates the rest after the last character it has.
      if (clock + s.length <= state) continue
      const o = clock < state ? Y.createID(client, state - 1) : s.origin
      const r = s.rightOrigin
      const left = clock < state ? this.#charAt(o!) : origin
      if (left !== null && (left.gc || left.list !== list)) return this.#refusal(i, "it continues a struct the document holds elsewhere (in another list, or collected)")
      // A key holds one value: Yjs deletes the value before when one comes, not what a split
      // leaves of it (a two-element value split by an item's origin kept a half live on the hub
      // alone). Yjs writes one element per value; merged runs of deleted values stay allowed.
      if (keyed && s.length > 1 && !(s.content instanceof Y.ContentDeleted)) return this.#refusal(i, "it is a map value of more than one element")
      if (left !== null && right !== null) {
        if (right.list !== list) return this.#refusal(i, "they are in different lists (parent types or map keys)")
        if (sameId(o, r)) return this.#refusal(i, "they are the same character")
        const beforeR = leftOf(r!, right)
        if (sameId(left.right, r) || sameId(beforeR, o)) continue
        const written = this.#runOrigin(o!, left)
        if (written === TOO_FAR) return this.#tooFar(i)
        if (written !== undefined && sameId(written, beforeR) && sameId(left.right, right.right) && o!.client !== r!.client) {
          if (o!.client < r!.client) continue
          return this.#refusal(i, "its right origin comes before its origin")
        }
        if (left.item === undefined || right.item === undefined) {
          this.#deferred.add(i)
          continue
        }
        const walked = this.#walkDocument(i, o!, r!, left, right.item, beforeR)
        if (walked !== undefined) return walked
      } else if (left !== null) {
        if (left.right !== null) return this.#refusal(i, "it has no right origin (the end of the list), but its origin was written with a character right of it")
      } else if (right !== null) {
        if (leftOf(r!, right) !== null) return this.#refusal(i, "it has no origin (the start of the list), but its right origin was written with a character left of it")
      }
    }
    return this.#deferred.size === 0 ? undefined : this.#place()
  }

  /** o and r both in the document: its list from o to r holds neither ro(o) nor lo(r). */
  #walkDocument(i: number, o: Id, r: Id, left: Char, ri: Y.Item, beforeR: Id | null): NotIntegrable | undefined {
    const oi = left.item!
    if (oi === ri) return this.#refusal(i, r.clock < o.clock ? "its right origin comes before its origin" : "characters between them were written with them")
    if (r.clock > ri.id.clock) return this.#refusal(i, "the character left of its right origin was written next to it, and is not its origin")
    if (beforeR !== null && beforeR.client === oi.id.client && beforeR.clock > o.clock && beforeR.clock < oi.id.clock + oi.length) {
      return this.#refusal(i, "the character its right origin was written next to lies between them")
    }
    for (let it = oi.right as Y.Item | null; it !== ri; it = it.right as Y.Item | null) {
      if (it === null) return this.#refusal(i, "its right origin does not come after its origin")
      if (!this.#step()) return this.#tooFar(i)
      if (holds(it.id.client, it.id.clock, it.length, left.right) || holds(it.id.client, it.id.clock, it.length, beforeR)) return this.#refusal(i, "a character its origin or right origin was written next to lies between them")
    }
    return undefined
  }

  // ---- Placing the update's items (the lists of deferred items only) ----

  readonly #docPieces = new Map<Y.Item, Piece[]>()
  readonly #newPieces = new Map<number, Piece[]>()
  readonly #starts = new Map<string, Piece | null>()
  readonly #lasts = new Map<string, Piece | null>()

  #piecesOf(item: Y.Item): Piece[] {
    let ps = this.#docPieces.get(item)
    if (ps === undefined) {
      const { client, clock } = item.id
      ps = [{ client, clock, len: item.length, origin: item.origin, rightOrigin: item.rightOrigin, item, left: undefined, right: undefined }]
      this.#docPieces.set(item, ps)
    }
    return ps
  }

  #rightOf(p: Piece): Piece | null {
    if (p.right !== undefined) return p.right
    const next = p.item!.right as Y.Item | null
    return next === null ? null : this.#piecesOf(next)[0]!
  }

  #leftOf(p: Piece): Piece | null {
    if (p.left !== undefined) return p.left
    const before = p.item!.left as Y.Item | null
    if (before === null) return null
    const ps = this.#piecesOf(before)
    return ps[ps.length - 1]!
  }

  /** The piece holding a character of the document or of an item placed already; null for one placed nowhere. */
  #pieceAt(id: Id): Piece | null {
    let ps: Piece[] | undefined
    if (id.clock < this.#state(id.client)) {
      const s = this.#structAt(id.client, id.clock)
      if (!(s instanceof Y.Item)) return null
      ps = this.#piecesOf(s)
    } else ps = this.#newPieces.get(this.nodeIn(id.client, id.clock))
    if (ps === undefined) return null
    const p = ps[indexAt(ps, id.clock)]!
    return holds(p.client, p.clock, p.len, id) ? p : null
  }

  /** Splits `p` before `clock` (inside it): the right part, as Yjs's splitItem. */
  #split(p: Piece, clock: number, list: string): Piece {
    const next = this.#rightOf(p)
    const q: Piece = { client: p.client, clock, len: p.clock + p.len - clock, origin: Y.createID(p.client, clock - 1), rightOrigin: p.rightOrigin, item: p.item, left: p, right: next }
    if (next !== null) next.left = q
    else if (this.#homes.get(list)?.key != null) this.#lasts.set(list, q)
    p.right = q
    p.len = clock - p.clock
    const ps = p.item !== null ? this.#piecesOf(p.item) : this.#newPieces.get(this.nodeIn(p.client, p.clock))!
    ps.splice(indexAt(ps, p.clock) + 1, 0, q)
    return q
  }

  #startOf(list: string): Piece | null {
    if (this.#starts.has(list)) return this.#starts.get(list)!
    const first = this.#homes.get(list)?.type?._start ?? null
    return first === null ? null : this.#piecesOf(first)[0]!
  }

  /** The first value of a map key (Yjs walks back from the last). Undefined past the budget. */
  #firstOfKey(list: string): Piece | null | undefined {
    let p: Piece | null
    if (this.#lasts.has(list)) p = this.#lasts.get(list)!
    else {
      const home = this.#homes.get(list)!
      const last = home.type?._map.get(home.key!) ?? null
      p = last === null ? null : this.#piecesOf(last)[this.#piecesOf(last).length - 1]!
    }
    for (let before = p === null ? null : this.#leftOf(p); before !== null; before = this.#leftOf(before)) {
      if (!this.#step()) return undefined
      p = before
    }
    return p
  }

  /**
   * Places the update's items of the lists deferred items are in, in dependency order, as Yjs's
   * Item.integrate does (a character-for-character copy of its rules over pieces), checking each
   * deferred item before it is placed. Splits that Yjs would not make change nothing: the items
   * passed are whole pieces from a boundary on.
   */
  #place(): NotIntegrable | undefined {
    const lists = new Set<string>()
    for (const i of this.#deferred) lists.add(this.#listOf[i]!)
    for (const i of this.done) {
      if (this.#placedNowhere[i] === 1 || !lists.has(this.#listOf[i]!)) continue
      const s = this.nodes[i] as Y.Item & { id: Id; length: number }
      const { client, clock } = s.id
      const state = this.#state(client)
      if (clock + s.length <= state) continue
      const list = this.#listOf[i]!
      const keyed = this.#keyedOf[i] === 1
      const { o, r } = this.#sides(i)
      let left = o === null ? null : this.#pieceAt(o)
      if (left !== null && o!.clock < left.clock + left.len - 1) this.#split(left, o!.clock + 1, list)
      let right = r === null ? null : this.#pieceAt(r)
      if (right !== null && r!.clock > right.clock) right = this.#split(right, r!.clock, list)
      if (this.#deferred.has(i)) {
        const refused = this.#walkPlaced(i, o!, r!)
        if (refused !== undefined) return refused
        left = this.#pieceAt(o!)
      }
      const start = Math.max(clock, state)
      const piece: Piece = { client, clock: start, len: clock + s.length - start, origin: o, rightOrigin: r, item: null, left: null, right: null }
      this.#newPieces.set(i, [piece])
      // Item.integrate: where the item goes among what lies between its neighbours.
      if ((left === null && (right === null || this.#leftOf(right) !== null)) || (left !== null && this.#rightOf(left) !== right)) {
        let c = left !== null ? this.#rightOf(left) : keyed ? this.#firstOfKey(list) : this.#startOf(list)
        if (c === undefined) return this.#tooFar(i)
        const conflicting = new Set<Piece>()
        const beforeOrigin = new Set<Piece>()
        while (c !== null && c !== right) {
          if (!this.#step()) return this.#tooFar(i)
          beforeOrigin.add(c)
          conflicting.add(c)
          if (sameId(o, c.origin)) {
            if (c.client < client) {
              left = c
              conflicting.clear()
            } else if (sameId(r, c.rightOrigin)) break
          } else {
            const cOrigin = c.origin === null ? null : this.#pieceAt(c.origin)
            if (cOrigin === null || !beforeOrigin.has(cOrigin)) break
            if (!conflicting.has(cOrigin)) {
              left = c
              conflicting.clear()
            }
          }
          c = this.#rightOf(c)
        }
      }
      if (left !== null) {
        piece.right = this.#rightOf(left)
        left.right = piece
      } else {
        const first = keyed ? this.#firstOfKey(list) : this.#startOf(list)
        if (first === undefined) return this.#tooFar(i)
        piece.right = first
        if (!keyed) this.#starts.set(list, piece)
      }
      piece.left = left
      if (piece.right !== null) piece.right.left = piece
      else if (keyed) this.#lasts.set(list, piece)
    }
    return undefined
  }

  /** A deferred item, its neighbours placed: the list from o to r holds neither ro(o) nor lo(r). */
  #walkPlaced(i: number, o: Id, r: Id): NotIntegrable | undefined {
    const lp = this.#pieceAt(o)
    const rp = this.#pieceAt(r)
    if (lp === null || rp === null) return this.#refusal(i, "they are in different lists (parent types or map keys)")
    if (lp === rp || lp.clock + lp.len - 1 !== o.clock) return this.#refusal(i, r.client === o.client && r.clock < o.clock ? "its right origin comes before its origin" : "characters between them were written with them")
    const right = this.#charAt(r)
    const roO = this.#charAt(o).right
    const beforeR = leftOf(r, right)
    for (let p = this.#rightOf(lp); p !== rp; p = this.#rightOf(p)) {
      if (p === null) return this.#refusal(i, "its right origin does not come after its origin")
      if (!this.#step()) return this.#tooFar(i)
      if (holds(p.client, p.clock, p.len, roO) || holds(p.client, p.clock, p.len, beforeR)) return this.#refusal(i, "a character its origin or right origin was written next to lies between them")
    }
    return undefined
  }
}

/**
 * Undefined when Yjs integrates all of `decoded` (the V1 `update`) into a document whose state
 * vector is `stateOf`; otherwise why not. Linear in the update's structs.
 */
export const notIntegrable = (update: Uint8Array, decoded: DecodedYUpdate, stateOf: (client: number) => number, doc?: Y.Doc): NotIntegrable | undefined => {
  // 1. One block per client, none empty.
  const structs = decoded.structs as ReadonlyArray<(Y.Item | Y.GC | Y.Skip) & { id: Id; length: number }>
  let runs = 0
  const seen = new Set<number>()
  for (let i = 0; i < structs.length; i++) {
    const client = structs[i]!.id.client
    if (i === 0 || structs[i - 1]!.id.client !== client) {
      runs++
      if (seen.has(client)) break
      seen.add(client)
    }
  }
  if (runs !== blockCount(update) || seen.size !== runs) {
    return { reason: "malformed", message: "The update lists a Yjs client in more than one block, or a block without structs (Yjs would apply only the last)." }
  }

  // 2. Each client's structs continue what the document has. `nodes` are the structs to
  // integrate (no Skips), each client's consecutive and in clock order.
  const have = new Map<number, number>()
  const nodes: Array<(Y.Item | Y.GC) & { id: Id; length: number }> = []
  const first = new Map<number, number>()
  for (const s of structs) {
    const { client, clock } = s.id
    let at = have.get(client)
    if (at === undefined) have.set(client, (at = stateOf(client)))
    if (s instanceof Y.Skip) continue
    // Yjs never makes one; integrated at another client's next clock it breaks that client's next edit.
    if (!(s.length > 0)) return { reason: "malformed", message: `A Yjs struct of length ${s.length} at client ${client}, clock ${clock}.` }
    if (clock > at) return missing(`Yjs client ${client} from clock ${at} is missing (the update continues at ${clock}).`)
    have.set(client, Math.max(at, clock + s.length))
    if (!first.has(client)) first.set(client, nodes.length)
    nodes.push(s as (typeof nodes)[number])
  }
  const end = (client: number) => have.get(client) ?? stateOf(client)

  // 3. References: present, same-client ones backwards, and (below) acyclic inside the update.
  // deps[4i]: the previous struct of the client; deps[4i+1..3]: origin, right origin, parent.
  const n = nodes.length
  const deps = new Int32Array(n * 4).fill(-1)
  /** The node of the update holding (client, clock), or -1. */
  const lastOf = new Map<number, number>()
  for (let i = 0; i < n; i++) lastOf.set(nodes[i]!.id.client, i)
  const nodeIn = (client: number, clock: number): number => {
    let lo = first.get(client) ?? 0
    let hi = lastOf.get(client) ?? -1
    while (lo <= hi) {
      const mid: number = (lo + hi) >> 1
      const s = nodes[mid]!
      if (clock < s.id.clock) hi = mid - 1
      else if (clock >= s.id.clock + s.length) lo = mid + 1
      else return mid
    }
    return -1
  }
  for (let i = 0; i < n; i++) {
    const s = nodes[i]!
    if (i > 0 && nodes[i - 1]!.id.client === s.id.client) deps[4 * i] = i - 1
    if (!(s instanceof Y.Item)) continue
    const refs: Array<Id | null> = [s.origin, s.rightOrigin, s.parent instanceof Y.ID ? s.parent : null]
    for (let k = 0; k < 3; k++) {
      const ref = refs[k]
      if (ref === null || ref === undefined) continue
      if (ref.client === s.id.client) {
        // Earlier structs of the client come first anyway (the previous-struct edge).
        if (ref.clock >= s.id.clock) return missing(`A Yjs struct of client ${s.id.client} at clock ${s.id.clock} refers to its own client's clock ${ref.clock}, which does not precede it.`)
        continue
      }
      if (ref.clock < stateOf(ref.client)) continue
      const at = ref.clock < end(ref.client) ? nodeIn(ref.client, ref.clock) : -1
      if (at < 0) return missing(`Yjs client ${ref.client} from clock ${ref.clock} is missing.`)
      deps[4 * i + 1 + k] = at
    }
  }
  // The depth of the type each node is in, computed when the node is done (its references are).
  const depth = new Int32Array(n)
  const refDepth = (ref: Id | null | undefined, node: number, isParent: boolean): number | undefined => {
    if (ref === null || ref === undefined) return undefined
    const inUpdate = ref.clock >= stateOf(ref.client)
    const j = node >= 0 ? node : inUpdate ? nodeIn(ref.client, ref.clock) : -1
    const d = j >= 0 ? depth[j]! : doc !== undefined && !inUpdate ? depthInDoc(doc, ref) : 0
    // A parent reference names the type's own item: one deeper than where that item is.
    return isParent ? d + 1 : d
  }
  const nestsTooDeep = (i: number): NotIntegrable | undefined => {
    const s = nodes[i]!
    if (!(s instanceof Y.Item)) return undefined
    const parent = s.parent
    const d = typeof parent === "string" ? 0
      : parent instanceof Y.ID ? refDepth(parent, deps[4 * i + 3]!, true)
      : refDepth(s.origin, deps[4 * i + 1]!, false) ?? refDepth(s.rightOrigin, deps[4 * i + 2]!, false)
    depth[i] = d ?? 0
    if (s.content instanceof Y.ContentType && depth[i]! + 1 > MAX_TYPE_DEPTH) return tooDeep(s.id.client, s.id.clock)
    return undefined
  }
  // Depth-first, iterative (an update can hold ~10^5 structs): a reference back onto the path is a cycle.
  const mark = new Uint8Array(n) // 0 unseen, 1 on the path, 2 done
  const cursor = new Uint8Array(n)
  const path: number[] = []
  // The nodes in the order they were done: each after everything it refers to.
  const done: number[] = []
  for (let root = 0; root < n; root++) {
    if (mark[root] !== 0) continue
    mark[root] = 1
    path.push(root)
    while (path.length > 0) {
      const top = path[path.length - 1]!
      if (cursor[top]! === 4) {
        mark[top] = 2
        path.pop()
        const deep = nestsTooDeep(top)
        if (deep !== undefined) return deep
        done.push(top)
        continue
      }
      const d = deps[4 * top + cursor[top]!]!
      cursor[top]!++
      if (d < 0 || mark[d] === 2) continue
      if (mark[d] === 1) {
        const { client, clock } = nodes[d]!.id
        return missing(`The update's structs depend on each other in a cycle (through Yjs client ${client} clock ${clock}); Yjs would hold them forever.`)
      }
      mark[d] = 1
      path.push(d)
    }
  }

  // 4. Deletions within what the document and the update have.
  for (const [client, ranges] of decoded.ds.clients) {
    const e = end(client)
    for (const r of ranges) {
      if (r.clock >= e || r.clock + r.len > e) {
        return missing(`The update deletes clocks ${r.clock}..${r.clock + Math.max(r.len, 1) - 1} of Yjs client ${client}; the document has up to ${e - 1}.`)
      }
    }
  }

  // 5. Every item goes where any replica, and any reload, puts it too.
  return doc === undefined ? undefined : new OriginCheck(nodes, done, (client, clock) => nodeIn(client, clock), stateOf, doc).check()
}

type PendingStore = { pendingStructs: unknown; pendingDs: unknown }

/** Whether Yjs holds structs or deletions of `doc` it could not integrate. */
export const holdsPending = (doc: Y.Doc): boolean => {
  const store = doc.store as unknown as PendingStore
  return store.pendingStructs !== null || store.pendingDs !== null
}

/**
 * Forgets what Yjs holds unintegrated (a document loaded from bytes an older hub wrote may
 * hold some): it is in no hash and must be in no encoding.
 */
export const dropPending = (doc: Y.Doc): void => {
  const store = doc.store as unknown as PendingStore
  store.pendingStructs = null
  store.pendingDs = null
}

/** `Y.encodeStateAsUpdateV2(doc)` of the integrated document only (Yjs would merge held structs into it). */
export const encodeIntegratedV2 = (doc: Y.Doc): Uint8Array => {
  if (!holdsPending(doc)) return Y.encodeStateAsUpdateV2(doc)
  const store = doc.store as unknown as PendingStore
  const { pendingStructs, pendingDs } = store
  dropPending(doc)
  try {
    return Y.encodeStateAsUpdateV2(doc)
  } finally {
    store.pendingStructs = pendingStructs
    store.pendingDs = pendingDs
  }
}

/** The structs a Yjs document holds now (each client's struct list; no decoding): what the whole-document bounds count. */
export const structCount = (doc: Y.Doc): number => {
  let n = 0
  for (const list of doc.store.clients.values()) n += list.length
  return n
}

/**
 * structCount with a shared type weighing TYPE_WEIGHT: the measure countV1Structs gives an
 * update and countV2Structs a CRDT field's stored state (its load check), so a bound a field's
 * merge passes is one its state passes at load. (Counted as 1, a field merged to a million
 * empty Y.Maps passed every merge and never loaded again.) The types are tallied once, then by
 * each transaction's new structs; deleting a type may collect it, so the tally is an upper
 * bound until `exact` asks for a new count, which only a bound about to refuse does.
 */
export const weighedStructs = (doc: Y.Doc, exact = false): number => {
  const tally = tallyOf(doc)
  if (exact && !tally.exact) {
    tally.n = countTypes(doc)
    tally.exact = true
  }
  return structCount(doc) + (TYPE_WEIGHT - 1) * tally.n
}

interface TypeTally {
  n: number
  /** No deletion since `n` was counted whole. */
  exact: boolean
}

const tallies = new WeakMap<Y.Doc, TypeTally>()

const isType = (s: unknown): boolean => (s as { content?: unknown }).content instanceof Y.ContentType

const countTypes = (doc: Y.Doc): number => {
  let n = 0
  for (const list of doc.store.clients.values()) for (const s of list) if (isType(s)) n++
  return n
}

const tallyOf = (doc: Y.Doc): TypeTally => {
  const known = tallies.get(doc)
  if (known !== undefined) return known
  const tally: TypeTally = { n: countTypes(doc), exact: true }
  tallies.set(doc, tally)
  doc.on("afterTransaction", (tr: Y.Transaction) => {
    // Only a deleted type may be collected (text and values deleted leave the tally exact).
    if (tally.exact) {
      for (const [client, ranges] of tr.deleteSet.clients) {
        const list = doc.store.clients.get(client)
        if (list === undefined) continue
        for (const { clock, len } of ranges) {
          try {
            for (let i = Y.findIndexSS(list as never, clock); i < list.length && list[i]!.id.clock < clock + len && tally.exact; i++) if (isType(list[i])) tally.exact = false
          } catch {
            tally.exact = false
          }
        }
      }
    }
    for (const [client, after] of tr.afterState) {
      const before = tr.beforeState.get(client) ?? 0
      if (after <= before) continue
      // A client's new structs are the end of its list, from the one holding `before` (a type
      // takes one clock and never merges with a neighbour, so none is counted twice).
      const list = doc.store.clients.get(client)
      if (list === undefined) continue
      try {
        for (let i = Y.findIndexSS(list as never, before); i < list.length; i++) if (isType(list[i])) tally.n++
      } catch {
        tally.n = countTypes(doc)
      }
    }
  })
  return tally
}
