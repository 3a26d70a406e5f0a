/**
 * The array and byte methods drafts and views answer with, instead of Array.prototype's.
 *
 * Why: through a proxy, every native array method runs one trap per element it touches (a
 * `splice` at the front of 10k items is 20k traps, and as many journal records). These run
 * the native method on the raw array instead: a mutator is one journal record (records.ts); a
 * reader wraps the callback so it sees drafts (or views) and the proxy as its array argument,
 * and turns raw elements in the result into drafts, so whatever code writes through them is
 * still journaled and checked.
 *
 * They are also the only functions a proxy returns for a name that is not data: reading `push`
 * never yields the real `Array.prototype.push`, so no key path chosen by a peer
 * (`s.list["push"].x = 1`) reaches a shared builtin. Every function here is frozen and shared
 * by all states; unknown names read as undefined. Called on anything but one of our proxies
 * (`const f = d.list.map; f.call(other, ...)`), each does what the native one does.
 */
import { canonError } from "../errors.js"
import { PROXIES, type Meta } from "./meta.js"

type Fn = (...args: any[]) => any
type Table = Readonly<Record<PropertyKey, Fn>>
/** What a method does on one of our proxies: `a` is the raw array (or bytes), `native` the builtin. */
type Body = (m: Meta, a: any, args: any[], native: Fn) => unknown

/** The meta of `self` if it is one of our proxies of an array (or of bytes). WeakMap.get is undefined for a non-object. */
const metaOf = (self: unknown, bytes: boolean): Meta | undefined => {
  const m = PROXIES.get(self as object)
  return m !== undefined && (bytes ? ArrayBuffer.isView(m.raw) : Array.isArray(m.raw)) ? m : undefined
}

/** A method on our proxies of arrays (or bytes); the native one on anything else. */
const method = (proto: object, name: string, bytes: boolean, body: Body): Fn => {
  const native = (proto as Record<string, Fn>)[name]!
  const fn = function (this: unknown, ...args: any[]): unknown {
    const m = metaOf(this, bytes)
    return m === undefined ? native.apply(this, args) : body(m, m.raw, args, native)
  }
  Object.defineProperty(fn, "name", { value: name })
  return Object.freeze(fn)
}

const out = (m: Meta, v: unknown, i: number): unknown => m.host.out(m, v, i)

/** `f` if it is a function, else the TypeError a native method throws. */
export const callable = (f: unknown): Fn => {
  if (typeof f !== "function") throw new TypeError("The callback is not a function.")
  return f as Fn
}

/** The callback a native method on the raw array calls: elements as drafts, the proxy as the array. */
const seeing = (m: Meta, f: unknown, self: unknown): Fn => {
  const g = callable(f)
  return (x: unknown, i: number) => g.call(self, out(m, x, i), i, m.proxy)
}

const arrayProto = Array.prototype
const typedProto = Object.getPrototypeOf(Uint8Array.prototype) as object
const A: Record<PropertyKey, Fn> = Object.create(null)
const B: Record<PropertyKey, Fn> = Object.create(null)
/** The native method on the raw array (or bytes). */
const direct: Body = (_m, a, args, native) => native.apply(a, args)

/**
 * Registers `name` for arrays and, where Uint8Array has it, for bytes with `bytes` (by default
 * the same body: the elements of bytes are numbers, which `out` hands out as they are).
 */
const def = (name: string, body: Body, bytes: Body = body): void => {
  A[name] = method(arrayProto, name, false, body)
  if (name in typedProto) B[name] = method(typedProto, name, true, bytes)
}

/** How a reader hands its arguments to the native method. */
const enum Pre { AS_IS, CALLBACK, SEARCH, COMPARATOR, COPY }
/** How it hands out the result. */
const enum Post { AS_IS, ELEMENT, ELEMENTS }

/**
 * The readers, by what they do with their arguments and their result. CALLBACK: the callback
 * sees drafts and the proxy as its array. SEARCH: a draft argument is looked up as the raw
 * object it stands for (identity searches). COMPARATOR: a comparator, if any, compares drafts.
 * COPY: the result mixes elements and new values, so the native method runs on a copy made of
 * drafts. Results that hold raw elements (ELEMENT, ELEMENTS) are turned into drafts; the others
 * are booleans, numbers, strings, key iterators, or whatever the callback returned. Bytes
 * filter, slice and sort to bytes (their elements are numbers, handed out as they are).
 */
const READERS: ReadonlyArray<readonly [string, Pre, Post]> = [
  ["every some forEach findIndex findLastIndex map flatMap", Pre.CALLBACK, Post.AS_IS],
  ["find findLast", Pre.CALLBACK, Post.ELEMENT],
  ["filter", Pre.CALLBACK, Post.ELEMENTS],
  ["indexOf lastIndexOf includes", Pre.SEARCH, Post.AS_IS],
  ["join keys toString toLocaleString", Pre.AS_IS, Post.AS_IS],
  ["slice toReversed", Pre.AS_IS, Post.ELEMENTS],
  ["toSorted", Pre.COMPARATOR, Post.ELEMENTS],
  ["at", Pre.AS_IS, Post.ELEMENT],
  ["concat flat toSpliced with", Pre.COPY, Post.AS_IS],
]
for (const [names, pre, post] of READERS) {
  for (const name of names.split(" ")) {
    def(name, (m, a, args, native) => {
      const [f, self] = args
      const r = native.apply(pre === Pre.COPY ? a.map((x: unknown, i: number) => out(m, x, i)) : a,
        pre === Pre.CALLBACK ? [seeing(m, f, self)]
        : pre === Pre.SEARCH ? [m.host.unwrap(f), ...args.slice(1)]
        : pre === Pre.COMPARATOR && typeof f === "function" ? [(x: unknown, y: unknown) => f(out(m, x, -1), out(m, y, -1))]
        : args)
      return post === Post.ELEMENT ? out(m, r, -1) : post === Post.ELEMENTS ? r.map((x: unknown) => out(m, x, -1)) : r
    })
  }
}
for (const name of ["reduce", "reduceRight"]) {
  def(name, (m, a, args, native) => {
    const f = callable(args[0])
    // Without an initial value the first element starts the sum: as a draft, never raw.
    const bare = args.length < 2
    const first = name === "reduce" ? 0 : a.length - 1
    if (bare && a.length === 0) throw new TypeError("Reduce of empty array with no initial value")
    return native.call(a, (acc: unknown, x: unknown, i: number) => (bare && i === first ? acc : f(acc, out(m, x, i), i, m.proxy)), bare ? out(m, a[first], first) : args[1])
  })
}
// Iterators of bytes are the native ones (numbers need no wrapping).
for (const name of ["values", "entries"]) {
  def(name, (m, a) => (function* () {
    for (let i = 0; i < a.length; i++) yield name === "values" ? out(m, a[i], i) : [i, out(m, a[i], i)]
  })(), direct)
}

// ---- mutators ----

/** A Uint8Array in the state is immutable: assign a new one. */
export const immutableBytes = (): never => {
  throw canonError("state-read-only", "State bytes are immutable: assign a new Uint8Array.")
}

// Arrays: the host writes one journal record (and refuses on views and outside a command); bytes refuse.
for (const name of ["splice", "sort", "reverse", "fill", "copyWithin"]) {
  def(name, (m, _a, args) => m.host.mutate(m, name, args), immutableBytes)
}
// The others are splices: at the end (Infinity: wherever the end is once the items are adopted)
// or the start, inserting their arguments (then answering the new length) or removing one.
for (const [name, start, count] of [["push", Infinity], ["pop", -1, 1], ["shift", 0, 1], ["unshift", 0]] as const) {
  def(name, (m, a, args) => {
    const removed = m.host.mutate(m, "splice", count === undefined ? [start, 0, ...args] : [start, count]) as unknown[]
    return count === undefined ? a.length : removed[0]
  })
}
// Bytes only: set refuses; subarray is a copy, not a view (a writable alias of bytes in the state).
for (const [name, body] of [["set", immutableBytes], ["subarray", (_m, a, args) => a.slice(...args)]] as Array<[string, Body]>) B[name] = method(typedProto, name, true, body)

// What `list[Symbol.iterator]` is.
A[Symbol.iterator] = A.values!
B[Symbol.iterator] = B.values!
/** Every Array.prototype method a draft or view of an array answers to, by name, and its iterator. */
export const ARRAY_METHODS: Table = Object.freeze(A)
/** Every Uint8Array method a draft or view of bytes answers to, by name, and its iterator. */
export const BYTES_METHODS: Table = Object.freeze(B)
