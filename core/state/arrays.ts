/**
 * The array and byte methods drafts and views answer with, instead of Array.prototype's.
 *
 * Why: through a proxy, every native array method runs one trap per element it touches (a
 * `splice` at the front of 10k items is 20k traps, and as many journal records). These run
 * natively on the raw array instead: a mutator is one journal record (see records.ts), a
 * reader loops over the raw elements and hands callbacks and results drafts (or views), so
 * whatever code writes through them is still journaled and checked.
 *
 * They are also the only functions a proxy ever returns for a name that is not data: reading
 * `push` never yields the real `Array.prototype.push`, so no key path chosen by a peer
 * (`s.list["push"].x = 1`, `s.list["constructor"]...`) reaches a shared builtin. Every function
 * here is frozen and shared by all states; unknown names read as undefined.
 *
 * Called on anything but one of our proxies (`const f = d.list.map; f.call(other, ...)`), each
 * method does what the native one does.
 */
import { canonError } from "../errors.js"
import { PROXIES, type Meta } from "./meta.js"

type Fn = (...args: unknown[]) => unknown
type Table = Readonly<Record<string, Fn>>

const arrayNative = Array.prototype as unknown as Record<string, Fn>
const bytesNative = Object.getPrototypeOf(Uint8Array.prototype) as Record<string, Fn>
const nativeArray = Object.create(null) as Record<string, Fn>
const nativeBytes = Object.create(null) as Record<string, Fn>

const metaOfArray = (self: unknown): Meta | undefined => {
  const m = typeof self === "object" && self !== null ? PROXIES.get(self) : undefined
  return m !== undefined && Array.isArray(m.raw) ? m : undefined
}

const metaOfBytes = (self: unknown): Meta | undefined => {
  const m = typeof self === "object" && self !== null ? PROXIES.get(self) : undefined
  return m !== undefined && ArrayBuffer.isView(m.raw) ? m : undefined
}

const callable = (fn: unknown, name: string): Fn => {
  if (typeof fn !== "function") throw new TypeError(`${name}: the callback is not a function.`)
  return fn as Fn
}

/** ToIntegerOrInfinity. */
const toInt = (v: unknown): number => {
  const n = Math.trunc(Number(v))
  return n !== n ? 0 : n
}

/** A relative index (negative counts from the end), clamped to [0, len]. */
const rel = (v: unknown, len: number): number => {
  const n = toInt(v)
  return n < 0 ? Math.max(len + n, 0) : Math.min(n, len)
}

const raw = (m: Meta): unknown[] => m.raw as unknown[]

/** Readers shared by drafts and views: elements reach callbacks and results as m.host.out makes them. */
const readers = {
  at(this: unknown, index: unknown): unknown {
    const m = metaOfArray(this)
    if (m === undefined) return nativeArray.at!.apply(this, arguments as unknown as unknown[])
    const a = raw(m)
    const i = toInt(index)
    const k = i >= 0 ? i : a.length + i
    return k >= 0 && k < a.length ? m.host.out(m, a[k], k) : undefined
  },
  concat(this: unknown, ...items: unknown[]): unknown[] {
    const m = metaOfArray(this)
    if (m === undefined) return nativeArray.concat!.apply(this, items) as unknown[]
    const out: unknown[] = []
    const append = (x: unknown): void => {
      const xm = metaOfArray(x)
      if (xm !== undefined) {
        const xa = raw(xm)
        for (let i = 0; i < xa.length; i++) out.push(xm.host.out(xm, xa[i], i))
      } else if (Array.isArray(x)) {
        for (let i = 0; i < x.length; i++) out.push(x[i])
      } else out.push(x)
    }
    append(m.proxy)
    for (const x of items) append(x)
    return out
  },
  entries(this: unknown): IterableIterator<[number, unknown]> {
    const m = metaOfArray(this)
    if (m === undefined) return nativeArray.entries!.call(this) as IterableIterator<[number, unknown]>
    return (function* () {
      const a = raw(m)
      for (let i = 0; i < a.length; i++) yield [i, m.host.out(m, a[i], i)] as [number, unknown]
    })()
  },
  every(this: unknown, fn: unknown, thisArg?: unknown): boolean {
    const m = metaOfArray(this)
    if (m === undefined) return nativeArray.every!.apply(this, arguments as unknown as unknown[]) as boolean
    const f = callable(fn, "every")
    const a = raw(m)
    const len = a.length
    for (let i = 0; i < len; i++) if (i < a.length && !f.call(thisArg, m.host.out(m, a[i], i), i, m.proxy)) return false
    return true
  },
  filter(this: unknown, fn: unknown, thisArg?: unknown): unknown[] {
    const m = metaOfArray(this)
    if (m === undefined) return nativeArray.filter!.apply(this, arguments as unknown as unknown[]) as unknown[]
    const f = callable(fn, "filter")
    const a = raw(m)
    const len = a.length
    const out: unknown[] = []
    for (let i = 0; i < len; i++) {
      if (i >= a.length) continue
      const v = m.host.out(m, a[i], i)
      if (f.call(thisArg, v, i, m.proxy)) out.push(v)
    }
    return out
  },
  find(this: unknown, fn: unknown, thisArg?: unknown): unknown {
    const m = metaOfArray(this)
    if (m === undefined) return nativeArray.find!.apply(this, arguments as unknown as unknown[])
    const f = callable(fn, "find")
    const a = raw(m)
    const len = a.length
    for (let i = 0; i < len; i++) {
      const v = m.host.out(m, a[i], i)
      if (f.call(thisArg, v, i, m.proxy)) return v
    }
    return undefined
  },
  findIndex(this: unknown, fn: unknown, thisArg?: unknown): number {
    const m = metaOfArray(this)
    if (m === undefined) return nativeArray.findIndex!.apply(this, arguments as unknown as unknown[]) as number
    const f = callable(fn, "findIndex")
    const a = raw(m)
    const len = a.length
    for (let i = 0; i < len; i++) if (f.call(thisArg, m.host.out(m, a[i], i), i, m.proxy)) return i
    return -1
  },
  findLast(this: unknown, fn: unknown, thisArg?: unknown): unknown {
    const m = metaOfArray(this)
    if (m === undefined) return nativeArray.findLast!.apply(this, arguments as unknown as unknown[])
    const f = callable(fn, "findLast")
    const a = raw(m)
    for (let i = a.length - 1; i >= 0; i--) {
      const v = m.host.out(m, a[i], i)
      if (f.call(thisArg, v, i, m.proxy)) return v
    }
    return undefined
  },
  findLastIndex(this: unknown, fn: unknown, thisArg?: unknown): number {
    const m = metaOfArray(this)
    if (m === undefined) return nativeArray.findLastIndex!.apply(this, arguments as unknown as unknown[]) as number
    const f = callable(fn, "findLastIndex")
    const a = raw(m)
    for (let i = a.length - 1; i >= 0; i--) if (f.call(thisArg, m.host.out(m, a[i], i), i, m.proxy)) return i
    return -1
  },
  flat(this: unknown, depth?: unknown): unknown[] {
    const m = metaOfArray(this)
    if (m === undefined) return nativeArray.flat!.apply(this, arguments as unknown as unknown[]) as unknown[]
    const out: unknown[] = []
    const into = (pm: Meta, levels: number): void => {
      const a = raw(pm)
      const len = a.length
      for (let i = 0; i < len; i++) {
        if (i >= a.length) continue
        const v = pm.host.out(pm, a[i], i)
        const vm = levels > 0 ? metaOfArray(v) : undefined
        if (vm !== undefined) into(vm, levels - 1)
        else out.push(v)
      }
    }
    into(m, depth === undefined ? 1 : Math.max(toInt(depth), 0))
    return out
  },
  flatMap(this: unknown, fn: unknown, thisArg?: unknown): unknown[] {
    const m = metaOfArray(this)
    if (m === undefined) return nativeArray.flatMap!.apply(this, arguments as unknown as unknown[]) as unknown[]
    const f = callable(fn, "flatMap")
    const a = raw(m)
    const len = a.length
    const out: unknown[] = []
    for (let i = 0; i < len; i++) {
      if (i >= a.length) continue
      const r = f.call(thisArg, m.host.out(m, a[i], i), i, m.proxy)
      if (Array.isArray(r)) {
        for (let j = 0; j < r.length; j++) if (j in r) out.push(r[j])
      } else out.push(r)
    }
    return out
  },
  forEach(this: unknown, fn: unknown, thisArg?: unknown): void {
    const m = metaOfArray(this)
    if (m === undefined) return void nativeArray.forEach!.apply(this, arguments as unknown as unknown[])
    const f = callable(fn, "forEach")
    const a = raw(m)
    const len = a.length
    for (let i = 0; i < len; i++) if (i < a.length) f.call(thisArg, m.host.out(m, a[i], i), i, m.proxy)
  },
  includes(this: unknown, x: unknown, from?: unknown): boolean {
    const m = metaOfArray(this)
    if (m === undefined) return nativeArray.includes!.apply(this, arguments as unknown as unknown[]) as boolean
    return raw(m).includes(m.host.unwrap(x), from as number)
  },
  indexOf(this: unknown, x: unknown, from?: unknown): number {
    const m = metaOfArray(this)
    if (m === undefined) return nativeArray.indexOf!.apply(this, arguments as unknown as unknown[]) as number
    return raw(m).indexOf(m.host.unwrap(x), from as number)
  },
  join(this: unknown, separator?: unknown): string {
    const m = metaOfArray(this)
    if (m === undefined) return nativeArray.join!.apply(this, arguments as unknown as unknown[]) as string
    return raw(m).join(separator as string)
  },
  keys(this: unknown): IterableIterator<number> {
    const m = metaOfArray(this)
    if (m === undefined) return nativeArray.keys!.call(this) as IterableIterator<number>
    return raw(m).keys()
  },
  lastIndexOf(this: unknown, x: unknown, from?: unknown): number {
    const m = metaOfArray(this)
    if (m === undefined) return nativeArray.lastIndexOf!.apply(this, arguments as unknown as unknown[]) as number
    const a = raw(m)
    return arguments.length > 1 ? a.lastIndexOf(m.host.unwrap(x), from as number) : a.lastIndexOf(m.host.unwrap(x))
  },
  map(this: unknown, fn: unknown, thisArg?: unknown): unknown[] {
    const m = metaOfArray(this)
    if (m === undefined) return nativeArray.map!.apply(this, arguments as unknown as unknown[]) as unknown[]
    const f = callable(fn, "map")
    const a = raw(m)
    const len = a.length
    const out: unknown[] = []
    for (let i = 0; i < len; i++) if (i < a.length) out[i] = f.call(thisArg, m.host.out(m, a[i], i), i, m.proxy)
    out.length = len
    return out
  },
  reduce(this: unknown, fn: unknown, ...init: unknown[]): unknown {
    const m = metaOfArray(this)
    if (m === undefined) return nativeArray.reduce!.apply(this, arguments as unknown as unknown[])
    const f = callable(fn, "reduce")
    const a = raw(m)
    const len = a.length
    let i = 0
    let acc: unknown
    if (init.length > 0) acc = init[0]
    else {
      if (len === 0 || a.length === 0) throw new TypeError("Reduce of empty array with no initial value")
      acc = m.host.out(m, a[0], 0)
      i = 1
    }
    for (; i < len; i++) if (i < a.length) acc = f(acc, m.host.out(m, a[i], i), i, m.proxy)
    return acc
  },
  reduceRight(this: unknown, fn: unknown, ...init: unknown[]): unknown {
    const m = metaOfArray(this)
    if (m === undefined) return nativeArray.reduceRight!.apply(this, arguments as unknown as unknown[])
    const f = callable(fn, "reduceRight")
    const a = raw(m)
    let i = a.length - 1
    let acc: unknown
    if (init.length > 0) acc = init[0]
    else {
      if (i < 0) throw new TypeError("Reduce of empty array with no initial value")
      acc = m.host.out(m, a[i], i)
      i--
    }
    for (; i >= 0; i--) if (i < a.length) acc = f(acc, m.host.out(m, a[i], i), i, m.proxy)
    return acc
  },
  slice(this: unknown, start?: unknown, end?: unknown): unknown[] {
    const m = metaOfArray(this)
    if (m === undefined) return nativeArray.slice!.apply(this, arguments as unknown as unknown[]) as unknown[]
    const a = raw(m)
    const len = a.length
    const from = rel(start, len)
    const to = end === undefined ? len : rel(end, len)
    const out: unknown[] = []
    for (let i = from; i < to && i < a.length; i++) out.push(m.host.out(m, a[i], i))
    return out
  },
  some(this: unknown, fn: unknown, thisArg?: unknown): boolean {
    const m = metaOfArray(this)
    if (m === undefined) return nativeArray.some!.apply(this, arguments as unknown as unknown[]) as boolean
    const f = callable(fn, "some")
    const a = raw(m)
    const len = a.length
    for (let i = 0; i < len; i++) if (i < a.length && f.call(thisArg, m.host.out(m, a[i], i), i, m.proxy)) return true
    return false
  },
  toLocaleString(this: unknown, ...args: unknown[]): string {
    const m = metaOfArray(this)
    if (m === undefined) return (nativeArray["toLocaleString"] as Fn).apply(this, args) as string
    return (nativeArray["toLocaleString"] as Fn).apply(raw(m), args) as string
  },
  toReversed(this: unknown): unknown[] {
    const m = metaOfArray(this)
    if (m === undefined) return nativeArray.toReversed!.call(this) as unknown[]
    const a = raw(m)
    const out: unknown[] = []
    for (let i = a.length - 1; i >= 0; i--) out.push(m.host.out(m, a[i], i))
    return out
  },
  toSorted(this: unknown, compare?: unknown): unknown[] {
    const m = metaOfArray(this)
    if (m === undefined) return nativeArray.toSorted!.apply(this, arguments as unknown as unknown[]) as unknown[]
    if (compare !== undefined && typeof compare !== "function") throw new TypeError("toSorted: the comparator is not a function.")
    const copy = raw(m).slice()
    if (compare === undefined) copy.sort()
    else copy.sort((x, y) => (compare as Fn)(m.host.out(m, x, -1), m.host.out(m, y, -1)) as number)
    for (let i = 0; i < copy.length; i++) copy[i] = m.host.out(m, copy[i], -1)
    return copy
  },
  toSpliced(this: unknown, ...args: unknown[]): unknown[] {
    const m = metaOfArray(this)
    if (m === undefined) return nativeArray.toSpliced!.apply(this, args) as unknown[]
    const a = raw(m)
    const copy: unknown[] = []
    for (let i = 0; i < a.length; i++) copy.push(m.host.out(m, a[i], i))
    ;(copy.splice as (...a: unknown[]) => unknown)(...args)
    return copy
  },
  toString(this: unknown): string {
    const m = metaOfArray(this)
    if (m === undefined) return nativeArray.toString!.call(this) as string
    return raw(m).join(",")
  },
  values(this: unknown): IterableIterator<unknown> {
    const m = metaOfArray(this)
    if (m === undefined) return nativeArray.values!.call(this) as IterableIterator<unknown>
    return (function* () {
      const a = raw(m)
      for (let i = 0; i < a.length; i++) yield m.host.out(m, a[i], i)
    })()
  },
  with(this: unknown, index: unknown, value: unknown): unknown[] {
    const m = metaOfArray(this)
    if (m === undefined) return nativeArray.with!.apply(this, arguments as unknown as unknown[]) as unknown[]
    const a = raw(m)
    const i = toInt(index)
    const k = i >= 0 ? i : a.length + i
    if (k < 0 || k >= a.length) throw new RangeError("Invalid index : " + String(i))
    const copy: unknown[] = []
    for (let j = 0; j < a.length; j++) copy.push(j === k ? value : m.host.out(m, a[j], j))
    return copy
  },
}

/** Mutators: one journal record each (the host refuses them on views and outside a command). */
const mutators = {
  copyWithin(this: unknown, target: unknown, start: unknown, end?: unknown): unknown {
    const m = metaOfArray(this)
    if (m === undefined) return nativeArray.copyWithin!.apply(this, arguments as unknown as unknown[])
    m.host.copyWithin(m, target, start, end)
    return m.proxy
  },
  fill(this: unknown, value: unknown, start?: unknown, end?: unknown): unknown {
    const m = metaOfArray(this)
    if (m === undefined) return nativeArray.fill!.apply(this, arguments as unknown as unknown[])
    m.host.fill(m, value, start, end)
    return m.proxy
  },
  pop(this: unknown): unknown {
    const m = metaOfArray(this)
    if (m === undefined) return nativeArray.pop!.call(this)
    return m.host.pop(m)
  },
  push(this: unknown, ...items: unknown[]): number {
    const m = metaOfArray(this)
    if (m === undefined) return nativeArray.push!.apply(this, items) as number
    return m.host.push(m, items)
  },
  reverse(this: unknown): unknown {
    const m = metaOfArray(this)
    if (m === undefined) return nativeArray.reverse!.call(this)
    m.host.reverse(m)
    return m.proxy
  },
  shift(this: unknown): unknown {
    const m = metaOfArray(this)
    if (m === undefined) return nativeArray.shift!.call(this)
    return m.host.shift(m)
  },
  sort(this: unknown, compare?: unknown): unknown {
    const m = metaOfArray(this)
    if (m === undefined) return nativeArray.sort!.apply(this, arguments as unknown as unknown[])
    if (compare !== undefined && typeof compare !== "function") throw new TypeError("sort: the comparator is not a function.")
    m.host.sort(m, compare as ((a: unknown, b: unknown) => number) | undefined)
    return m.proxy
  },
  splice(this: unknown, ...args: unknown[]): unknown[] {
    const m = metaOfArray(this)
    if (m === undefined) return nativeArray.splice!.apply(this, args) as unknown[]
    return m.host.splice(m, args)
  },
  unshift(this: unknown, ...items: unknown[]): number {
    const m = metaOfArray(this)
    if (m === undefined) return nativeArray.unshift!.apply(this, items) as number
    return m.host.unshift(m, items)
  },
}

const freezeTable = (entries: Record<string, Fn>): Table => {
  const t = Object.create(null) as Record<string, Fn>
  for (const [name, fn] of Object.entries(entries)) {
    Object.defineProperty(fn, "name", { value: name })
    t[name] = Object.freeze(fn)
  }
  return Object.freeze(t)
}

for (const name of [...Object.keys(readers), ...Object.keys(mutators)]) nativeArray[name] = arrayNative[name]!

/** Every Array.prototype method a draft or view of an array answers to, by name. */
export const ARRAY_METHODS: Table = freezeTable({ ...readers, ...mutators } as unknown as Record<string, Fn>)
/** What `list[Symbol.iterator]` is. */
export const ARRAY_ITERATOR: Fn = ARRAY_METHODS.values!

// ---- bytes ----

/** A Uint8Array in the state is immutable: assign a new one. */
const immutableBytes = (): never => {
  throw canonError("state-read-only", "A Uint8Array in the state cannot change in place; assign a new one (s.x = Uint8Array.from(...)).")
}

const bytesOf = (m: Meta): Uint8Array => m.raw as Uint8Array

/** Methods whose callbacks get (value, index, array): the array they see is the proxy, never the raw bytes. */
const BYTES_CALLBACKS = ["every", "filter", "find", "findIndex", "findLast", "findLastIndex", "forEach", "map", "some"] as const
/** Methods with no callback whose results are numbers, strings, iterators or fresh arrays. */
const BYTES_DIRECT = ["at", "entries", "includes", "indexOf", "join", "keys", "lastIndexOf", "slice", "toLocaleString", "toReversed", "toSorted", "toString", "values", "with"] as const
const BYTES_WRITERS = ["copyWithin", "fill", "reverse", "set", "sort"] as const

const bytesMethods: Record<string, Fn> = {}
for (const name of BYTES_CALLBACKS) {
  bytesMethods[name] = function (this: unknown, fn: unknown, thisArg?: unknown): unknown {
    const m = metaOfBytes(this)
    if (m === undefined) return nativeBytes[name]!.apply(this, arguments as unknown as unknown[])
    const f = callable(fn, name)
    return nativeBytes[name]!.call(bytesOf(m), (x: unknown, i: unknown) => f.call(thisArg, x, i, m.proxy))
  }
}
for (const name of ["reduce", "reduceRight"] as const) {
  bytesMethods[name] = function (this: unknown, fn: unknown, ...init: unknown[]): unknown {
    const m = metaOfBytes(this)
    if (m === undefined) return nativeBytes[name]!.apply(this, arguments as unknown as unknown[])
    const f = callable(fn, name)
    return nativeBytes[name]!.call(bytesOf(m), (acc: unknown, x: unknown, i: unknown) => f(acc, x, i, m.proxy), ...init)
  }
}
for (const name of BYTES_DIRECT) {
  bytesMethods[name] = function (this: unknown, ...args: unknown[]): unknown {
    const m = metaOfBytes(this)
    return nativeBytes[name]!.apply(m === undefined ? this : bytesOf(m), args)
  }
}
/** A copy, not a view: a view would be a writable alias of bytes in the state. */
bytesMethods.subarray = function (this: unknown, ...args: unknown[]): unknown {
  const m = metaOfBytes(this)
  return nativeBytes[m === undefined ? "subarray" : "slice"]!.apply(m === undefined ? this : bytesOf(m), args)
}
for (const name of BYTES_WRITERS) {
  bytesMethods[name] = function (this: unknown): unknown {
    const m = metaOfBytes(this)
    if (m === undefined) return nativeBytes[name]!.apply(this, arguments as unknown as unknown[])
    return immutableBytes()
  }
}
for (const name of Object.keys(bytesMethods)) nativeBytes[name] = bytesNative[name]!

/** Every Uint8Array method a draft or view of bytes answers to, by name. */
export const BYTES_METHODS: Table = freezeTable(bytesMethods)
export const BYTES_ITERATOR: Fn = BYTES_METHODS.values!
export { immutableBytes }
