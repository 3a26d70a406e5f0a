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
 *   every peer, for good: nobody could read or delete it).
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
const jsonTooDeep = (code: (i: number) => number, from: number, to: number): boolean => {
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

/** What a shared type (a Y.Map, Y.Array, Y.Text, XML node) weighs in countV1Structs: decoding builds a type object for it (~4 µs, 750 bytes). */
const TYPE_WEIGHT = 4

/**
 * What decoding a V1 update would cost, read without decoding it (no object per struct): its
 * structs, a shared type weighing TYPE_WEIGHT; the ranges of its delete set are told in
 * `seen.deleteRanges` (work, but not bounded here: see below). Undefined when that is more than `max`; a
 * sentence when the bytes are not an update or hold a subdocument (refused on every route,
 * and each one decodes into a whole Y.Doc: 262,144 of them in 1.3 MB took 4 s and 625 MB).
 * Decoding costs per struct, and a GC struct is 2 bytes: 8 MiB of them took `Y.decodeUpdate`
 * 5 s and 1 GB, and 63 MiB killed the process. Every route counts before it decodes.
 */
export const countV1Structs = (update: Uint8Array, max: number, seen?: { deleteRanges: number }): number | undefined | string => {
  const r = new ByteReader(update)
  let client = 0
  let valueRefusal: string | undefined
  const skipString = () => void r.raw(r.varint())
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
          case 2: for (let n = r.varint(); n > 0 && valueRefusal === undefined; n--) skipJson(); break // JSON
          case 3: case 4: skipString(); break // binary, string
          case 5: skipJson(); break // embed
          case 6: if (protoKey()) protoIn = "a text format's name"; skipJson(); break // format
          case 7: { // a shared type
            const t = r.varint()
            if (t === 3 || t === 5) skipString()
            else if (t > 6) throw new RangeError(`unknown type ${t}`)
            count += TYPE_WEIGHT - 1
            if (count > max) return undefined
            break
          }
          case 8: for (let n = r.varint(); n > 0 && valueRefusal === undefined; n--) skipAny(); break // any
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
  return undefined
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
