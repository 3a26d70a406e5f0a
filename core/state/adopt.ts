/**
 * Value semantics for everything written into the state: the one place that decides what may
 * enter it, and makes sure what enters is a tree of plain data that nothing outside shares.
 *
 * A value written into the state is *adopted*:
 * - primitives are checked: bigint, symbol and function are refused, a string with a lone
 *   UTF-16 surrogate is refused (it has no UTF-8 form, so peers could not agree on it), every
 *   NaN becomes the one canonical NaN;
 * - a Uint8Array (or Buffer, or one from another realm) is copied into a plain Uint8Array;
 * - other typed arrays, ArrayBuffer, Map, Set, Date, class instances, boxed primitives, objects
 *   with a getter or setter or a symbol key are refused;
 * - plain objects and arrays are copied, deeply, checking all of the above. Properties whose
 *   value is undefined are left out (the canonical encoding leaves them out too), holes in
 *   arrays become undefined, non-enumerable properties and an array's non-index properties are
 *   not data and are not copied;
 * - a draft (an object already in the state) is copied too: the state is a tree, never a graph.
 *
 * One exception keeps the common idioms O(n) instead of O(n * item size): a *move*. When a
 * write replaces the value O at a slot, drafts that sit directly inside the new container and
 * whose objects are direct children of O are moved (kept, not copied), each once:
 * `s.list = s.list.filter(f)`, `s.list = [...s.list, x]`, `s.items = { ...s.items, [id]: v }`,
 * `return { ...state, n: 1 }`. This is sound because of the tree invariant: a child of O is
 * reachable only through O, and O leaves the state with this write, so after it the child is
 * reachable only through the new container; undo puts O back (O itself was never changed, so
 * it still holds the child) and drops the new container. A move never changes the depth of
 * what moves (it is one level under the slot before and after), so depths stay valid.
 *
 * Bounds: nothing nests deeper than the canonical encoder accepts (MAX_DEPTH containers, see
 * canonical.ts), and one write adds at most MAX_WRITE_BYTES (an upper bound of its canonical
 * size, the estimate `sizeBound` uses) so one small command cannot make a peer allocate without
 * limit.
 */
import { utf8Length, wellFormed } from "../bytes.js"
import { MAX_DEPTH, hasPlainPrototype, isBytes, notPlain } from "../canonical.js"
import { CanonError, canonError } from "../errors.js"
import { PROXIES, type Meta } from "./meta.js"
import { hasOwn, setOwn } from "./records.js"

/**
 * Most data one write may add to the state, in bytes of canonical encoding (upper bound: 3 per
 * UTF-16 unit of a string, 9 per number, 6 per container and key overhead). 64 MiB: far above
 * any sane single write (a frame is 1 MiB, a whole snapshot is streamed in 64 KiB chunks), far
 * below what makes a browser tab or the hub run out of memory.
 */
export const MAX_WRITE_BYTES = 2 ** 26

/**
 * Growing an array by writing past its end or setting `length` adds undefined slots: 1 byte
 * each encoded, but 8 in memory. Counted at 8, so `s.list[2 ** 31] = 1` from a 20-byte command
 * is refused instead of allocating gigabytes.
 */
export const GROWTH_SLOT_BYTES = 8

/**
 * A string of its own: V8 makes a string cut from a longer one (`trim`, `slice`, `split` of 13
 * characters or more) a view that keeps the whole longer one alive, so a title trimmed from a
 * 256 KiB argument held 256 KiB for as long as the state held it. Copied, it holds itself.
 */
export const flat = (s: string): string => (s.length > 12 ? (" " + s).slice(1) : s)

export const isObject = (v: unknown): v is object => typeof v === "object" && v !== null

/**
 * The array index a key names, or -1: "0", "1", ... without leading zeros, below 2^32 - 1
 * (the key is the canonical string of its ToUint32; "1.5" and "1e3" are not indices).
 */
export const arrayIndex = (k: string): number => {
  const n = Number(k) >>> 0
  return String(n) === k && n < 4294967295 ? n : -1
}

/** A value refused by the state rules; the journal turns it into a CanonError with its location. */
export class Refusal {
  /** Keys from the written value down to the refused part (each level puts its key first as it unwinds). */
  readonly inner: Array<string | number> = []
  constructor(readonly what: string, readonly why: string) {}
}

/** A value refused by its type: "a Date", "an Int16Array", "a function", and what to store instead. */
export const refuseType = (v: unknown): Refusal => new Refusal(...notPlain(v))

export const refuseSymbolKey = (): Refusal => new Refusal("a symbol key", "Use a string key.")

export const refuseLoneSurrogate = (): Refusal =>
  new Refusal("a string with a lone UTF-16 surrogate", "Pair or remove it (s.toWellFormed()).")

export const refuseDepth = (): Refusal =>
  new Refusal(`a value nested deeper than ${MAX_DEPTH} levels`, "Flatten it (e.g. items keyed by id, with parent ids).")

export const refuseSize = (): Refusal =>
  new Refusal(`more than ${MAX_WRITE_BYTES / 1048576} MiB in one write`, "Split it over several commands.")

/** A path step the engine could not name (the container was not found from the root): -1, never a real step. */
export const SOMEWHERE = -1

/** Where a refused write was going, in JS-like syntax: state.items["a b"].done */
export const formatPath = (keys: ReadonlyArray<string | number>): string => {
  let out = "state"
  for (const k of keys) {
    out += k === SOMEWHERE ? "…" : typeof k === "number" ? `[${k}]` : /^[A-Za-z_$][\w$]*$/.test(k) ? `.${k}` : `[${JSON.stringify(k)}]`
  }
  return out
}

/** The CanonError for a refusal at `path` (the slot written, then the path inside the value). */
export const refusalError = (r: Refusal, path: ReadonlyArray<string | number>): CanonError =>
  canonError("state-unencodable", `Cannot store ${r.what} at ${formatPath([...path, ...r.inner])}. ${r.why}`)

/**
 * Adopts values for one write at a time. Not reentrant by design: a write runs no user code
 * between its start and its end except inside `fresh` (getters of user proxies), and each
 * write's candidate list is settled before the next write begins.
 */
export class Adopter {
  #budget = 0
  /**
   * Bytes adopted so far, over every write: each value counted at no less than its canonical
   * encoding takes (strings by their UTF-8 bytes; the budget counts 3 a character, a bound it
   * can check before encoding). The hub bounds a document's size by it (core/authority/size-bound.ts).
   */
  spent = 0
  /**
   * Bytes of memory adopted so far, as core/state/heap-estimate.ts counts them (each value
   * with its place counted at an object entry's, text at two bytes a character): the hub's
   * memory gauge charges a command what it adds (an empty object is 6 bytes spent, 112 here).
   */
  heap = 0
  /** Drafts found directly inside the written container: [container, key, raw] triples. */
  readonly #candidates: unknown[] = []
  /** Objects moved by the current write: each moves once, a second place gets a copy. */
  readonly #moved = new Set<object>()
  /**
   * The drafts of the state adopted into, by raw object: they are move candidates (other proxies
   * are copied), and where each was last seen (parent and key) decides moves. The state's own
   * map of its drafts (JournaledState), which the hub replaces after each batch (forgetDrafts).
   */
  drafts = new WeakMap<object, Meta>()

  /** Starts one write that may add at most `limit` bytes. */
  start(limit: number): void {
    this.#budget = limit
  }

  /** Takes `n` bytes from the write's budget; `exact` (no less than their encoding) are counted as spent. */
  #spend(n: number, exact = n, extra = 0): void {
    this.spent += exact
    // `n` bounds the value's encoding (text at 3 bytes a character): with 58 for its place and
    // box, at least its memory, but for byte strings and containers (`extra`). The figures are
    // core/state/heap-estimate.ts's, written out: imported, they cost a browser bundle 49 bytes
    // (58 = an entry 48 + a box 16 - the 6 of `n`; 214 = a byte string's 224 - 16 + 6; 48 and 176 =
    // a container's 64 - 16, and an array's slack 128).
    this.heap += n + 58 + extra
    if ((this.#budget -= n) < 0) throw refuseSize()
  }

  /** Checks a primitive (any value that is not an object) and returns what the state stores. */
  #primitive(v: unknown): unknown {
    if (typeof v === "string") {
      // Memory: two bytes a character at most (the budget's three are UTF-8's worst).
      this.#spend(6 + v.length * 3, 6 + utf8Length(v), -v.length)
      if (!wellFormed(v)) throw refuseLoneSurrogate()
      return flat(v)
    }
    if (typeof v !== "number" && typeof v !== "boolean" && v != null) throw refuseType(v)
    this.#spend(typeof v === "number" ? 9 : 1)
    // Every NaN is the one canonical NaN.
    return v === v ? v : NaN
  }

  /**
   * Adopts `value` for a slot whose containers sit at `depth` (the slot's parent depth + 1).
   * `slot[key]` is what the write overwrites; it is read after all user code has run, so moves
   * are decided against what the slot really holds when it is overwritten. Pass no `slot` when
   * nothing is overwritten (push, insertion): then nothing moves.
   */
  adopt(value: unknown, depth: number, slot?: object, key?: string | number): unknown {
    // `s.a = s.a`: the object stays where it is. Any other draft is copied (#fresh).
    if (slot !== undefined && isObject(value)) {
      const raw = this.#rawOf(value)
      if (raw !== undefined && raw === ownAt(slot, key!)) return raw
    }
    this.#candidates.length = 0
    const out = this.#fresh(value, depth, slot !== undefined)
    if (this.#candidates.length > 0) this.#settle(ownAt(slot!, key!), depth + 1)
    return out
  }

  /**
   * A deep copy of data already in the state. It is checked like data from outside (it passes:
   * only depth and size can refuse it): one copying path for both.
   */
  copy(v: unknown, depth: number): unknown {
    return this.#fresh(v, depth, false)
  }

  /**
   * Copies a value from outside the state, checking it. With `top`, drafts directly inside it
   * are left in place as move candidates, decided by `settle`.
   */
  #fresh(v: unknown, depth: number, top: boolean): unknown {
    if (!isObject(v)) return this.#primitive(v)
    if (depth >= MAX_DEPTH) throw refuseDepth()
    // A draft or view of any state (this one's drafts here are not move candidates): its raw
    // object is state data, copied directly (a proxy of bytes could not be read as bytes).
    const raw = PROXIES.get(v)?.raw
    if (raw !== undefined) return this.copy(raw, depth)
    if (isBytes(v)) {
      this.#spend(6 + v.byteLength, undefined, 214)
      return new Uint8Array(v)
    }
    const array = Array.isArray(v)
    // Realm-independent: a plain object's prototype is null or some realm's Object.prototype.
    if (!array && !hasPlainPrototype(v)) throw refuseType(v)
    // An array's elements (holes read as undefined), or an object's own enumerable data properties.
    const keys = array ? undefined : Reflect.ownKeys(v)
    const n = array ? v.length : keys!.length
    this.#spend(array ? 6 + n : 6, undefined, array ? 176 : 48)
    const out: any = array ? [] : {}
    let k: string | symbol | number = ""
    try {
      for (let i = 0; i < n; i++) {
        let x: unknown
        if (array) x = v[(k = i)]
        else {
          k = keys![i]!
          if (typeof k === "symbol") throw refuseSymbolKey()
          const d = Reflect.getOwnPropertyDescriptor(v, k)
          if (d === undefined || !d.enumerable) continue
          if (d.get !== undefined || d.set !== undefined) throw new Refusal("a getter or setter", "Store the value itself.")
          // Undefined properties are left out, as the encoding leaves them out.
          if ((x = d.value) === undefined) continue
          if (!wellFormed(k)) throw refuseLoneSurrogate()
          this.#spend(6 + k.length * 3, 6 + utf8Length(k))
        }
        // A checked copy, or with `top`, a draft of this state as it is, left as a move candidate for `settle`.
        const raw = top && isObject(x) ? this.#rawOf(x) : undefined
        if (raw !== undefined) this.#candidates.push(out, k, raw)
        const y = raw ?? this.#fresh(x, depth + 1, false)
        if (array) out.push(y)
        else setOwn(out, k as string, y)
      }
    } catch (e) {
      if (e instanceof Refusal && typeof k !== "symbol") e.inner.unshift(k)
      throw e
    }
    return out
  }

  /** The raw object behind `v` if `v` is a draft of this state (views are not drafts: assigning one copies it). */
  #rawOf(v: object): object | undefined {
    const m = PROXIES.get(v)
    return m !== undefined && this.drafts.get(m.raw) === m ? m.raw : undefined
  }

  /**
   * Decides the move candidates: each one whose object is a direct child of `old` (the value
   * being overwritten) moves, once; the others are replaced by copies. A child is found by the
   * place its draft was last seen (O(1), verified against `old`), else in a set of `old`'s
   * children built once (O(size of old), like the spread or filter that produced the candidates).
   */
  #settle(old: unknown, depth: number): void {
    const c = this.#candidates
    const moved = this.#moved
    // Cleared first too: a refusal may have ended the previous settle halfway.
    moved.clear()
    let children: Set<object> | undefined
    const container = isObject(old) && !ArrayBuffer.isView(old) ? (old as Record<string | number, unknown>) : undefined
    for (let i = 0; i < c.length; i += 3) {
      const into = c[i] as Record<string | number, unknown>
      const key = c[i + 1] as string | number
      const raw = c[i + 2] as object
      // Every candidate is a draft of this state (#rawOf found it), so it has a meta.
      const draft = this.drafts.get(raw)!
      const move = container !== undefined && !moved.has(raw) &&
        ((draft.parent === container && container[draft.key] === raw) || (children ??= childrenOf(container)).has(raw))
      if (move) {
        moved.add(raw)
        draft.parent = into
        draft.key = key
      } else {
        setOwn(into, key as string, this.copy(raw, depth))
      }
    }
    c.length = 0
    moved.clear()
  }
}

/** What `slot[key]` holds as an own property (no closure per write: this runs on every one). */
const ownAt = (slot: object, key: string | number): unknown =>
  hasOwn.call(slot, key) ? (slot as Record<string | number, unknown>)[key] : undefined

/** The objects directly inside a container. */
const childrenOf = (container: object): Set<object> => {
  const children = new Set<object>()
  for (const v of Object.values(container)) if (isObject(v)) children.add(v)
  return children
}
