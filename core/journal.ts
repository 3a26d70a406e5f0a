/**
 * The live state of a document and the only ways to change it: drafts for commands, views for
 * the app, an undo journal for rebase.
 *
 * Undo journal: how a replica rebases in time proportional to the commands involved, not to
 * the size of the state. A command's `apply` receives a draft: a proxy over the live state that
 * records, before every write, what the write overwrites (core/state/records.ts). Committing a
 * command keeps its records; rolling it back replays them backwards. A replica therefore holds
 * one state object (its view) and rebases by undoing its pending commands (newest first),
 * applying the incoming entries, and applying the pending commands again. Nothing is copied, so
 * a 100k-item state rebases as fast as a 1k-item one. `apply` may also return a new value: it
 * replaces the whole state and is recorded as one undoable write.
 *
 * The state model (see DESIGN.md, State model), enforced here as a command writes, so that a
 * command that breaks it is a rejection (`state-unencodable`) and never a broken document:
 * - **Plain data.** Objects, arrays, strings, numbers (every NaN is the one canonical NaN),
 *   booleans, null, undefined, Uint8Array. Whatever else a command writes (a Date, a Map, a
 *   class instance, a bigint, a string with a lone surrogate, an object with getters or symbol
 *   keys, a value nested deeper than the encoder accepts, more than 64 MiB in one write) throws
 *   a `state-unencodable` CanonError at the write, naming what, where and what to do instead.
 *   Writing undefined into an object deletes the key (the encoding has no undefined property);
 *   deleting an array element stores undefined (the encoding has no holes).
 * - **A tree, never a graph; values, not references.** What is written is copied in
 *   (core/state/adopt.ts): the state never shares an object with the command's arguments, with
 *   a local the command keeps, or with another path of the state (`s.b = s.a` copies). The one
 *   surprise this brings: after `const item = { done: false }; s.items[id] = item`, writing
 *   `item.done = true` changes the local, not the state. Write through the state instead:
 *   `s.items[id].done = true`. Idioms that rebuild a container from its own items
 *   (`s.list = s.list.filter(f)`, `s.list = [...s.list, x]`, `return { ...state, n: 1 }`) move
 *   those items instead of copying them, so they stay O(n).
 * - **Own keys only.** Drafts and views read own properties only: `s.items["constructor"]`,
 *   `["toString"]`, `["__proto__"]` are undefined unless the state has that key, and `in` is
 *   own-only. "__proto__" is an ordinary key (written as an own property, never the prototype
 *   setter). Arrays hold their elements and length only: another key written on an array is
 *   refused (the encoding would drop it). Array and byte methods are frozen functions owned by
 *   the engine (core/state/arrays.ts), never Array.prototype's own, so no key path from a
 *   peer's arguments reaches a builtin. Prototypes cannot change, drafts cannot be frozen,
 *   Object.defineProperty can only define plain writable, enumerable, configurable data.
 *   Plain objects in the state have no methods: `obj.hasOwnProperty(k)` is not a function on a
 *   draft, use `Object.hasOwn(obj, k)` or `k in obj`.
 * - **Bounded.** Containers nest at most MAX_DEPTH deep (canonical.ts); one write adds at most
 *   MAX_WRITE_BYTES (adopt.ts).
 *
 * Writes are only allowed while a command runs: a draft kept past its command throws
 * `state-read-only` on write. The app reads the state through `view()`, a proxy that refuses
 * every write, so a stray assignment cannot corrupt a replica behind the engine's back.
 *
 * Determinism details:
 * - Drafts and views enumerate plain-object keys in canonical (sorted) order, the order the
 *   state hash uses. Undoing a `delete` puts the key back at the end of the object's insertion
 *   order, so the physical order differs between peers that undid different commands; sorted
 *   enumeration hides that from `apply` and from the app.
 * - Array methods run on the raw array (one journal record per call: a rebase stays
 *   O(commands), however long the arrays); callbacks and results see drafts.
 * - A Uint8Array in the state is immutable (its draft refuses writes): assign a new one.
 */
import { utf8Length, wellFormed } from "./bytes.js"
import { MAX_DEPTH, verifiedTrees } from "./canonical.js"
import { canonError, type CanonError } from "./errors.js"
import { Adopter, GROWTH_SLOT_BYTES, flat, MAX_WRITE_BYTES, Refusal, SOMEWHERE, arrayIndex, isObject, refuseLoneSurrogate, refuseSymbolKey, refusalError } from "./state/adopt.js"
import { ARRAY_METHODS, BYTES_METHODS, callable, immutableBytes } from "./state/arrays.js"
import { PROXIES, type Meta, type ProxyHost } from "./state/meta.js"
import { NOTHING, ROOT, hasOwn, replaceRange, setOwn, type Journal } from "./state/records.js"
import { ARRAY_SLACK_HEAP_BYTES, CONTAINER_HEAP_BYTES, ENTRY_HEAP_BYTES, SLOT_HEAP_BYTES } from "./state/heap-estimate.js"

export type { Journal } from "./state/records.js"
export { MAX_WRITE_BYTES } from "./state/adopt.js"

const MAX_ARRAY_LENGTH = 4294967295

/** A write outside a command's apply: through a view, a kept draft, or a replaced root. */
const readOnly = (): never => {
  throw canonError("state-read-only", "State changes only in a command: submit one.")
}

/** Proxy kinds: 0 an array, 1 bytes, 2 an object. The methods (and iterator) of arrays and bytes, by kind. */
const METHODS = [ARRAY_METHODS, BYTES_METHODS]

/** A state plus the machinery to change it through recorded drafts. */
export class JournaledState<S> implements ProxyHost {
  #current: S
  #journal: Journal | null = null
  /**
   * @internal Called with each container before its write is recorded, while a snapshot holds
   * the state (`freezeState` sets it; one at a time); returns the bytes of memory it took, which
   * `grownOf` charges the write. Not #private so that the freeze, which only the hub uses, lives
   * outside the class and a replica's bundle leaves it out; absent until a freeze sets it.
   */
  declare beforeWrite?: (container: object) => number
  /** raw object -> its view */
  readonly #views = new WeakMap<object, object>()
  /**
   * @internal What writes adopt, with the gauges the hub reads (`writtenOf`, `grownOf`: functions,
   * as `forgetDrafts` is, so that a replica's bundle leaves them out). Its `drafts` map raw
   * objects to their drafts' meta, kept while the object is (a command reading the same items
   * again reuses them); the hub lets them go after each batch (`forgetDrafts`): a draft is a
   * Proxy and its meta, about 170 bytes that no count of the state sees, and one `find` over a
   * million items held 170 MB for as long as the items were in the state. (Not charged to
   * `grownOf`: a command that only reads, or frees, is never refused for room.)
   */
  readonly adopter = new Adopter()
  /** User code runs inside a write: a value being copied in (getters, Proxy traps) or a sort's comparator; see #writable. */
  #busy = false
  /** Handlers by kind (array, bytes, object): the drafts' three, then the views' three. */
  readonly #handlers: Array<ProxyHandler<any>> = []

  /**
   * Takes `root` as the state: checked and copied (a CanonError `state-unencodable` says what is
   * not plain data, and where), unless it is a tree the engine already verified (freshly decoded
   * canonical bytes, or another JournaledState's root, which this one then owns).
   */
  constructor(root: S) {
    const self = this

    // Own properties only. What Object.prototype contributes to a plain object is functions and
    // the __proto__ accessor (an object): those are checked; a primitive read is state data
    // (unless other code polluted Object.prototype with data, which no key path here can do).
    // Arrays and bytes answer the engine's methods (core/state/arrays.ts) first, and their
    // numbers as any object does: an array's own length, a Uint8Array's length, byteLength,
    // BYTES_PER_ELEMENT and byteOffset (0: bytes in the state are never a view at an offset),
    // but not its `buffer` (an object it does not own), which would be a writable alias.
    const get = (t: any, k: PropertyKey, view: boolean): unknown => {
      if (typeof k !== "string") return undefined
      const v = t[k]
      if (isObject(v)) return hasOwn.call(t, k) ? self.#wrap(v, t, k, view) : undefined
      return typeof v === "function" ? undefined : v
    }
    // Arrays and bytes: an index is own (arrays have no holes), and most reads of an array are.
    const indexed = (t: any, k: PropertyKey, kind: number, view: boolean): unknown => {
      if (typeof k === "string" && (k.charCodeAt(0) ^ 48) < 10) {
        const v = t[k]
        return isObject(v) ? self.#wrap(v, t, k, view) : v
      }
      const f = METHODS[kind]![k]
      return f !== undefined ? f : kind && k === Symbol.toStringTag ? "Uint8Array" : get(t, k, view)
    }
    // Writes ignore the receiver: a write on an object that inherits from a draft
    // (Object.create(draft).x = 1) lands in the state, journaled and checked like any other.
    // Views refuse every write; bytes too, drafts or views: they are immutable.
    for (const view of [false, true]) {
      for (const kind of [0, 1, 2]) {
        const fail = kind === 1 ? immutableBytes : view ? readOnly : undefined
        const refuse = (what: string, why: string) => (t: object): never => {
          throw self.#located(new Refusal(what, why), t)
        }
        this.#handlers.push({
          get: kind > 1 ? (t, k) => get(t, k, view) : (t, k) => indexed(t, k, kind, view),
          // `in`: own keys (an array's: its indices and length; bytes': indices); on arrays and bytes also `length`, a method, the iterator.
          has: (t, k) => hasOwn.call(t, k) || (kind < 2 && (k === "length" || METHODS[kind]![k] !== undefined)),
          // Own descriptors, with objects as drafts or views: a descriptor must not leak a raw object.
          getOwnPropertyDescriptor(t, k) {
            const d = Reflect.getOwnPropertyDescriptor(t, k)
            if (d !== undefined && isObject(d.value)) d.value = self.#wrap(d.value, t, k as string, view)
            return d
          },
          ownKeys: kind > 1 ? (t) => (Reflect.ownKeys(t) as string[]).sort() : undefined,
          set: fail ?? ((t, k, v) => (self.#set(t, k, v), true)),
          deleteProperty: fail ?? ((t, k) => self.#delete(t, k)),
          defineProperty: fail ?? ((t, k, d) => (self.#define(t, k, d), true)),
          setPrototypeOf: fail ?? refuse("a new prototype", "State objects stay plain objects and arrays."),
          preventExtensions: fail ?? refuse("a frozen or non-extensible object", "Freeze a copy instead."),
        })
      }
    }
    this.#current = this.#adoptRoot(root)
  }

  // ---- the state ----

  /** The raw state. Engine code only: the app gets `view()`, commands get `draft()`. */
  get root(): S {
    return this.#current
  }

  /** Replaces the state between commands (a resync): checked like the constructor's root. */
  set root(next: S) {
    if (this.#journal !== null) {
      throw canonError("state-read-only", "The state cannot be replaced during a command: return the new state from apply.")
    }
    this.#current = this.#adoptRoot(next)
  }

  /**
   * Adopts a whole new state: the constructor's or a resync's (unbounded; a verified tree is
   * taken as it is), or, `replacing` the current one inside a command, what apply returned.
   */
  #adoptRoot(v: S, replacing = false): S {
    // WeakSet.has is false for a primitive.
    if (!replacing && verifiedTrees.has(v as object)) return v
    v = this.#adopt(null, 0, v, replacing, replacing ? MAX_WRITE_BYTES : Infinity) as S
    if (isObject(v)) verifiedTrees.add(v)
    return v
  }

  /** Appends one undo record for a write to the container `t` (copying `t` first while frozen: `freezeState`). */
  #record(t: object, a: unknown, b: unknown, old: unknown): void {
    // Held until the command's batch is stored: a sort's record is a copy of the whole array;
    // while a snapshot runs, the copy of the container it keeps (beforeWrite).
    // (records.ts recordHeap, written out: called, it costs a browser bundle 7 bytes.)
    this.adopter.heap += 32 + (Array.isArray(old) ? 8 * old.length : 0) + (this.beforeWrite?.(t) ?? 0)
    this.#journal!.push(t, a, b, old)
  }

  /** A read-only view of the state for the app: reads as the state, refuses writes. */
  view(): S {
    return this.#top(true)
  }

  /** The draft handed to `apply`: the root itself when it is a primitive. */
  draft(): S {
    return this.#top(false)
  }

  #top(view: boolean): S {
    const root = this.#current
    return isObject(root) ? (this.#wrap(root, null, "", view) as S) : root
  }

  /** Starts recording into a fresh journal. */
  begin(): Journal {
    return (this.#journal = [])
  }

  /** Stops recording. */
  end(): void {
    this.#journal = null
  }

  /** Replaces the whole state inside the current command (apply returned a value). */
  replaceRoot(next: S): void {
    const j = this.#writable()
    const v = this.#adoptRoot(next, true)
    j.push(ROOT, "", true, this.#current)
    // The new root is the old one (`return state`) or a new container: never a draft at another depth.
    this.#current = v
  }

  /** Reverts the writes of a journal, newest first (core/state/records.ts: the record format). */
  undo(j: Journal): void {
    for (let i = j.length - 4; i >= 0; i -= 4) {
      const target = j[i] as any
      const a = j[i + 1]
      const old = j[i + 3]
      if (typeof a !== "string") (a as number) < 0 ? target.reverse() : replaceRange(target, a as number, j[i + 2] as number, old as unknown[])
      else if (target === ROOT) this.#current = old as S
      else if (j[i + 2]) setOwn(target, a, old)
      else delete target[a]
    }
  }

  // ---- proxies ----

  /**
   * The draft (a command's) or the view (the app's) of the raw object `v` found at
   * `parent[key]` (the root: no parent), made on first use. A draft's depth is its parent's + 1.
   */
  #wrap(v: object, parent: object | null, key: string | number, view: boolean): object {
    // The common case, small enough to inline: the proxy exists.
    return (view ? this.#views.get(v) : this.adopter.drafts.get(v)?.proxy) ?? this.#make(v, parent, key, view)
  }

  #make(v: object, parent: object | null, key: string | number, view: boolean): object {
    const proxy = new Proxy(v, this.#handlers[(Array.isArray(v) ? 0 : ArrayBuffer.isView(v) ? 1 : 2) + (view ? 3 : 0)]!)
    // (A view's depth is not used: views are never written through.)
    const m: Meta = { raw: v, proxy, host: this, view, depth: (this.adopter.drafts.get(parent!)?.depth ?? -1) + 1, parent, key }
    if (view) this.#views.set(v, proxy)
    else this.adopter.drafts.set(v, m)
    PROXIES.set(proxy, m)
    return proxy
  }


  /** @internal ProxyHost: an element as array methods hand it out. */
  out(m: Meta, v: unknown, index: number): unknown {
    return isObject(v) ? this.#wrap(v, m.raw, index, m.view) : v
  }

  /** @internal ProxyHost: the raw object behind a proxy of this state, for identity searches. */
  unwrap(v: unknown): unknown {
    // WeakMap.get is undefined for a primitive.
    const m = PROXIES.get(v as object)
    return m?.host === this ? m.raw : v
  }

  // ---- writes ----

  #writable(): Journal {
    // User code runs inside a write (a getter or a user Proxy being copied in, a comparator):
    // a write from there would reuse the adopter mid-value and could leave one object in two
    // places, or be undone by the native sort writing its items back past the journal (and
    // when a comparator is called differs between JavaScript engines: replicas would differ).
    if (this.#busy) throw canonError("state-read-only", "The state cannot change inside a sort's comparator, a getter or a Proxy trap of a value being stored: compute first, then write.")
    return this.#journal ?? readOnly()
  }

  #located(r: Refusal, t: object, ...k: Array<string | number>): CanonError {
    return refusalError(r, [...this.#pathTo(t), ...k])
  }

  /**
   * What the state stores when `v` is written at t[k] (t a raw container of this state; null:
   * the root). With `moves`, t[k] is being overwritten: drafts of its children may move (adopt.ts).
   */
  #adopt(t: object | null, k: string | number, v: unknown, moves: boolean, limit = MAX_WRITE_BYTES): unknown {
    // Fast paths first: most writes are numbers, booleans and short strings.
    if (typeof v === "number" || typeof v === "boolean" || v == null || (typeof v === "string" && v.length < 4096 && wellFormed(v))) {
      this.#count(v)
      // Every NaN is the one canonical NaN.
      return typeof v === "string" ? flat(v) : v === v ? v : NaN
    }
    this.adopter.start(limit)
    this.#busy = true
    try {
      // The root's slot is a one-element array holding it.
      return this.adopter.adopt(v, t ? this.adopter.drafts.get(t)!.depth + 1 : 0, moves ? t ?? [this.#current] : undefined, k)
    } catch (e) {
      throw e instanceof Refusal ? refusalError(e, t ? [...this.#pathTo(t), k] : []) : e
    } finally {
      this.#busy = false
    }
  }

  /** Counts a primitive written into the state (`writtenOf`): at least its encoding, plus a byte for its container's count. */
  #count(v: unknown): void {
    const n = typeof v === "string" ? 6 + utf8Length(v) : 10
    this.adopter.spent += n
    // At least its memory with its place (core/state/heap-estimate.ts): text two bytes a character at most.
    this.adopter.heap += 58 + n + (typeof v === "string" ? v.length : 0)
  }

  /** A write of `v` at t[k] on an object or an array (t raw). */
  #set(t: any, k: PropertyKey, v: unknown): void {
    this.#writable()
    const array = Array.isArray(t)
    if (array && k === "length") return this.#setLength(t, v)
    if (typeof k !== "string") throw this.#located(refuseSymbolKey(), t, String(k))
    // Writing undefined into an object deletes the key (the encoding has no undefined property).
    if (!array && v === undefined) return void this.#delete(t, k)
    const i = array ? arrayIndex(k) : -1
    if (array && i < 0) throw this.#located(new Refusal("a named key on an array", "Arrays hold elements only: use an object."), t, k)
    const next = this.#adopt(t, array ? i : k, v, true)
    // Read after adopting: a getter of a user object may have written here in the meantime.
    const len = t.length
    const had = array ? i < len : hasOwn.call(t, k)
    if (!had && array) {
      // Past the end: the slots in between become undefined, not holes.
      this.#grow(t, k, len, i + 1)
      for (let x = len; x < i; x++) t.push(undefined)
      t.push(next)
      return
    }
    // An existing key is well-formed already; a new one is checked.
    if (!had && !wellFormed(k)) throw this.#located(refuseLoneSurrogate(), t, k)
    if (!had) this.#count(k)
    this.#record(t, k, had, had ? t[k] : undefined)
    // An own key is plain data (assign); a new one named like an Object.prototype member is defined.
    if (had) t[k] = next
    else setOwn(t, k, next)
  }

  /** `delete t[k]`; on an array, an element becomes undefined (no holes: the encoding has none). */
  #delete(t: object, k: PropertyKey): boolean {
    if (Array.isArray(t)) {
      if (k === "length") return false
      if (hasOwn.call(t, k)) this.#set(t, k, undefined)
      return true
    }
    this.#writable()
    if (typeof k === "string" && hasOwn.call(t, k)) {
      const o = t as Record<string, unknown>
      this.#record(t, k, true, o[k])
      delete o[k]
    }
    return true
  }

  #define(t: object, k: PropertyKey, d: PropertyDescriptor): void {
    this.#writable()
    // An existing key (an array's: an element or its length) has these attributes true already.
    const exists = typeof k === "string" && hasOwn.call(t, k)
    const length = k === "length" && Array.isArray(t)
    // Plain data only, as assignment makes it (an array's length: its value only).
    if ("get" in d || "set" in d || (["writable", "enumerable", "configurable"] as const).some((a) =>
      a in d ? d[a] !== true || (length && a !== "writable") : !exists)) throw this.#located(new Refusal("a property that is not plain data", "Assign it, or define it writable, enumerable, configurable."), t, String(k))
    if ("value" in d) this.#set(t, k, d.value)
  }

  // ---- array writes ----

  /** Records growing `a` from `len` to `n` slots (refused past the write budget); the caller fills them. */
  #grow(a: unknown[], k: string, len: number, n: number): void {
    if ((n - len) * GROWTH_SLOT_BYTES > MAX_WRITE_BYTES) {
      throw this.#located(new Refusal(`${n - len} new array slots`, "One write adds at most 64 MiB: push instead of writing far past the end."), a, k)
    }
    this.#record(a, len, n - len, NOTHING)
    this.adopter.spent += (n - len) * GROWTH_SLOT_BYTES
    this.adopter.heap += (n - len) * 12
  }

  #setLength(a: unknown[], v: unknown): void {
    const n = Number(v)
    // An integer in [0, 2^32 - 1]: its ToUint32.
    if (n >>> 0 !== n) throw new RangeError("Invalid array length")
    const len = a.length
    if (n < len) {
      this.#record(a, n, 0, a.slice(n))
      a.length = n
    } else if (n > len) {
      this.#grow(a, "length", len, n)
      a.length = n
      a.fill(undefined, len, n)
    }
  }
  /**
   * @internal ProxyHost: an array mutator (sort, reverse, splice, fill, copyWithin; push, pop,
   * shift and unshift are splices), run natively on the raw array with one journal record.
   */
  mutate(m: Meta, name: string, args: unknown[]): unknown {
    if (m.view) return readOnly()
    this.#writable()
    const a = m.raw as unknown[]
    const [x, y, z] = args
    const sort = name === "sort"
    if (sort || name === "reverse") {
      if (sort && x !== undefined) callable(x)
      if (sort) {
        // Recorded first, whole: undoing it restores the array exactly. The comparator is user
        // code; it may read the state, not write it (#writable).
        this.#record(a, 0, -1, a.slice())
        this.#busy = true
        try {
          a.sort((x as Compare | undefined) && ((p, q) => (x as Compare)(this.out(m, p, -1), this.out(m, q, -1))))
        } finally {
          this.#busy = false
        }
      } else {
        // A reverse is its own inverse: a record of no size (a batch of reverses on a large
        // array must not hold a copy each).
        this.#record(a, -1, 0, null)
        a.reverse()
      }
      return m.proxy
    }
    // Each replaces `count` elements at `from` with `values`: one range record. splice(start,
    // deleteCount, ...items), fill(value, start, end), copyWithin(target, start, end): numbers are
    // coerced first (a valueOf may run user code), then new items adopted (copies: nothing is
    // overwritten, so nothing moves), and only then is the length read: nothing runs between
    // reading it and the write.
    const fill = name === "fill"
    const splice = name === "splice"
    const s = toInt(fill ? y : x)
    const e = toInt(fill ? z : y)
    const end = z === undefined || splice ? undefined : fill ? e : toInt(z)
    const at = rel(s, a.length)
    const adopted = (splice ? args.slice(2) : fill ? [x] : NOTHING).map((v, i) => this.#adopt(a, at + i, v, false))
    const len = a.length
    const from = splice && args.length < 1 ? 0 : rel(s, len)
    let count = len - from
    let values = adopted
    if (splice) {
      if (args.length !== 1) count = Math.min(Math.max(e, 0), count)
    } else {
      const src = fill ? from : rel(e, len)
      count = Math.max(Math.min((end === undefined ? len : rel(end, len)) - src, count), 0)
      // Objects are copied: one object in several slots (fill) or kept by its source slot
      // (copyWithin) would make the state a graph.
      if (!fill) this.adopter.start(MAX_WRITE_BYTES)
      values = []
      for (let i = 0; i < count; i++) {
        const v = fill ? adopted[0] : a[src + i]
        if (!isObject(v)) this.#count(v)
        values.push(isObject(v) && !(fill && i === 0) ? this.adopter.copy(v, m.depth + 1) : v)
      }
    }
    if (len - count + values.length > MAX_ARRAY_LENGTH) throw new TypeError("Invalid array length")
    const removed = a.slice(from, from + count)
    if (count > 0 || values.length > 0) {
      this.#record(a, from, values.length, removed)
      replaceRange(a, from, count, values)
    }
    return splice ? removed.map((v, i) => this.out(m, v, from + i)) : m.proxy
  }

  // ---- locations, for messages ----

  /**
   * The path from the root to the raw container `t`, for error messages only: followed up
   * through the places drafts were last seen, each step verified, O(depth). Errors stay cheap
   * even when a peer sends many bad commands. A stale step ends the path with "…".
   */
  #pathTo(t: object): Array<string | number> {
    const keys: Array<string | number> = []
    let cur = t
    for (let n = 0; n <= MAX_DEPTH; n++) {
      if (cur === this.#current) return keys
      const m = this.adopter.drafts.get(cur)
      const parent = m?.parent as Record<string | number, unknown> | null | undefined
      if (m === undefined || parent == null || parent[m.key] !== cur) break
      keys.unshift(Array.isArray(parent) ? Number(m.key) : m.key)
      cur = parent
    }
    keys.unshift(SOMEWHERE)
    return keys
  }
}

/**
 * The state as it is now, kept readable while it goes on changing: a snapshot job encodes
 * `root` a slice at a time, reading each container through `resolve`, which gives the copy
 * taken just before that container's first write after the freeze (or the live container if
 * it was not written). Only written containers are copied, once each. One freeze at a time.
 * A function, not a method: only the hub takes snapshots, and a replica's bundle leaves it out.
 */
export const freezeState = (host: JournaledState<unknown>): { readonly root: unknown; resolve(container: object): object; release(): void } => {
  if (host.beforeWrite !== undefined) throw new Error("The state is already frozen for another snapshot.")
  const copies = new Map<object, object>()
  /** Copies `t` on its first write while frozen; returns the copy's memory (heap-estimate.ts: a container, its slots or entries). */
  const touch = (t: object): number => {
    if (copies.has(t)) return 0
    if (Array.isArray(t)) {
      copies.set(t, t.slice())
      return CONTAINER_HEAP_BYTES + ARRAY_SLACK_HEAP_BYTES + SLOT_HEAP_BYTES * t.length
    }
    const copy = Object.create(Object.getPrototypeOf(t)) as Record<string, unknown>
    const o = t as Record<string, unknown>
    const keys = Object.keys(o)
    for (const k of keys) setOwn(copy, k, o[k])
    copies.set(t, copy)
    return CONTAINER_HEAP_BYTES + ENTRY_HEAP_BYTES * keys.length
  }
  host.beforeWrite = touch
  return {
    root: host.root,
    resolve: (c) => copies.get(c) ?? c,
    release: () => {
      if (host.beforeWrite === touch) host.beforeWrite = undefined
      copies.clear()
    },
  }
}

type Compare = (p: unknown, q: unknown) => number

/** A relative index (negative: from the end) as an index in [0, len]. */
const rel = (n: number, len: number): number => (n < 0 ? Math.max(len + n, 0) : Math.min(n, len))

/** ToIntegerOrInfinity. */
const toInt = (v: unknown): number => {
  const n = Math.trunc(Number(v))
  return n !== n ? 0 : n
}

/**
 * @internal Bytes written into `s` since it was made, never less than what they add to its
 * canonical encoding (new keys and array slots counted too; what writes remove is not
 * subtracted): how much the state can have grown between two reads of it. The hub bounds a
 * document's size by it (core/authority/size-bound.ts).
 */
export const writtenOf = (s: JournaledState<unknown>): number => s.adopter.spent

/**
 * @internal Bytes of memory written into `s` since it was made, and held by the undo journal,
 * as core/state/heap-estimate.ts counts them (nothing removed is subtracted): the hub's memory
 * gauge charges a command its growth.
 */
export const grownOf = (s: JournaledState<unknown>): number => s.adopter.heap

/** @internal Lets the drafts of `s` made so far go (between commands): the hub's, after each batch. */
export const forgetDrafts = (s: JournaledState<unknown>): void => {
  s.adopter.drafts = new WeakMap()
}
