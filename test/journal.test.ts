/**
 * JournaledState: writes through a draft behave exactly like writes to plain data, are
 * recorded, and undo restores the state exactly; nothing can be written outside a command.
 */
import fc from "fast-check"
import { types } from "node:util"
import { CanonError } from "../core/errors.js"
import { JournaledState, type Journal } from "../core/journal.js"

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
      case "push": c.push(fresh(), ...(op.c % 2 === 0 ? [fresh()] : [])); return
      case "pop": c.pop(); return
      case "shift": c.shift(); return
      case "unshift": c.unshift(fresh()); return
      case "splice": c.splice(op.b % (len + 1), op.c % 3, ...(op.c % 2 === 0 ? [fresh()] : [fresh(), fresh()])); return
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
