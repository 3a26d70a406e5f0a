/**
 * JournaledState: writes through a draft behave exactly like writes to plain data, are
 * recorded, and undo restores the state exactly; nothing can be written outside a command.
 */
import fc from "fast-check"
import { types } from "node:util"
import { MAX_DEPTH, decodeCanonical, encodeCanonical } from "../core/canonical.js"
import { CanonError } from "../core/errors.js"
import { JournaledState, MAX_WRITE_BYTES, writtenOf, type Journal } from "../core/journal.js"
import { removedBytes } from "../core/authority/size-bound.js"
import { wellFormed } from "../core/bytes.js"

type Json = null | boolean | number | string | Json[] | { [k: string]: Json }
type Container = Record<string, unknown> | unknown[]

// ---- helpers ----

const clone = <T>(v: T): T => structuredClone(v)

/** Containers reachable from `root` (arrays and objects; drafts when walking a draft), in a fixed order. */
const containers = (root: unknown): Container[] => {
  const out: Container[] = []
  const seen = new Set<unknown>()
  const visit = (v: unknown, depth: number): void => {
    if (v === null || typeof v !== "object" || ArrayBuffer.isView(v) || seen.has(v) || depth > 10) return
    seen.add(v)
    out.push(v as Container)
    // Sorted, as a command sees them, so the draft and its plain model list the same containers.
    for (const k of Object.keys(v).sort()) visit((v as Record<string, unknown>)[k], depth + 1)
  }
  visit(root, 0)
  return out
}

/** Paths of proxies stored in a raw state: a draft must never end up inside the state. */
const proxiesIn = (root: unknown): string[] => {
  const found: string[] = []
  const seen = new Set<unknown>()
  const visit = (v: unknown, path: string, depth: number): void => {
    if (v === null || typeof v !== "object" || seen.has(v) || depth > 12) return
    if (types.isProxy(v)) {
      found.push(path)
      return
    }
    seen.add(v)
    for (const k of Object.keys(v)) visit((v as Record<string, unknown>)[k], `${path}.${k}`, depth + 1)
  }
  visit(root, "$", 0)
  return found
}

/** Keys in enumeration order, recursively: what for-in and Object.keys show (on a draft: a command). */
const keyOrder = (v: unknown): unknown => {
  if (Array.isArray(v)) return v.map(keyOrder)
  if (v === null || typeof v !== "object" || ArrayBuffer.isView(v)) return null
  return Object.keys(v).map((k) => [k, keyOrder((v as Record<string, unknown>)[k])])
}

const readOnlyError = (fn: () => unknown): CanonError => {
  try {
    fn()
  } catch (e) {
    if (e instanceof CanonError) return e
    throw new Error(`Expected a CanonError, got ${String((e as Error)?.stack ?? e)}`)
  }
  throw new Error("Expected a CanonError, nothing was thrown")
}

// ---- operations ----

interface Op {
  readonly kind: string
  /** picks the container */
  readonly a: number
  /** picks a key / index / count */
  readonly b: number
  readonly c: number
  readonly v: Json
}

const KEY_POOL = ["a", "b", "c", "k1", "k2", "0", "7", "zz"]

const compare = (x: unknown, y: unknown): number => {
  const sx = typeof x + ":" + (typeof x === "object" ? JSON.stringify(x) ?? "" : String(x))
  const sy = typeof y + ":" + (typeof y === "object" ? JSON.stringify(y) ?? "" : String(y))
  return sx < sy ? -1 : sx > sy ? 1 : 0
}

/** Writes element `i` as plain data under the state model: slots before it become undefined, never holes. */
const putAt = (c: unknown[], i: number, v: unknown): void => {
  while (c.length < i) c.push(undefined)
  c[i] = v
}

/**
 * Applies one operation to `root` (a draft, or with `plain` the plain-data model of what the
 * draft must do). The same op on the same shape does the same thing; where the state model
 * differs from plain JS objects the model spells it out: assigned containers are copied
 * (values, not references), arrays get undefined where plain JS leaves holes.
 */
const applyOp = (root: Container, op: Op, copying: boolean, plain: boolean): void => {
  const all = containers(root)
  const c = all[op.a % all.length]!
  const fresh = (): Json => clone(op.v)
  /** What an assignment of `v` stores: the model copies it, as the draft does. */
  const val = <T>(v: T): T => (plain ? clone(v) : v)
  if (Array.isArray(c)) {
    const len = c.length
    /** An item of this array (a draft when `c` is one), else a fresh value. */
    const item = (): Json => (len > 0 ? val(c[(op.b + op.c) % len] as Json) : fresh())
    switch (op.kind) {
      case "set": {
        const i = op.b % (len + 3) // may write past the end
        if (plain) putAt(c, i, fresh())
        else c[i] = fresh()
        return
      }
      case "delete":
        if (len === 0) return
        if (plain) c[op.b % len] = undefined
        else delete c[op.b % len]
        return
      // Items are new values, or (moving items) values of this array: drafts, copied in.
      case "push": c.push(...(op.c % 3 === 0 ? [fresh()] : op.c % 3 === 1 ? [fresh(), fresh()] : [item(), fresh(), item()])); return
      case "pop": c.pop(); return
      case "shift": c.shift(); return
      case "unshift": c.unshift(op.c % 2 === 0 ? fresh() : item()); return
      case "splice": c.splice(op.b % (len + 1), op.c % 3, ...(op.c % 2 === 0 ? [fresh()] : [item(), fresh()])); return
      case "truncate": c.length = op.b % (len + 1); return
      case "extend":
        if (plain) for (let k = 0; k < op.b % 3; k++) c.push(undefined)
        else c.length = len + (op.b % 3)
        return
      case "sort": c.sort(compare); return
      case "reverse": c.reverse(); return
      case "fill": {
        if (len === 0) return
        const start = op.b % len
        const end = Math.min(start + 1 + (op.c % 2), len)
        const v = fresh()
        // Each slot gets its own copy in the state.
        if (plain) for (let i = start; i < end; i++) c[i] = clone(v)
        else c.fill(v, start, end)
        return
      }
      case "copyWithin": {
        if (len <= 1) return
        if (plain) {
          const target = op.b % len
          const from = op.c % len
          const src = c.slice(from, from + Math.min(len - from, len - target))
          src.forEach((x, i) => { c[target + i] = clone(x) })
        } else c.copyWithin(op.b % len, op.c % len)
        return
      }
      case "nested": {
        const i = op.b % (len + 1)
        c[i] = { inner: [] }
        ;((c[i] as { inner: unknown[] }).inner).push(fresh())
        return
      }
      case "alias": {
        const src = all[op.b % all.length]!
        if (!containers(src).includes(c)) c[op.c % (len + 1)] = val(src)
        return
      }
      case "copy": {
        if (!copying) return
        const src = all[op.b % all.length]!
        if (containers(src).includes(c)) return
        c[op.c % (len + 1)] = val(Array.isArray(src) ? (op.c % 2 === 0 ? src.filter(() => true) : [...src]) : { ...src })
        return
      }
      case "wrap": {
        if (!copying) return
        const src = all[op.b % all.length]!
        if (containers(src).includes(c)) return
        c[op.c % (len + 1)] = val(op.c % 2 === 0 ? [src] : { inner: src })
        return
      }
      default: return
    }
  }
  // Commands see keys in canonical (sorted) order; sort here too so the plain model picks the same key.
  const keys = Object.keys(c).sort()
  const key = op.b % 3 === 0 && keys.length > 0 ? keys[op.c % keys.length]! : KEY_POOL[op.c % KEY_POOL.length]!
  switch (op.kind) {
    case "set":
    case "push":
    case "unshift":
      c[key] = fresh()
      return
    case "delete":
    case "pop":
    case "shift":
    case "truncate":
      delete c[key]
      return
    case "define":
    case "extend":
      Object.defineProperty(c, key, { value: fresh(), enumerable: true, writable: true, configurable: true })
      return
    case "nested":
      c[key] = { list: [1] }
      ;((c[key] as { list: unknown[] }).list).push(fresh())
      ;(c[key] as Record<string, unknown>).tag = fresh()
      return
    case "alias": {
      const src = all[op.b % all.length]!
      if (!containers(src).includes(c)) c[key] = val(src)
      return
    }
    case "copy": {
      if (!copying) return
      const src = all[op.b % all.length]!
      if (containers(src).includes(c)) return
      c[key] = val(Array.isArray(src) ? src.slice() : { ...src })
      return
    }
    case "wrap": {
      if (!copying) return
      const src = all[op.b % all.length]!
      if (containers(src).includes(c)) return
      c[key] = val(op.c % 2 === 0 ? [src] : { inner: src })
      return
    }
    default:
      // sort / reverse / splice / fill on an object: rewrite a key twice
      c[key] = fresh()
      c[key] = fresh()
  }
}

const json: fc.Arbitrary<Json> = fc.letrec<{ v: Json }>((tie) => ({
  v: fc.oneof(
    { depthSize: "small" },
    fc.constant(null),
    fc.boolean(),
    fc.integer({ min: -5, max: 5 }),
    fc.constantFrom("x", "y", ""),
    fc.array(tie("v"), { maxLength: 4 }),
    fc.dictionary(fc.constantFrom(...KEY_POOL), tie("v"), { maxKeys: 4, noNullPrototype: true }),
  ),
})).v

const initialState = fc.record({
  list: fc.array(json, { maxLength: 5 }),
  obj: fc.dictionary(fc.constantFrom(...KEY_POOL), json, { maxKeys: 5, noNullPrototype: true }),
  nested: fc.record({ deep: fc.record({ arr: fc.array(fc.integer({ min: 0, max: 9 }), { maxLength: 6 }) }) }),
  n: fc.integer(),
}).map((s) => clone(s) as Container) // plain prototypes everywhere

const BASIC_KINDS = ["set", "delete", "push", "pop", "shift", "unshift", "splice", "truncate", "extend", "sort", "reverse", "fill", "copyWithin", "nested", "alias", "define"]
const opArb = (kinds: string[]): fc.Arbitrary<Op> =>
  fc.record({ kind: fc.constantFrom(...kinds), a: fc.nat(50), b: fc.nat(50), c: fc.nat(50), v: json })

/** Runs `groups` of ops, each as one journal (one command), on a JournaledState and on a plain model. */
const runGroups = (initial: Container, groups: Op[][], copying: boolean) => {
  const js = new JournaledState<Container>(clone(initial))
  const model = clone(initial)
  const journals: Journal[] = []
  const after: Container[] = []
  for (const ops of groups) {
    const j = js.begin()
    const d = js.draft()
    for (const op of ops) {
      applyOp(d, op, copying, false)
      applyOp(model, op, copying, true)
    }
    js.end()
    journals.push(j)
    after.push(clone(model))
  }
  return { js, model, journals, after }
}

// ---- tests ----

describe("writes through a draft", () => {
  test("behave like plain writes, and undo (newest command first) restores each earlier state exactly", () => {
    fc.assert(
      fc.property(initialState, fc.array(fc.array(opArb(BASIC_KINDS), { maxLength: 12 }), { minLength: 1, maxLength: 4 }), (initial, groups) => {
        const { js, model, journals, after } = runGroups(initial, groups, false)
        const root = js.root
        // The draft did what the same code does to plain data.
        expect(js.root).toStrictEqual(model)
        expect(proxiesIn(js.root)).toEqual([])
        // Undo command by command, newest first: each step gives back the state before it.
        for (let i = journals.length - 1; i >= 0; i--) {
          js.undo(journals[i]!)
          expect(js.root).toStrictEqual(i === 0 ? initial : after[i - 1])
        }
        expect(js.root).toBe(root)
      }),
      { seed: 42, numRuns: 400 },
    )
  })

  test("undo then redo (the replica's rebase) ends where plain application ends", () => {
    fc.assert(
      fc.property(initialState, fc.array(opArb(BASIC_KINDS), { maxLength: 15 }), (initial, ops) => {
        const { js, model, journals } = runGroups(initial, [ops], false)
        js.undo(journals[0]!)
        const j = js.begin()
        const d = js.draft()
        for (const op of ops) applyOp(d, op, false, false)
        js.end()
        expect(js.root).toStrictEqual(model)
        js.undo(j)
        expect(js.root).toStrictEqual(initial)
      }),
      { seed: 7, numRuns: 200 },
    )
  })

  test("assigning new containers that hold drafts (filter, spread, [x], { x }) stores no proxies, and undo works", () => {
    // e.g. `s.items = s.items.filter(...)`, `s.a = { ...s.b }`, `s.pair = [s.x, s.y]`
    fc.assert(
      fc.property(
        initialState,
        fc.array(fc.array(opArb([...BASIC_KINDS, "copy", "copy", "wrap", "wrap"]), { maxLength: 12 }), { minLength: 1, maxLength: 3 }),
        (initial, groups) => {
          const { js, model, journals } = runGroups(initial, groups, true)
          expect(proxiesIn(js.root)).toEqual([])
          expect(js.root).toStrictEqual(model)
          for (let i = journals.length - 1; i >= 0; i--) js.undo(journals[i]!)
          expect(js.root).toStrictEqual(initial)
        },
      ),
      { seed: 42, numRuns: 300 },
    )
  })

  test("concrete: s.items = s.items.filter(...) then a later command edits an item; undoing it works", () => {
    const js = new JournaledState({ items: [{ id: "a", done: false }, { id: "b", done: false }] })
    const j1 = js.begin()
    const d1 = js.draft()
    d1.items = d1.items.filter((it) => it.id !== "b")
    js.end()
    const j2 = js.begin()
    js.draft().items[0]!.done = true
    js.end()
    expect(js.root).toEqual({ items: [{ id: "a", done: true }] })
    // The replica does exactly this on every rebase.
    js.undo(j2)
    expect(js.root).toEqual({ items: [{ id: "a", done: false }] })
    js.undo(j1)
    expect(js.root).toEqual({ items: [{ id: "a", done: false }, { id: "b", done: false }] })
    expect(proxiesIn(js.root)).toEqual([])
  })

  test("writing past the end of an array and then undoing restores the length", () => {
    const js = new JournaledState({ arr: [1, 2, 3] })
    const j = js.begin()
    const d = js.draft()
    d.arr[d.arr.length] = 4
    d.arr[9] = 10
    js.end()
    expect(js.root.arr.length).toBe(10)
    js.undo(j)
    expect(js.root.arr).toStrictEqual([1, 2, 3])
  })

  test("length truncation, pop and splice are undone element by element", () => {
    const js = new JournaledState({ arr: [{ x: 1 }, { x: 2 }, { x: 3 }, { x: 4 }] })
    const originals = [...js.root.arr]
    const j = js.begin()
    const d = js.draft()
    d.arr.length = 1
    d.arr.push({ x: 9 })
    d.arr.splice(0, 1, { x: 8 }, { x: 7 })
    d.arr.pop()
    d.arr.sort((p, q) => q.x - p.x)
    js.end()
    js.undo(j)
    expect(js.root.arr).toStrictEqual([{ x: 1 }, { x: 2 }, { x: 3 }, { x: 4 }])
    // The very same objects are back, not copies.
    js.root.arr.forEach((o, i) => expect(o).toBe(originals[i]))
  })

  test("after undo, commands enumerate keys in the same (canonical) order as a peer that never undid", () => {
    // Undoing a delete re-adds the key last, so physical insertion order differs between peers
    // that undid different commands; a command must not be able to tell.
    const js = new JournaledState<{ items: Record<string, number> }>({ items: { a: 1, b: 2, c: 3 } })
    const j = js.begin()
    const d = js.draft()
    delete d.items["a"]
    d.items["b"] = 20
    js.end()
    js.undo(j)
    expect(js.root.items).toStrictEqual({ a: 1, b: 2, c: 3 })
    const other = new JournaledState<{ items: Record<string, number> }>({ items: { c: 3, a: 1, b: 2 } })
    expect(Object.keys(js.draft().items)).toEqual(["a", "b", "c"])
    expect(Object.keys(other.draft().items)).toEqual(["a", "b", "c"])
    const seen: string[] = []
    for (const k in js.draft().items) seen.push(k)
    expect(seen).toEqual(["a", "b", "c"])
  })

  test("property: after undo, the key order a command sees equals a fresh peer's", () => {
    fc.assert(
      fc.property(initialState, fc.array(opArb(BASIC_KINDS), { maxLength: 12 }), (initial, ops) => {
        const { js, journals } = runGroups(initial, [ops], false)
        js.undo(journals[0]!)
        const fresh = new JournaledState(clone(initial) as Container)
        expect(keyOrder(js.draft())).toEqual(keyOrder(fresh.draft()))
      }),
      { seed: 42, numRuns: 200 },
    )
  })

  test("in-place writes to a Uint8Array in the state are undone with their command, or refused", () => {
    // Bytes are plain data (canonical.ts). If a write to them escaped the journal, a rebase would
    // apply it twice (e.g. `s.bytes[0]++`) and the replica would silently diverge.
    const writes: Array<(b: Uint8Array) => void> = [(b) => { b[0] = 9 }, (b) => { b[1]!++ }, (b) => b.set([7, 7], 1), (b) => b.fill(0)]
    for (const write of writes) {
      const js = new JournaledState({ bytes: new Uint8Array([1, 2, 3]) })
      const j = js.begin()
      try {
        write(js.draft().bytes)
      } catch {
        // refusing the write is fine too
      }
      js.end()
      js.undo(j)
      expect([...js.root.bytes]).toEqual([1, 2, 3])
    }
  })

  test("a draft reads like the state: identity is stable, array methods work", () => {
    const js = new JournaledState({ list: [{ v: 1 }, { v: 2 }], o: { inner: { v: 3 } } })
    js.begin()
    const d = js.draft()
    expect(d.list[0]).toBe(d.list[0])
    expect(d.o.inner).toBe(d.o.inner)
    expect(d.list.indexOf(d.list[1]!)).toBe(1)
    expect(d.list.indexOf(d.o.inner)).toBe(-1)
    expect(d.list.map((x) => x.v)).toEqual([1, 2])
    expect(d.list.find((x) => x.v === 2)).toBe(d.list[1])
    expect(Object.keys(d.o)).toEqual(["inner"])
    expect(JSON.stringify(d)).toBe(JSON.stringify(js.root))
    js.end()
  })

  test("the state given to the constructor is copied when it shares objects: a tree, never a graph", () => {
    const inner = { v: 1 }
    const js = new JournaledState({ list: [inner], o: { inner } })
    expect(js.root.list[0]).not.toBe(js.root.o.inner)
    expect(js.root.list[0]).not.toBe(inner)
    js.begin()
    js.draft().o.inner.v = 2
    js.end()
    expect(js.root.list[0]!.v).toBe(1)
    expect(inner.v).toBe(1)
  })
})

describe("written: what a command can have added", () => {
  /** What `run` as one command grew the canonical encoding by, what `written` counted, and what the hub takes off (size-bound.ts). */
  const grows = (initial: Container, run: (d: any) => void) => {
    const js = new JournaledState<Container>(clone(initial))
    const size = encodeCanonical(js.root).length
    const w = writtenOf(js)
    const j = js.begin()
    run(js.draft())
    js.end()
    return { grew: encodeCanonical(js.root).length - size, counted: writtenOf(js) - w - removedBytes(j) }
  }

  // Values with numbers of every encoding and strings of 1-4 UTF-8 bytes a character.
  const values: fc.Arbitrary<Json> = fc.oneof(json, fc.double(), fc.integer({ min: -(2 ** 40), max: 2 ** 40 }), fc.string({ unit: "binary", maxLength: 40 }).filter(wellFormed))
  const richOp = fc.record({ kind: fc.constantFrom(...BASIC_KINDS, "copy", "wrap"), a: fc.nat(50), b: fc.nat(50), c: fc.nat(50), v: values })

  test("property: no command grows the canonical encoding by more than `written` less the primitives it took out (copies, moves, overwrites included)", () => {
    fc.assert(
      fc.property(initialState, fc.array(fc.array(richOp, { maxLength: 12 }), { minLength: 1, maxLength: 4 }), (initial, groups) => {
        let state = initial
        for (const ops of groups) {
          const r = grows(state, (d) => { for (const op of ops) applyOp(d, op, true, false) })
          expect(r.grew).toBeLessThanOrEqual(r.counted)
          const model = clone(state)
          for (const op of ops) applyOp(model, op, true, true)
          state = model
        }
      }),
      { seed: 11, numRuns: 400 },
    )
  })

  test("every way to add bytes is counted: fill and copyWithin of long strings, new keys, slots, length, root", () => {
    const long = "z".repeat(4000)
    const cases: Array<[string, Container, (d: any) => void]> = [
      ["fill with a string", { a: [0, 0, 0, 0, 0, 0, 0, 0] }, (d) => d.a.fill(long)],
      ["copyWithin a long string", { a: [long, 0, 0, 0, 0, 0] }, (d) => d.a.copyWithin(1, 0, 1).copyWithin(2, 0, 2).copyWithin(4, 0, 2)],
      ["a long new key", { o: {} }, (d) => { d.o["k".repeat(3000)] = 1 }],
      ["many new keys of numbers", { o: {} }, (d) => { for (let i = 0; i < 300; i++) d.o[`k${i}`] = i * 1e9 + 0.5 }],
      ["a write past the end", { a: [] }, (d) => { d.a[5000] = 1 }],
      ["a longer length", { a: [] }, (d) => { d.a.length = 5000 }],
      ["pushes of numbers", { a: [] }, (d) => { for (let i = 0; i < 500; i++) d.a.push(-i - 0.25) }],
      ["a new root", { a: 1 }, (d) => d],
      ["overwrites of numbers by longer strings", { a: [1, 2, 3], o: { x: -1 } }, (d) => { d.a.fill("é".repeat(300)); d.o.x = "😀".repeat(200) }],
      ["a counter", { n: 126 }, (d) => { for (let i = 0; i < 300; i++) d.n++ }],
    ]
    for (const [name, initial, run] of cases) {
      const r = grows(initial, run)
      expect({ name, fits: r.grew <= r.counted }).toEqual({ name, fits: true })
    }
    const js = new JournaledState<Container>({ a: [] })
    js.begin()
    js.replaceRoot({ big: long.repeat(4) })
    js.end()
    expect(writtenOf(js)).toBeGreaterThanOrEqual(encodeCanonical(js.root).length)
  })

})

describe("user code inside a write", () => {
  test("a getter or a Proxy trap that writes to the state while its value is stored, or a sort's comparator that writes, is refused: the state stays a tree", () => {
    const attempts: Array<(d: any) => void> = [
      (d) => {
        // Splicing the array being sorted: the native sort would write its items back past the journal.
        d.list.sort((p: number, q: number) => (d.list.splice(0), p - q))
      },
      (d) => d.list.sort((p: number, q: number) => (d.n++, p - q)),
      (d) => {
        const arr: unknown[] = [d.a]
        Object.defineProperty(arr, 1, { get() { d.n = {}; return 1 }, enumerable: true, configurable: true })
        d.r = arr
      },
      (d) => {
        const target = { a: d.a, zz: 1 }
        d.r = new Proxy(target, { getOwnPropertyDescriptor(t, k) { if (k === "zz") d.n = { r: 1 }; return Reflect.getOwnPropertyDescriptor(t, k) } })
      },
    ]
    for (const attempt of attempts) {
      const js = new JournaledState<any>({ a: { big: "x".repeat(1000) }, r: 0, n: 0, list: [3, 1, 2] })
      const j = js.begin()
      expect(() => attempt(js.draft())).toThrow(expect.objectContaining({ code: "state-read-only" }))
      js.end()
      js.undo(j)
      expect(js.root).toEqual({ a: { big: "x".repeat(1000) }, r: 0, n: 0, list: [3, 1, 2] })
      // Had the inner write gone through, the outer one would have kept the draft's object: one object in two places.
      expect(containers(js.root).length).toBe(new Set(containers(js.root)).size)
    }
  })
})

describe("replaceRoot", () => {
  test("is recorded and undone: the original root object comes back", () => {
    const js = new JournaledState<unknown>({ a: 1, nested: { b: [1, 2] } })
    const original = js.root
    const j = js.begin()
    js.replaceRoot({ z: true })
    js.end()
    expect(js.root).toEqual({ z: true })
    js.undo(j)
    expect(js.root).toBe(original)
    expect(original).toEqual({ a: 1, nested: { b: [1, 2] } })
  })

  test("writes before and after a replaceRoot are all undone", () => {
    const js = new JournaledState<{ a: number; list: number[] }>({ a: 1, list: [1] })
    const original = js.root
    const j = js.begin()
    js.draft().a = 2
    js.draft().list.push(5)
    js.replaceRoot({ a: 100, list: [] })
    js.draft().a = 101
    js.draft().list.push(7)
    js.end()
    expect(js.root).toEqual({ a: 101, list: [7] })
    js.undo(j)
    expect(js.root).toBe(original)
    expect(js.root).toStrictEqual({ a: 1, list: [1] })
  })

  test("replacing the root with the draft itself stores the plain object, not a proxy", () => {
    const js = new JournaledState({ a: 1 })
    const original = js.root
    const j = js.begin()
    const d = js.draft()
    d.a = 2
    js.replaceRoot(d)
    js.end()
    expect(types.isProxy(js.root)).toBe(false)
    expect(js.root).toBe(original)
    js.undo(j)
    expect(js.root).toStrictEqual({ a: 1 })
  })

  test("a primitive root is replaced and restored", () => {
    const js = new JournaledState<number | string>(5)
    expect(js.draft()).toBe(5)
    const j1 = js.begin()
    js.replaceRoot(6)
    js.end()
    const j2 = js.begin()
    js.replaceRoot("six")
    js.end()
    expect(js.root).toBe("six")
    js.undo(j2)
    expect(js.root).toBe(6)
    js.undo(j1)
    expect(js.root).toBe(5)
  })

  test("replaceRoot outside a command throws state-read-only", () => {
    const js = new JournaledState({ a: 1 })
    expect(readOnlyError(() => js.replaceRoot({ a: 2 })).code).toBe("state-read-only")
    expect(js.root).toStrictEqual({ a: 1 })
  })
})

describe("writing outside begin/end", () => {
  const writes: Array<[string, (d: { a: number; list: number[]; o: { x: number; y?: number } }) => void]> = [
    ["set", (d) => { d.a = 2 }],
    ["nested set", (d) => { d.o.x = 2 }],
    ["new key", (d) => { d.o.y = 2 }],
    ["delete", (d) => { delete (d.o as { x?: number }).x }],
    ["push", (d) => { d.list.push(4) }],
    ["pop", (d) => { d.list.pop() }],
    ["splice", (d) => { d.list.splice(0, 1) }],
    ["length", (d) => { d.list.length = 0 }],
    ["sort", (d) => { d.list.sort((p, q) => q - p) }],
    ["defineProperty", (d) => { Object.defineProperty(d.o, "x", { value: 5 }) }],
    ["Object.assign", (d) => { Object.assign(d.o, { x: 9 }) }],
  ]

  for (const [name, write] of writes) {
    test(`${name} through a draft taken before begin throws state-read-only and changes nothing`, () => {
      const js = new JournaledState({ a: 1, list: [1, 2, 3], o: { x: 1 } as { x: number; y?: number } })
      const d = js.draft()
      const e = readOnlyError(() => write(d))
      expect(e.code).toBe("state-read-only")
      expect(e.message).toMatch(/command/)
      expect(js.root).toStrictEqual({ a: 1, list: [1, 2, 3], o: { x: 1 } })
    })

    test(`${name} through a draft kept past end throws state-read-only and changes nothing`, () => {
      const js = new JournaledState({ a: 1, list: [1, 2, 3], o: { x: 1 } as { x: number; y?: number } })
      js.begin()
      const d = js.draft()
      const nestedBefore = d.o
      js.end()
      expect(readOnlyError(() => write(d)).code).toBe("state-read-only")
      expect(readOnlyError(() => { nestedBefore.x = 3 }).code).toBe("state-read-only")
      expect(js.root).toStrictEqual({ a: 1, list: [1, 2, 3], o: { x: 1 } })
    })
  }

  test("the same draft writes again once a new command begins", () => {
    const js = new JournaledState({ a: 1 })
    const d = js.draft()
    expect(readOnlyError(() => { d.a = 2 }).code).toBe("state-read-only")
    const j = js.begin()
    d.a = 3
    js.end()
    expect(js.root.a).toBe(3)
    expect(readOnlyError(() => { d.a = 4 }).code).toBe("state-read-only")
    js.undo(j)
    expect(js.root.a).toBe(1)
  })

  test("the prototype of a draft cannot be changed", () => {
    const js = new JournaledState({ a: {} as object })
    js.begin()
    const e = readOnlyError(() => Object.setPrototypeOf(js.draft().a, { evil: true }))
    expect(e.code).toBe("state-unencodable")
    expect(e.message).toMatch(/prototype.*state\.a/)
    js.end()
    expect(Object.getPrototypeOf(js.root.a)).toBe(Object.prototype)
  })
})

// ---- the state model at the write (see core/state/adopt.ts) ----

const canonErr = (fn: () => unknown): CanonError => readOnlyError(fn)
/** ES2023 array methods (the project's lib is ES2022; Node 20 has them). */
const es = (a: unknown[]) => a as unknown as Record<"toReversed" | "toSorted" | "toSpliced" | "with" | "findLast" | "findLastIndex", (...x: any[]) => unknown>
const bytesOf = (v: unknown): string => Buffer.from(encodeCanonical(v)).toString("hex")

describe("value semantics: copies and moves", () => {
  test("rebuilding a list from its own items moves them (same objects), and undo puts the old list back", () => {
    const js = new JournaledState({ list: [{ id: 1 }, { id: 2 }, { id: 3 }] as Array<{ id: number }> })
    const [one, two, three] = js.root.list
    const oldList = js.root.list
    const j1 = js.begin()
    const d = js.draft()
    d.list = d.list.filter((x) => x.id !== 2)
    js.end()
    expect(js.root.list).toEqual([{ id: 1 }, { id: 3 }])
    expect(js.root.list[0]).toBe(one)
    expect(js.root.list[1]).toBe(three)
    const j2 = js.begin()
    js.draft().list = [...js.draft().list, { id: 4 }]
    js.draft().list[0]!.id = 10
    js.end()
    expect(js.root.list[0]).toBe(one)
    expect(js.root.list.map((x) => x.id)).toEqual([10, 3, 4])
    js.undo(j2)
    expect(js.root.list.map((x) => x.id)).toEqual([1, 3])
    js.undo(j1)
    expect(js.root.list).toBe(oldList)
    expect(js.root.list[1]).toBe(two)
    expect(js.root.list).toEqual([{ id: 1 }, { id: 2 }, { id: 3 }])
  })

  test("a move happens once: the same item twice gives one moved object and one copy", () => {
    const js = new JournaledState({ list: [{ n: 1 }] as Array<{ n: number }> })
    const item = js.root.list[0]
    js.begin()
    const d = js.draft()
    d.list = [d.list[0]!, d.list[0]!]
    d.list[1]!.n = 2
    js.end()
    expect(js.root.list[0]).toBe(item)
    expect(js.root.list[1]).not.toBe(item)
    expect(js.root.list).toEqual([{ n: 1 }, { n: 2 }])
  })

  test("moves still happen when the place hints are stale (after unshift shifted every index)", () => {
    const js = new JournaledState({ list: [{ n: 1 }, { n: 2 }] as Array<{ n: number }> })
    const originals = [...js.root.list]
    const j = js.begin()
    const d = js.draft()
    d.list.forEach((x) => x.n) // drafts made at indexes 0 and 1
    d.list.unshift({ n: 0 })
    d.list = d.list.filter(() => true)
    js.end()
    expect(js.root.list[1]).toBe(originals[0])
    expect(js.root.list[2]).toBe(originals[1])
    js.undo(j)
    expect(js.root.list).toEqual([{ n: 1 }, { n: 2 }])
  })

  test("return { ...state, x } keeps the untouched parts as they are (moved), and undo restores the old root", () => {
    const js = new JournaledState<{ big: number[]; x: number }>({ big: [1, 2, 3], x: 0 })
    const root = js.root
    const big = root.big
    const j = js.begin()
    const d = js.draft()
    js.replaceRoot({ ...d, x: 1 })
    js.end()
    expect(js.root).not.toBe(root)
    expect(js.root.big).toBe(big)
    js.undo(j)
    expect(js.root).toBe(root)
    expect(root).toEqual({ big: [1, 2, 3], x: 0 })
  })

  test("what is copied in is not shared with the command's locals or arguments", () => {
    const args = { tags: ["a"] }
    const js = new JournaledState<{ a?: { tags: string[] }; b?: { tags: string[] } }>({})
    js.begin()
    const d = js.draft()
    d.a = args
    d.b = d.a
    args.tags.push("local")
    d.b!.tags.push("b")
    js.end()
    expect(js.root).toEqual({ a: { tags: ["a"] }, b: { tags: ["a", "b"] } })
    expect(js.root.a).not.toBe(js.root.b)
    expect(args.tags).toEqual(["a", "local"])
  })

  test("a Buffer or an other-realm Uint8Array is stored as a plain Uint8Array copy", () => {
    const buf = Buffer.from([1, 2, 3])
    const js = new JournaledState<{ b?: Uint8Array; c?: Uint8Array }>({})
    js.begin()
    js.draft().b = buf
    js.draft().c = js.draft().b
    js.end()
    buf[0] = 9
    expect(Object.getPrototypeOf(js.root.b)).toBe(Uint8Array.prototype)
    expect([...js.root.b!]).toEqual([1, 2, 3])
    expect(js.root.c).not.toBe(js.root.b)
  })

  test("undefined deletes an object key, a deleted element is undefined, growing an array leaves no holes", () => {
    const js = new JournaledState<{ o: Record<string, unknown>; a: unknown[] }>({ o: { x: 1 }, a: [1, 2] })
    const before = bytesOf(js.root)
    const j = js.begin()
    const d = js.draft()
    d.o.x = undefined
    d.o.y = { inner: undefined, k: 1 }
    delete d.a[0]
    d.a[4] = 5
    d.a.length = 7
    js.end()
    expect(Object.keys(js.root.o)).toEqual(["y"])
    expect(Object.keys(js.root.o.y as object)).toEqual(["k"])
    expect(js.root.a).toStrictEqual([undefined, 2, undefined, undefined, 5, undefined, undefined])
    expect(Object.keys(js.root.a)).toHaveLength(7)
    js.undo(j)
    expect(bytesOf(js.root)).toBe(before)
  })
})

describe("array methods run on the raw array: one journal record per call", () => {
  test("splice, push, unshift, sort, reverse, fill, copyWithin and length on 10k items: 4 journal slots each", () => {
    const js = new JournaledState({ list: Array.from({ length: 10_000 }, (_, i) => ({ i })) })
    const before = bytesOf(js.root)
    const ops: Array<(l: Array<{ i: number }>) => unknown> = [
      (l) => l.splice(0, 1),
      (l) => l.splice(5, 100, { i: -1 }, { i: -2 }),
      (l) => l.push({ i: 1 }, { i: 2 }, { i: 3 }),
      (l) => l.unshift({ i: 0 }),
      (l) => l.pop(),
      (l) => l.shift(),
      (l) => l.sort((a, b) => b.i - a.i),
      (l) => l.reverse(),
      (l) => l.fill({ i: 7 }, 10, 20),
      (l) => l.copyWithin(0, 5000, 5100),
      (l) => { l.length = 50 },
    ]
    const journals: Journal[] = []
    for (const op of ops) {
      const j = js.begin()
      op(js.draft().list)
      js.end()
      expect(j.length).toBe(4)
      journals.push(j)
    }
    for (let i = journals.length - 1; i >= 0; i--) js.undo(journals[i]!)
    expect(bytesOf(js.root)).toBe(before)
  })

  test("readers hand out drafts: writes through callbacks and results are journaled", () => {
    const js = new JournaledState({ list: [{ n: 1 }, { n: 2 }, { n: 3 }] })
    const before = bytesOf(js.root)
    const j = js.begin()
    const d = js.draft()
    d.list.forEach((x, _i, arr) => {
      x.n += 10
      expect(arr).toBe(d.list)
    })
    d.list.find((x) => x.n === 12)!.n = 0
    d.list.filter((x) => x.n > 0)[0]!.n = -1
    d.list.slice(-1)[0]!.n = 99
    d.list.at(-1)!.n++
    for (const x of d.list) x.n *= 2
    d.list.map((x) => x).reverse()[0]!.n = 5
    js.end()
    expect(js.root.list).toEqual([{ n: -2 }, { n: 0 }, { n: 5 }])
    js.undo(j)
    expect(bytesOf(js.root)).toBe(before)
  })

  test("indexOf, includes and lastIndexOf find drafts; other objects are never found", () => {
    const js = new JournaledState({ list: [{ n: 1 }, { n: 2 }], o: { n: 1 } })
    js.begin()
    const d = js.draft()
    expect(d.list.indexOf(d.list[1]!)).toBe(1)
    expect(d.list.includes(d.list[0]!)).toBe(true)
    expect(d.list.lastIndexOf(d.list[0]!)).toBe(0)
    expect(d.list.indexOf(d.o)).toBe(-1)
    expect(d.list.indexOf({ n: 1 })).toBe(-1)
    expect((js.view().list as Array<{ n: number }>).indexOf(js.view().list[1]!)).toBe(1)
    js.end()
  })

  test("the engine answers every Array.prototype method, and returns frozen functions of its own", () => {
    const names = Object.getOwnPropertyNames(Array.prototype).filter((n) => n !== "constructor" && n !== "length")
    const js = new JournaledState({ list: [3, 1, 2] })
    js.begin()
    const d = js.draft().list as unknown as Record<string, unknown>
    for (const name of names) {
      expect([name, typeof d[name]]).toEqual([name, "function"])
      expect(d[name]).not.toBe((Array.prototype as unknown as Record<string, unknown>)[name])
      expect(Object.isFrozen(d[name])).toBe(true)
      expect(name in d).toBe(true)
    }
    expect(d[Symbol.iterator as unknown as string]).toBe(d.values)
    js.end()
  })

  test("readers return what the native methods return", () => {
    const data = [5, 1, 4, [2, [3]], "x", null]
    const js = new JournaledState({ list: data })
    js.begin()
    const d = js.draft().list as unknown as unknown[]
    const plain = structuredClone(data)
    const same = (f: (a: unknown[]) => unknown): void => expect(JSON.stringify(f(d))).toBe(JSON.stringify(f(plain)))
    same((a) => a.concat([7], 8))
    same((a) => a.flat(Infinity))
    same((a) => a.flatMap((x) => [x, x]))
    same((a) => a.join("-"))
    same((a) => String(a))
    same((a) => [...a.entries()])
    same((a) => [...a.keys()])
    same((a) => a.slice(1, -1))
    same((a) => a.reduce((s: string, x) => s + String(x), ""))
    same((a) => a.reduceRight((s: string, x) => s + String(x), ""))
    same((a) => es(a).toReversed())
    same((a) => es(a).toSorted())
    same((a) => es(a).toSpliced(1, 2, "y"))
    same((a) => es(a).with(-1, 0))
    same((a) => es(a).findLast((x: unknown) => typeof x === "number"))
    same((a) => es(a).findLastIndex((x: unknown) => typeof x === "number"))
    same((a) => a.some((x) => x === 4))
    same((a) => a.every((x) => x !== undefined))
    expect(() => d.reduce(() => 0)).not.toThrow()
    expect(() => ([] as unknown[]).reduce(() => 0)).toThrow(TypeError)
    js.end()
  })

  test("a method taken off a draft and called on something else does what the native one does", () => {
    const js = new JournaledState({ list: [1] })
    js.begin()
    const push = js.draft().list.push
    const other = [1, 2]
    expect(push.call(other, 3)).toBe(3)
    expect(other).toEqual([1, 2, 3])
    expect(js.draft().list.map.call([1, 2], (x: number) => x * 2)).toEqual([2, 4])
    js.end()
    expect(js.root.list).toEqual([1])
  })

  test("fill and copyWithin never put one object in two places", () => {
    const js = new JournaledState({ list: [{ n: 1 }, { n: 2 }, { n: 3 }] as Array<{ n: number }> })
    js.begin()
    const d = js.draft()
    d.list.copyWithin(0, 1)
    d.list.push({ n: 0 }, { n: 0 })
    d.list.fill({ n: 9 }, 3)
    d.list[0]!.n = 100
    d.list[3]!.n = 7
    js.end()
    expect(js.root.list).toEqual([{ n: 100 }, { n: 3 }, { n: 3 }, { n: 7 }, { n: 9 }])
    expect(new Set(js.root.list).size).toBe(5)
  })

  test("a comparator that writes (to the array it sorts or elsewhere) is refused, and undo restores the state exactly", () => {
    // When a comparator is called, and how often, differs between JavaScript engines: writes
    // from one would differ between replicas on different browsers.
    const js = new JournaledState({ list: [3, 1, 2], log: [] as number[] })
    const before = bytesOf(js.root)
    const j = js.begin()
    const d = js.draft()
    expect(() => d.list.sort((a, b) => {
      d.log.push(a)
      d.list[0] = 42
      return a - b
    })).toThrow(expect.objectContaining({ code: "state-read-only" }))
    // Reads are fine, and so is a sort after the refused one.
    d.list.sort((a, b) => a - b + d.log.length * 0)
    js.end()
    expect(js.root.list).toEqual([1, 2, 3])
    js.undo(j)
    expect(bytesOf(js.root)).toBe(before)
  })
})

describe("bounds", () => {
  test("a container at depth MAX_DEPTH - 1 can be written; one level deeper is refused, with the state unchanged", () => {
    const js = new JournaledState<{ deep?: unknown }>({})
    const nest = (levels: number): unknown => {
      let v: unknown = 1
      for (let i = 0; i < levels; i++) v = [v]
      return v
    }
    js.begin()
    // The root is depth 0, `deep` is depth 1: MAX_DEPTH - 1 more levels fit.
    js.draft().deep = nest(MAX_DEPTH - 1)
    js.end()
    expect(() => encodeCanonical(js.root)).not.toThrow()
    const before = bytesOf(js.root)
    js.begin()
    const e = canonErr(() => { js.draft().deep = nest(MAX_DEPTH) })
    js.end()
    expect(e.code).toBe("state-unencodable")
    expect(e.message).toMatch(/deeper than 512/)
    expect(bytesOf(js.root)).toBe(before)
    // Writing into a deep draft counts its own depth.
    js.begin()
    let d = js.draft().deep as unknown[]
    for (let i = 0; i < MAX_DEPTH - 2; i++) d = d[0] as unknown[]
    expect(canonErr(() => { d[0] = [1] }).code).toBe("state-unencodable")
    expect(canonErr(() => d.push([1])).code).toBe("state-unencodable")
    d[0] = 2
    js.end()
  })

  test(`one write adds at most ${MAX_WRITE_BYTES / 1048576} MiB; huge strings, far writes and long lengths are refused before allocating`, () => {
    const js = new JournaledState<{ s?: string; list: unknown[] }>({ list: [] })
    const before = bytesOf(js.root)
    js.begin()
    const d = js.draft()
    expect(canonErr(() => { d.s = "x".repeat(MAX_WRITE_BYTES / 3 + 10) }).message).toMatch(/MiB/)
    expect(canonErr(() => { d.list[2 ** 31] = 1 }).code).toBe("state-unencodable")
    expect(canonErr(() => { d.list.length = 2 ** 30 }).code).toBe("state-unencodable")
    expect(canonErr(() => d.list.push(1, ["y".repeat(MAX_WRITE_BYTES / 6), "y".repeat(MAX_WRITE_BYTES / 6)])).code).toBe("state-unencodable")
    expect(d.list.length).toBe(0)
    expect(() => { d.list.length = -1 }).toThrow(RangeError)
    js.end()
    expect(bytesOf(js.root)).toBe(before)
  })
})

describe("what a draft refuses", () => {
  test("defineProperty: accessors and non-default attributes; freeze, seal, preventExtensions", () => {
    const js = new JournaledState<{ o: Record<string, unknown>; l: number[] }>({ o: { a: 1 }, l: [1] })
    const before = bytesOf(js.root)
    js.begin()
    const d = js.draft()
    expect(canonErr(() => Object.defineProperty(d.o, "g", { get: () => 1, enumerable: true, configurable: true })).code).toBe("state-unencodable")
    expect(canonErr(() => Object.defineProperty(d.o, "b", { value: 1 })).message).toMatch(/writable/)
    expect(canonErr(() => Object.defineProperty(d.o, "a", { value: 1, enumerable: false })).code).toBe("state-unencodable")
    expect(canonErr(() => Object.freeze(d.o)).code).toBe("state-unencodable")
    expect(canonErr(() => Object.seal(d.l)).code).toBe("state-unencodable")
    expect(canonErr(() => Object.preventExtensions(d)).code).toBe("state-unencodable")
    expect(canonErr(() => { (d.o as Record<symbol, unknown>)[Symbol("s")] = 1 }).code).toBe("state-unencodable")
    expect(canonErr(() => { d.o["\uDC00"] = 1 }).code).toBe("state-unencodable")
    // An existing key's value may be redefined with defaults left out; a length too.
    Object.defineProperty(d.o, "a", { value: 2 })
    Object.defineProperty(d.l, "length", { value: 0 })
    js.end()
    expect(js.root).toEqual({ o: { a: 2 }, l: [] })
    expect(before).not.toBe(bytesOf(js.root))
  })

  test("a key that reads like an index but is not one (1.5, 01, 1e0) is a named key on an array: refused, never stored", () => {
    // It would be a property the encoding drops: a replica that loaded the state would not have it.
    const js = new JournaledState<{ l: unknown[] }>({ l: [1, 2, 3] })
    const before = bytesOf(js.root)
    js.begin()
    const l = js.draft().l as unknown as Record<string, unknown>
    for (const key of ["1.5", "7.5", "01", "1e0", "4294967295"]) {
      expect([key, canonErr(() => { l[key] = "x" }).message]).toEqual([key, expect.stringMatching(/named key on an array/)])
      expect([key, key in l, l[key]]).toEqual([key, false, undefined])
    }
    js.end()
    expect(Object.keys(js.root.l)).toEqual(["0", "1", "2"])
    expect(bytesOf(js.root)).toBe(before)
  })

  test("items given to splice, push and unshift may be drafts of the state (moving an item), and undo puts everything back", () => {
    // The mutator once read its third argument as a number for every method: a draft, a
    // null-prototype object or a symbol there threw a TypeError instead of being an item.
    const js = new JournaledState<{ l: Array<{ id: number }>; a: { id: number } }>({ l: [{ id: 0 }, { id: 1 }, { id: 2 }], a: { id: 9 } })
    const before = bytesOf(js.root)
    const j = js.begin()
    const d = js.draft()
    d.l.splice(0, 0, d.l[2]!)
    d.l.push(d.a, d.a, d.a)
    d.l.unshift(d.l[1]!, d.l[1]!, d.a)
    js.end()
    expect(js.root.l.map((x) => x.id)).toEqual([0, 0, 9, 2, 0, 1, 2, 9, 9, 9])
    expect(new Set(js.root.l).size).toBe(10)
    js.undo(j)
    expect(bytesOf(js.root)).toBe(before)
  })

  test("a reverse is recorded without a copy of the array (a batch of reverses on a large array holds no copies), and undone exactly", () => {
    const big = Array.from({ length: 10_000 }, (_, i) => i)
    const js = new JournaledState<{ l: number[] }>({ l: big })
    const before = bytesOf(js.root)
    const j = js.begin()
    const d = js.draft()
    for (let i = 0; i < 3; i++) d.l.reverse()
    d.l.sort((p, q) => p - q)
    d.l.reverse()
    js.end()
    expect(js.root.l[0]).toBe(9_999)
    // Five records of four slots; only the sort's holds the array.
    expect(j.length).toBe(20)
    expect(j.filter((x) => Array.isArray(x) && x.length === 10_000 && x !== js.root.l)).toHaveLength(1)
    js.undo(j)
    expect(bytesOf(js.root)).toBe(before)
  })

  test("bytes in the state are immutable, and no method or property hands out a writable alias", () => {
    const js = new JournaledState({ b: new Uint8Array([1, 2, 3]) })
    js.begin()
    const b = js.draft().b
    expect((b as unknown as Record<string, unknown>).buffer).toBeUndefined()
    const sub = b.subarray(0, 2)
    sub[0] = 9
    expect(b.slice(0, 1)[0]).toBe(1)
    expect(canonErr(() => b.forEach((_x, i, arr) => { arr[i] = 0 })).code).toBe("state-read-only")
    expect(canonErr(() => b.set([5])).code).toBe("state-read-only")
    expect(canonErr(() => { b[0] = 5 }).code).toBe("state-read-only")
    expect([...b]).toEqual([1, 2, 3])
    expect(b.map((x) => x * 2)).toEqual(new Uint8Array([2, 4, 6]))
    expect(b.length).toBe(3)
    expect(Object.prototype.toString.call(b)).toBe("[object Uint8Array]")
    js.end()
    expect([...js.root.b]).toEqual([1, 2, 3])
  })
})

describe("the app's view", () => {
  test("reads like the state in canonical key order; readers hand out views; writes and mutators are refused", () => {
    const js = new JournaledState({ z: 1, a: { list: [{ n: 1 }, { n: 2 }] } })
    const v = js.view()
    expect(Object.keys(v)).toEqual(["a", "z"])
    expect(JSON.stringify(v)).toBe('{"a":{"list":[{"n":1},{"n":2}]},"z":1}')
    const first = v.a.list.find((x) => x.n === 1)!
    expect(first).toBe(v.a.list[0])
    expect(readOnlyError(() => { first.n = 5 }).code).toBe("state-read-only")
    expect(readOnlyError(() => v.a.list.push({ n: 3 })).code).toBe("state-read-only")
    expect(readOnlyError(() => v.a.list.sort()).code).toBe("state-read-only")
    expect(readOnlyError(() => Object.freeze(v)).code).toBe("state-read-only")
    expect(Object.getOwnPropertyDescriptor(v, "a")!.value).toBe(v.a)
    expect(js.root).toEqual({ z: 1, a: { list: [{ n: 1 }, { n: 2 }] } })
  })

  test("a view assigned inside a command is copied in, like any outside value", () => {
    const js = new JournaledState<{ a: { n: number }; b?: { n: number } }>({ a: { n: 1 } })
    js.begin()
    js.draft().b = js.view().a
    js.end()
    expect(js.root.b).toEqual({ n: 1 })
    expect(js.root.b).not.toBe(js.root.a)
  })
})

describe("refusals say where", () => {
  test("the path of the write, through objects and arrays; '…' where a moved container cannot be placed", () => {
    const js = new JournaledState({ a: { "b c": [{ k: 0 }, { k: 1 }, { k: 2 }] } })
    js.begin()
    const list = js.draft().a["b c"]
    expect(canonErr(() => { (list[2] as Record<string, unknown>).when = new Date(0) }).message).toContain('a Date at state.a["b c"][2].when.')
    const item = list[1]!
    list.unshift({ k: -1 }) // item is now at index 2; where its draft was first seen is stale
    expect(canonErr(() => { (item as Record<string, unknown>).m = new Map() }).message).toContain("a Map at state….m.")
    js.end()
  })
})

describe("values from other states", () => {
  test("a draft or view of another state, bytes included, is copied in", () => {
    const other = new JournaledState({ b: new Uint8Array([1, 2]), o: { list: [1] } })
    const js = new JournaledState<Record<string, unknown>>({})
    other.begin()
    js.begin()
    const d = js.draft()
    d.fromDraft = other.draft().o
    d.bytesFromDraft = other.draft().b
    d.bytesFromView = other.view().b
    d.fromView = { nested: other.view().o }
    js.end()
    other.end()
    expect(js.root).toEqual({ fromDraft: { list: [1] }, bytesFromDraft: new Uint8Array([1, 2]), bytesFromView: new Uint8Array([1, 2]), fromView: { nested: { list: [1] } } })
    expect(js.root.fromDraft).not.toBe(other.root.o)
    expect(js.root.bytesFromView).not.toBe(other.root.b)
  })
})

describe("roots", () => {
  test("a freshly decoded state is taken as it is; anything else is copied; none can be set during a command", () => {
    const decoded = decodeCanonical(encodeCanonical({ a: [1] })) as { a: number[] }
    const js = new JournaledState(decoded)
    expect(js.root).toBe(decoded)
    const plain = { a: [2] }
    js.root = plain
    expect(js.root).toEqual(plain)
    expect(js.root).not.toBe(plain)
    // Another state's root is verified: handing it over does not copy it.
    const other = new JournaledState(js.root)
    expect(other.root).toBe(js.root)
    js.begin()
    expect(readOnlyError(() => { js.root = { a: [3] } }).code).toBe("state-read-only")
    js.end()
  })
})
