/**
 * Hostile and careless commands against the state model (DESIGN.md, State model; issue 9).
 * Each numbered block reproduces one way a command used to poison the process or a document:
 *   1. prototype keys from arguments reaching Object.prototype, Object, Function, Array.prototype
 *   2. "__proto__" written through the prototype setter, leaving a state that cannot be encoded
 *   3. non-plain values (Date, Map, ...) accepted, crashing the process later at hash time
 *  11. aliasing: two paths sharing one object, diverging from a peer restored from bytes
 *  12. NaN payloads and view key order differing between peers
 * and property tests over random command programs mixing all of them.
 */
import fc from "fast-check"
import * as Schema from "effect/Schema"
import { decodeCanonical, encodeCanonical } from "../core/canonical.js"
import { CanonError } from "../core/errors.js"
import { hashState } from "../core/hash.js"
import { JournaledState, type Journal } from "../core/journal.js"
import { decodeArgs, defineMachine, makeContext, runApply, type Machine } from "../core/machine.js"

// ---- helpers ----

const hex = (b: Uint8Array): string => Buffer.from(b).toString("hex")

/** Everything reachable by a key path that a command could write through. */
const GLOBALS: ReadonlyArray<[string, object]> = [
  ["Object.prototype", Object.prototype],
  ["Object", Object],
  ["Function.prototype", Function.prototype],
  ["Function", Function],
  ["Array.prototype", Array.prototype],
  ["Array", Array],
  ["Object.prototype.toString", Object.prototype.toString],
  ["Object.prototype.hasOwnProperty", Object.prototype.hasOwnProperty],
  ["Object.prototype.valueOf", Object.prototype.valueOf],
  ["Object.prototype.__defineGetter__", (Object.prototype as unknown as Record<string, object>).__defineGetter__!],
  ["Array.prototype.push", Array.prototype.push],
  ["Array.prototype.map", Array.prototype.map],
  ["Array.prototype.constructor", Array.prototype.constructor],
  ["Uint8Array.prototype", Uint8Array.prototype],
  ["String.prototype", String.prototype],
  ["Number.prototype", Number.prototype],
]

/** Own property names and their values (by identity) of every global above. */
const snapshotGlobals = (): Map<string, Map<string | symbol, unknown>> => {
  const out = new Map<string, Map<string | symbol, unknown>>()
  for (const [name, o] of GLOBALS) {
    const props = new Map<string | symbol, unknown>()
    for (const k of Reflect.ownKeys(o)) {
      const d = Reflect.getOwnPropertyDescriptor(o, k)!
      props.set(k, "value" in d ? d.value : d.get)
    }
    props.set("[[Prototype]]", Object.getPrototypeOf(o))
    out.set(name, props)
  }
  return out
}

/** Fails with the first global that gained, lost or changed a property; then repairs it, so one failure does not poison later tests. */
const expectGlobalsAsBefore = (before: Map<string, Map<string | symbol, unknown>>): void => {
  const problems: string[] = []
  for (const [name, o] of GLOBALS) {
    const was = before.get(name)!
    for (const k of Reflect.ownKeys(o)) {
      if (!was.has(k)) {
        problems.push(`${name}.${String(k)} was added`)
        delete (o as Record<string | symbol, unknown>)[k]
      } else {
        const d = Reflect.getOwnPropertyDescriptor(o, k)!
        if (("value" in d ? d.value : d.get) !== was.get(k)) problems.push(`${name}.${String(k)} changed`)
      }
    }
    if (Object.getPrototypeOf(o) !== was.get("[[Prototype]]")) problems.push(`${name}'s prototype changed`)
  }
  expect(problems).toEqual([])
}

interface Outcome {
  readonly code: string | undefined
  readonly message: string | undefined
}

/** Applies one command as the authority does: begin, runApply, end, undo on rejection. */
const apply = <S>(host: JournaledState<S>, machine: Machine<S>, name: string, args: unknown, seq = 1): Outcome => {
  const decoded = decodeArgs(machine, name, args)
  if (!decoded.ok) return { code: decoded.rejection.code, message: decoded.rejection.message }
  const j = host.begin()
  let rejection
  try {
    rejection = runApply(host, decoded.cmd, name, decoded.args, makeContext("doc", seq, 1_700_000_000_000 + seq, "client"))
  } finally {
    host.end()
  }
  if (rejection !== undefined) host.undo(j)
  return { code: rejection?.code, message: rejection?.message }
}

/** The view as a string that tells key order, -0, NaN, undefined and bytes apart. */
const viewText = (v: unknown): string => {
  const walk = (x: unknown): unknown => {
    if (typeof x === "number") return Object.is(x, -0) ? "-0" : Number.isNaN(x) ? "NaN" : x
    if (x === undefined) return "undefined"
    if (x === null || typeof x !== "object") return x
    if (Object.prototype.toString.call(x) === "[object Uint8Array]") return `bytes:${Array.from(x as Uint8Array).join(",")}`
    if (Array.isArray(x)) return x.map(walk)
    return Object.keys(x).map((k) => [k, walk((x as Record<string, unknown>)[k])])
  }
  return JSON.stringify(walk(v))
}

/** A peer that restored the state from its canonical bytes (a snapshot, a resync, a restart). */
const restored = <S>(host: JournaledState<S>): JournaledState<S> => new JournaledState(decodeCanonical(encodeCanonical(host.root)) as S)

const Any = Schema.Unknown

// ---- 1. prototype keys ----

interface Todo {
  items: Record<string, { title: string; done: boolean }>
  list: unknown[]
  a: { b: Record<string, Record<string, unknown>> }
}

const Todos = defineMachine({
  name: "hostile-todo",
  version: 1,
  initial: (): Todo => ({ items: { milk: { title: "Milk", done: false } }, list: [1, 2], a: { b: {} } }),
  commands: {
    // The README's own example.
    toggle: {
      args: Schema.Struct({ id: Schema.String }),
      apply: (state, { id }, ctx) => {
        const item = state.items[id] ?? ctx.reject(`No item ${id}.`)
        item.done = !item.done
      },
    },
    add: {
      args: Schema.Struct({ id: Schema.String, title: Schema.String }),
      apply: (state, { id, title }, ctx) => {
        if (Object.hasOwn(state.items, id)) ctx.reject(`There is already an item ${id}.`)
        state.items[id] = { title, done: false }
      },
    },
    patch: {
      args: Schema.Struct({ id: Schema.String, fields: Schema.Record(Schema.String, Any) }),
      apply: (state, { id, fields }, ctx) => {
        const item = state.items[id] ?? ctx.reject(`No item ${id}.`)
        Object.assign(item, fields)
      },
    },
    define: {
      args: Schema.Struct({ id: Schema.String }),
      apply: (state, { id }) => {
        Object.defineProperty(state.items, id, { value: { title: "defined", done: true }, writable: true, enumerable: true, configurable: true })
      },
    },
    remove: {
      args: Schema.Struct({ id: Schema.String }),
      apply: (state, { id }) => {
        delete state.items[id]
      },
    },
    setField: {
      args: Schema.Struct({ id: Schema.String, field: Schema.String }),
      apply: (state, { id, field }) => {
        ;(state.items as Record<string, Record<string, unknown>>)[id]![field] = "x"
      },
    },
    nested: {
      args: Schema.Struct({ key: Schema.String }),
      apply: (state, { key }) => {
        state.a.b[key]!.c = 1
      },
    },
    listKey: {
      args: Schema.Struct({ key: Schema.String }),
      apply: (state, { key }) => {
        ;(state.list as unknown as Record<string, Record<string, unknown>>)[key]!.x = 1
      },
    },
    listSet: {
      args: Schema.Struct({ key: Schema.String }),
      apply: (state, { key }) => {
        ;(state.list as unknown as Record<string, unknown>)[key] = 1
      },
    },
  },
})

const HOSTILE_KEYS = ["__proto__", "constructor", "hasOwnProperty", "toString", "valueOf", "__defineGetter__", "isPrototypeOf", "prototype", "length", "push", "map"]

describe("1. prototype keys never reach a prototype or a builtin", () => {
  let before: ReturnType<typeof snapshotGlobals>
  beforeEach(() => {
    before = snapshotGlobals()
  })
  afterEach(() => expectGlobalsAsBefore(before))

  test("toggle (read, then write through what was read) with hostile ids is rejected: no such item", () => {
    for (const id of HOSTILE_KEYS) {
      const host = new JournaledState(Todos.initial())
      const hash = hashState(host.root)
      const view = viewText(host.view())
      const out = apply(host, Todos, "toggle", { id })
      expect([id, out.code]).toEqual([id, "rejected"])
      expect(hashState(host.root)).toBe(hash)
      expect(viewText(host.view())).toBe(view)
      expect(({} as Record<string, unknown>).done).toBeUndefined()
    }
  })

  test("nested a.b[key].c = 1 and list[key].x = 1 fail as commands and touch no builtin", () => {
    for (const key of HOSTILE_KEYS) {
      for (const name of ["nested", "listKey"]) {
        const host = new JournaledState(Todos.initial())
        const hash = hashState(host.root)
        const out = apply(host, Todos, name, { key })
        // list["length"] is a number: setting x on it is a TypeError in strict code too.
        expect([name, key, out.code]).toEqual([name, key, "command-failed"])
        expect(hashState(host.root)).toBe(hash)
      }
    }
    expect(({} as Record<string, unknown>).c).toBeUndefined()
    expect((Array.prototype.push as unknown as Record<string, unknown>).x).toBeUndefined()
  })

  test("a non-index key written on an array is refused (state-unencodable); length stays a length", () => {
    for (const key of HOSTILE_KEYS.filter((k) => k !== "length")) {
      const host = new JournaledState(Todos.initial())
      const hash = hashState(host.root)
      const out = apply(host, Todos, "listSet", { key })
      expect([key, out.code]).toEqual([key, "state-unencodable"])
      expect(out.message).toMatch(/array/)
      expect(hashState(host.root)).toBe(hash)
    }
    const host = new JournaledState(Todos.initial())
    expect(apply(host, Todos, "listSet", { key: "length" }).code).toBeUndefined()
    expect(host.root.list).toEqual([1])
  })

  test("set, defineProperty, delete and field writes with hostile keys make own keys only, and encode", () => {
    for (const id of HOSTILE_KEYS) {
      for (const name of ["add", "define", "remove"]) {
        const host = new JournaledState(Todos.initial())
        const out = apply(host, Todos, name, { id, title: "t" })
        expect([id, name, out.code]).toEqual([id, name, undefined])
        const items = host.root.items
        expect(Object.getPrototypeOf(items)).toBe(Object.prototype)
        if (name !== "remove") expect(Object.getOwnPropertyDescriptor(items, id)?.value).toEqual(expect.objectContaining({ done: name === "define" }))
        // The state encodes, and a peer restored from its bytes reads and hashes the same.
        const peer = restored(host)
        expect(hashState(peer.root)).toBe(hashState(host.root))
        expect(viewText(peer.view())).toBe(viewText(host.view()))
      }
      const host = new JournaledState(Todos.initial())
      expect(apply(host, Todos, "setField", { id: "milk", field: id }).code).toBeUndefined()
      expect(Object.keys(host.root.items.milk!)).toContain(id)
      expect(hashState(restored(host).root)).toBe(hashState(host.root))
    }
  })

  test("reads of prototype names see own keys only, in drafts and in the view", () => {
    const host = new JournaledState<Record<string, unknown>>({ items: { real: 1 }, list: [1] })
    const view = host.view() as { items: Record<string, unknown>; list: Record<string, unknown> }
    host.begin()
    const d = host.draft() as { items: Record<string, unknown>; list: Record<string, unknown> }
    for (const o of [d, view]) {
      for (const k of ["constructor", "toString", "__proto__", "hasOwnProperty", "valueOf", "__lookupGetter__"]) {
        expect([k, o.items[k]]).toEqual([k, undefined])
        expect([k, k in o.items]).toEqual([k, false])
      }
      expect("real" in o.items).toBe(true)
      expect(o.list["constructor"]).toBeUndefined()
      expect(o.list["__proto__"]).toBeUndefined()
      expect(o.list["nope"]).toBeUndefined()
      // Array methods are the engine's own frozen functions, never the builtins.
      expect(o.list["push"]).not.toBe(Array.prototype.push)
      expect(Object.isFrozen(o.list["push"])).toBe(true)
      expect(Object.isFrozen(o.list["map"])).toBe(true)
    }
    host.end()
  })
})

// ---- 2. "__proto__" as a key: an own property, never the prototype setter ----

describe("2. '__proto__' written by a command is an ordinary own key, and the state stays encodable", () => {
  let before: ReturnType<typeof snapshotGlobals>
  beforeEach(() => {
    before = snapshotGlobals()
  })
  afterEach(() => expectGlobalsAsBefore(before))

  test("add {id: '__proto__'} after an Object.hasOwn check", () => {
    const host = new JournaledState(Todos.initial())
    expect(apply(host, Todos, "add", { id: "__proto__", title: "sneaky" }).code).toBeUndefined()
    expect(Object.getPrototypeOf(host.root.items)).toBe(Object.prototype)
    expect(Object.keys(host.root.items).sort()).toEqual(["__proto__", "milk"])
    const hash = hashState(host.root)
    const peer = restored(host)
    expect(hashState(peer.root)).toBe(hash)
    expect(viewText(peer.view())).toBe(viewText(host.view()))
    // The key is usable like any other: toggled, then removed, and undone exactly.
    expect(apply(host, Todos, "toggle", { id: "__proto__" }).code).toBeUndefined()
    expect(host.root.items["__proto__"]).toEqual({ title: "sneaky", done: true })
    const j = host.begin()
    delete (host.draft().items as Record<string, unknown>)["__proto__"]
    host.end()
    expect(Object.keys(host.root.items)).toEqual(["milk"])
    host.undo(j)
    expect(Object.getOwnPropertyDescriptor(host.root.items, "__proto__")?.value).toEqual({ title: "sneaky", done: true })
    expect(Object.getPrototypeOf(host.root.items)).toBe(Object.prototype)
  })

  test("patch: Object.assign(item, fields) where fields (a decoded Schema.Record) has an own '__proto__'", () => {
    const fields = JSON.parse('{"__proto__": {"polluted": true}, "title": "new"}') as Record<string, unknown>
    expect(Object.keys(fields)).toContain("__proto__")
    const host = new JournaledState(Todos.initial())
    expect(apply(host, Todos, "patch", { id: "milk", fields }).code).toBeUndefined()
    const milk = host.root.items.milk as unknown as Record<string, unknown>
    expect(Object.getPrototypeOf(milk)).toBe(Object.prototype)
    expect(milk.polluted).toBeUndefined()
    expect(Object.getOwnPropertyDescriptor(milk, "__proto__")?.value).toEqual({ polluted: true })
    expect(milk.title).toBe("new")
    const peer = restored(host)
    expect(hashState(peer.root)).toBe(hashState(host.root))
    expect(viewText(peer.view())).toBe(viewText(host.view()))
  })

  test("undoing a write to an own '__proto__' restores it as an own key", () => {
    const host = new JournaledState<Record<string, unknown>>(decodeCanonical(encodeCanonical(JSON.parse('{"o": {"__proto__": 1}}'))) as Record<string, unknown>)
    const bytes = hex(encodeCanonical(host.root))
    const j = host.begin()
    ;(host.draft().o as Record<string, unknown>)["__proto__"] = { x: 1 }
    host.end()
    expect(Object.getOwnPropertyDescriptor(host.root.o, "__proto__")?.value).toEqual({ x: 1 })
    host.undo(j)
    expect(hex(encodeCanonical(host.root))).toBe(bytes)
    expect(Object.getPrototypeOf(host.root.o)).toBe(Object.prototype)
  })
})

// ---- 3. non-plain values are refused at the write ----

class Point {
  constructor(readonly x: number, readonly y: number) {}
}

interface Bag {
  n: number
  bag: Record<string, unknown>
  list: unknown[]
}

/** Values a command may not store, each with how it gets there. */
const BAD_VALUES: ReadonlyArray<[string, (ctx: { time: number }) => unknown]> = [
  ["Date", (ctx) => new Date(ctx.time)],
  ["Map", () => new Map([["a", 1]])],
  ["Set", () => new Set([1])],
  ["class instance", () => new Point(1, 2)],
  ["RegExp", () => /x/],
  ["boxed number", () => new Number(1)],
  ["Int16Array", () => new Int16Array(2)],
  ["Float64Array", () => new Float64Array(2)],
  ["ArrayBuffer", () => new ArrayBuffer(2)],
  ["DataView", () => new DataView(new ArrayBuffer(2))],
  ["bigint", () => 10n],
  ["symbol", () => Symbol("s")],
  ["function", () => () => 1],
  ["lone surrogate", () => "a\uD800b"],
  ["Date inside an object", (ctx) => ({ when: new Date(ctx.time) })],
  ["Map inside an array", () => [1, new Map()]],
  ["getter", () => ({ get x() { return 1 } })],
  ["symbol key", () => ({ [Symbol("k")]: 1, a: 1 })],
  ["object with a prototype", () => Object.create({ inherited: 1 })],
  ["too deep", () => {
    let v: unknown = 1
    for (let i = 0; i < 600; i++) v = [v]
    return v
  }],
  ["cycle", () => {
    const o: Record<string, unknown> = {}
    o.self = o
    return o
  }],
]

const bagMachine = (make: (ctx: { time: number }) => unknown) => defineMachine({
  name: "bag",
  version: 1,
  initial: (): Bag => ({ n: 0, bag: { keep: [1, 2] }, list: [1] }),
  commands: {
    set: { args: Schema.Struct({}), apply: (s, _a, ctx) => { s.n = 1; s.bag.value = make(ctx) } },
    push: { args: Schema.Struct({}), apply: (s, _a, ctx) => { s.n = 1; s.list.push(make(ctx)) } },
    splice: { args: Schema.Struct({}), apply: (s, _a, ctx) => { s.n = 1; s.list.splice(0, 1, 2, make(ctx)) } },
    fill: { args: Schema.Struct({}), apply: (s, _a, ctx) => { s.n = 1; s.list.fill(make(ctx)) } },
    index: { args: Schema.Struct({}), apply: (s, _a, ctx) => { s.n = 1; s.list[0] = make(ctx) } },
    define: { args: Schema.Struct({}), apply: (s, _a, ctx) => { s.n = 1; Object.defineProperty(s.bag, "v", { value: make(ctx), writable: true, enumerable: true, configurable: true }) } },
    replace: { args: Schema.Struct({}), apply: (s, _a, ctx) => ({ ...s, bag: { value: make(ctx) } }) },
  },
})

describe("3. a command that writes non-plain data is rejected with state-unencodable, and nothing changes", () => {
  for (const [name, make] of BAD_VALUES) {
    test(name, () => {
      const machine = bagMachine(make)
      for (const command of ["set", "push", "splice", "fill", "index", "define", "replace"]) {
        const host = new JournaledState(machine.initial())
        const bytes = hex(encodeCanonical(host.root))
        const view = viewText(host.view())
        const out = apply(host, machine, command, {})
        expect([command, out.code]).toEqual([command, "state-unencodable"])
        // A sentence that says what, where and what to do instead.
        expect(out.message).toMatch(/Cannot store .+ at state/)
        expect(out.message!.length).toBeGreaterThan(60)
        expect(hex(encodeCanonical(host.root))).toBe(bytes)
        expect(viewText(host.view())).toBe(view)
        // The state still hashes: nothing is left for a checkpoint timer to trip on.
        expect(() => hashState(host.root)).not.toThrow()
      }
    })
  }

  test("the message names the place: state.bag.value.when for a Date inside an object", () => {
    const machine = bagMachine((ctx) => ({ ok: 1, when: new Date(ctx.time) }))
    const out = apply(new JournaledState(machine.initial()), machine, "set", {})
    expect(out.message).toMatch(/a Date at state\.bag\.value\.when/)
    expect(out.message).toMatch(/ISO string|number/)
  })

  test("a class named like an Object.prototype member gets the plain advice, not the prototype's function", () => {
    // The advice table is read by the value's constructor name: own keys only.
    const named = { toString: class {}, constructor: class {} }
    for (const [name, C] of Object.entries(named)) {
      Object.defineProperty(C, "name", { value: name })
      const out = apply(new JournaledState(bagMachine(() => new C()).initial()), bagMachine(() => new C()), "set", {})
      expect(out.code).toBe("state-unencodable")
      expect(out.message).toContain(`a ${name} at state.bag.value`)
      expect(out.message).toContain("Store its data in a plain object instead.")
      expect(out.message).not.toContain("native code")
    }
  })

  test("a bad initial() is a clear CanonError when the state is made, not a crash later", () => {
    let thrown: unknown
    try {
      new JournaledState({ createdAt: new Date(0) })
    } catch (e) {
      thrown = e
    }
    expect(thrown).toBeInstanceOf(CanonError)
    expect((thrown as CanonError).code).toBe("state-unencodable")
    expect((thrown as CanonError).message).toMatch(/Date at state\.createdAt/)
  })
})

// ---- 11. aliasing ----

interface Shared {
  a: { n: number; deep: { k: number[] } }
  b?: unknown
  c?: unknown
  list: unknown[]
}

const Aliases = defineMachine({
  name: "aliases",
  version: 1,
  initial: (): Shared => ({ a: { n: 1, deep: { k: [1] } }, list: [] }),
  commands: {
    alias: { args: Schema.Struct({}), apply: (s) => { s.b = s.a } },
    aliasDeep: { args: Schema.Struct({}), apply: (s) => { s.b = { inner: s.a.deep } } },
    pushTwice: { args: Schema.Struct({}), apply: (s) => { s.list.push(s.a, s.a) } },
    pair: { args: Schema.Struct({}), apply: (s) => { s.list = [s.a, s.a] } },
    local: { args: Schema.Struct({}), apply: (s) => {
      const x = { n: 7 }
      s.b = x
      s.c = x
      x.n = 8 // a local: changes neither path
    } },
    args: { args: Schema.Struct({ obj: Schema.Struct({ n: Schema.Number }) }), apply: (s, { obj }) => {
      s.b = obj
      s.c = obj
    } },
    fill: { args: Schema.Struct({}), apply: (s) => { s.list = [0, 0, 0]; s.list.fill({ n: 1 }) } },
    copyWithin: { args: Schema.Struct({}), apply: (s) => { s.list = [{ n: 1 }, { n: 2 }, { n: 3 }]; s.list.copyWithin(0, 1) } },
    write: { args: Schema.Struct({ n: Schema.Number }), apply: (s, { n }) => {
      s.a.n = n
      s.a.deep.k.push(n)
      if (s.b !== undefined) (s.b as { n?: number }).n = n + 1
      if (Array.isArray(s.list) && s.list.length > 0) (s.list[0] as { n?: number }).n = n + 2
    } },
  },
})

describe("11. aliasing: a replica and a peer restored from bytes never diverge", () => {
  for (const name of ["alias", "aliasDeep", "pushTwice", "pair", "local", "args", "fill", "copyWithin"]) {
    test(`${name}, then writes through every path`, () => {
      const replica = new JournaledState(Aliases.initial())
      const args = name === "args" ? { obj: { n: 3 } } : {}
      expect(apply(replica, Aliases, name, args).code).toBeUndefined()
      const peer = restored(replica)
      expect(hashState(peer.root)).toBe(hashState(replica.root))
      for (let n = 5; n < 8; n++) {
        expect(apply(replica, Aliases, "write", { n }, n).code).toBeUndefined()
        expect(apply(peer, Aliases, "write", { n }, n).code).toBeUndefined()
        expect(hashState(replica.root)).toBe(hashState(peer.root))
        expect(viewText(replica.view())).toBe(viewText(peer.view()))
      }
    })
  }

  test("the local kept by a command is not the state", () => {
    const host = new JournaledState(Aliases.initial())
    apply(host, Aliases, "local", {})
    expect(host.root.b).toEqual({ n: 7 })
    expect(host.root.b).not.toBe(host.root.c)
  })
})

// ---- 12. one NaN, one key order ----

describe("12. NaN payloads and view key order do not depend on the peer", () => {
  const nanWithPayload = (): number => {
    const f = new Float64Array(1)
    new DataView(f.buffer).setUint32(0, 0x7ff80000 | 0x1234, true)
    new DataView(f.buffer).setUint32(4, 0x7ff80001, false)
    const bits = new Uint8Array([0x7f, 0xf8, 0, 0, 0, 0, 0x12, 0x34])
    return new DataView(bits.buffer).getFloat64(0)
  }

  test("every NaN encodes to the one canonical NaN; other NaN bit patterns are refused by the decoder", () => {
    const odd = nanWithPayload()
    expect(Number.isNaN(odd)).toBe(true)
    expect(hex(encodeCanonical({ x: odd }))).toBe(hex(encodeCanonical({ x: NaN })))
    expect(hashState([odd, -NaN])).toBe(hashState([NaN, NaN]))
    const bytes = encodeCanonical(NaN)
    expect(hex(bytes)).toBe("057ff8000000000000")
    for (const bad of ["057ff8000000001234", "05fff8000000000000", "057ff0000000000001"]) {
      expect(() => decodeCanonical(Buffer.from(bad, "hex"))).toThrow(CanonError)
    }
  })

  test("a NaN written by a command is stored canonical, so replica and restored peer agree", () => {
    const host = new JournaledState<{ x: number[] }>({ x: [] })
    host.begin()
    host.draft().x.push(nanWithPayload())
    host.draft().x[1] = nanWithPayload()
    host.end()
    const f = new Float64Array(host.root.x)
    expect(hex(new Uint8Array(f.buffer))).toBe(hex(new Uint8Array(new Float64Array([NaN, NaN]).buffer)))
    expect(hashState(restored(host).root)).toBe(hashState(host.root))
  })

  test("the view lists keys in canonical order, whatever order the object was built or undone in", () => {
    const a = new JournaledState<Record<string, number>>({ b: 1, a: 2, c: 3 })
    const b = new JournaledState<Record<string, number>>({ c: 3, a: 2, b: 1 })
    expect(Object.keys(a.view())).toEqual(["a", "b", "c"])
    expect(Object.keys(b.view())).toEqual(["a", "b", "c"])
    const j = a.begin()
    delete a.draft().a
    a.end()
    a.undo(j)
    expect(Object.keys(a.view())).toEqual(["a", "b", "c"])
    expect(JSON.stringify(a.view())).toBe(JSON.stringify(b.view()))
    const seen: string[] = []
    for (const k in a.view()) seen.push(k)
    expect(seen).toEqual(["a", "b", "c"])
  })
})

// ---- property: random command programs ----

const KEYS = ["a", "b", "x", "0", "1", "__proto__", "constructor", "toString", "hasOwnProperty", "length", "push", "map"]

interface Step {
  readonly kind: string
  readonly path: number
  readonly key: number
  readonly n: number
  readonly value: unknown
}

const leaf: fc.Arbitrary<unknown> = fc.oneof(
  fc.constant(null), fc.boolean(), fc.integer({ min: -3, max: 3 }), fc.constantFrom("s", "", "\u00e9"), fc.constant(undefined),
  fc.constantFrom(NaN, -0, 0.5, Infinity),
)
const value: fc.Arbitrary<unknown> = fc.letrec<{ v: unknown }>((tie) => ({
  v: fc.oneof(
    { depthSize: "small" },
    leaf,
    fc.array(tie("v"), { maxLength: 3 }),
    fc.dictionary(fc.constantFrom(...KEYS), tie("v"), { maxKeys: 3 }),
    fc.constantFrom("date", "map", "bigint").map((k) => ({ bad: k })),
  ),
})).v

/** Turns the marker objects into real bad values, fresh each time (a command builds them). */
const materialize = (v: unknown): unknown => {
  if (Array.isArray(v)) return v.map(materialize)
  if (v === null || typeof v !== "object") return v
  const bad = (v as { bad?: string }).bad
  if (bad === "date" && Object.keys(v).length === 1) return new Date(0)
  if (bad === "map" && Object.keys(v).length === 1) return new Map()
  if (bad === "bigint" && Object.keys(v).length === 1) return 1n
  const out: Record<string, unknown> = {}
  for (const k of Object.keys(v)) Object.defineProperty(out, k, { value: materialize((v as Record<string, unknown>)[k]), enumerable: true, writable: true, configurable: true })
  return out
}

const KINDS = [
  "set", "set", "delete", "define", "assign", "alias", "wrapAlias", "readWrite", "filter", "spread", "objectSpread", "concat", "mapCopy",
  "push", "pop", "shift", "unshift", "splice", "sort", "reverse", "fill", "copyWithin", "length", "localThenWrite", "replaceRoot",
]
const step: fc.Arbitrary<Step> = fc.record({ kind: fc.constantFrom(...KINDS), path: fc.nat(40), key: fc.nat(40), n: fc.nat(40), value })

/** Containers of a draft, in canonical key order (so two peers pick the same ones). */
const draftContainers = (root: unknown): object[] => {
  const out: object[] = []
  const visit = (v: unknown, depth: number): void => {
    if (v === null || typeof v !== "object" || depth > 6 || Object.prototype.toString.call(v) === "[object Uint8Array]") return
    out.push(v)
    for (const k of Object.keys(v)) visit((v as Record<string, unknown>)[k], depth + 1)
  }
  visit(root, 0)
  return out
}

/** Runs one step against a draft. May throw (that fails the whole command, as in apply). */
const runStep = (root: Record<string, unknown>, s: Step, replaceRoot: (v: unknown) => void): void => {
  const all = draftContainers(root)
  const c = all[s.path % all.length] as Record<string, unknown> & unknown[]
  const other = all[s.n % all.length] as Record<string, unknown> & unknown[]
  const key = Array.isArray(c) && s.key % 3 !== 0 ? String(s.key % (c.length + 2)) : KEYS[s.key % KEYS.length]!
  const v = (): unknown => materialize(s.value)
  const cmp = (x: unknown, y: unknown): number => {
    const a = typeof x + JSON.stringify(x ?? null)
    const b = typeof y + JSON.stringify(y ?? null)
    return a < b ? -1 : a > b ? 1 : 0
  }
  switch (s.kind) {
    case "set": c[key as never] = v() as never; return
    case "delete": delete c[key as never]; return
    case "define": Object.defineProperty(c, key, { value: v(), writable: true, enumerable: true, configurable: true }); return
    case "assign": Object.assign(c, materialize({ [key]: s.value, __proto__: null })); return
    case "alias": c[key as never] = other as never; return
    case "wrapAlias": c[key as never] = (s.n % 2 === 0 ? [other, other] : { p: other, q: other }) as never; return
    case "readWrite": {
      const target = c[key as never] as unknown as Record<string, unknown>
      target.x = v()
      return
    }
    case "filter": if (Array.isArray(c[key as never])) c[key as never] = (c[key as never] as unknown as unknown[]).filter((_, i) => i % 2 === s.n % 2) as never; return
    case "spread": if (Array.isArray(c[key as never])) c[key as never] = [...(c[key as never] as unknown as unknown[]), v()] as never; return
    case "objectSpread": {
      const cur = c[key as never] as unknown
      if (cur !== null && typeof cur === "object" && !Array.isArray(cur)) c[key as never] = { ...(cur as object), extra: v() } as never
      return
    }
    case "concat": if (Array.isArray(c)) { const r = c.concat([v()], other as unknown[]); c.length = 0; c.push(...r.slice(0, 6)) } return
    case "mapCopy": if (Array.isArray(c)) c.splice(0, c.length, ...c.map((x) => (x !== null && typeof x === "object" && !Array.isArray(x) ? { ...x } : x))); return
    case "push": if (Array.isArray(c)) c.push(v(), other); return
    case "pop": if (Array.isArray(c)) c.pop(); return
    case "shift": if (Array.isArray(c)) c.shift(); return
    case "unshift": if (Array.isArray(c)) c.unshift(v()); return
    case "splice": if (Array.isArray(c)) c.splice(s.key % (c.length + 1) - 1, s.n % 3, v(), c[0]); return
    case "sort": if (Array.isArray(c)) c.sort(s.n % 2 === 0 ? cmp : undefined); return
    case "reverse": if (Array.isArray(c)) c.reverse(); return
    case "fill": if (Array.isArray(c)) c.fill(v(), s.key % (c.length + 1), -(s.n % 2)); return
    case "copyWithin": if (Array.isArray(c)) c.copyWithin(s.key % (c.length + 1), s.n % (c.length + 1)); return
    case "length": if (Array.isArray(c)) c.length = s.n % 6; return
    case "localThenWrite": {
      const local = { n: s.n, list: [1] }
      c[key as never] = local as never
      local.n = -1 // changes the local only
      local.list.push(9)
      return
    }
    case "replaceRoot": if (s.n % 4 === 0) replaceRoot({ ...root, r: v() }); return
  }
}

/** One command: all steps, or none (a throw undoes them, as runApply's callers do). */
const runCommand = (host: JournaledState<Record<string, unknown>>, steps: Step[]): { ok: boolean; journal: Journal } => {
  const j = host.begin()
  let ok = true
  try {
    for (const s of steps) runStep(host.draft(), s, (v) => host.replaceRoot(v as Record<string, unknown>))
  } catch {
    ok = false
  }
  host.end()
  if (!ok) host.undo(j)
  return { ok, journal: j }
}

const initialState = (): Record<string, unknown> => ({
  items: { a: { n: 1, tags: ["x"] }, b: { n: 2, tags: [] } },
  list: [{ id: 1 }, { id: 2 }, 3, "four", null],
  nested: { deep: { arr: [1, [2, [3]]] } },
  bytes: new Uint8Array([1, 2]),
  n: 0,
})

describe("property: random command programs", () => {
  test("undo returns the exact previous canonical bytes; a restored peer stays hash- and view-equal", () => {
    const before = snapshotGlobals()
    fc.assert(
      fc.property(fc.array(fc.array(step, { minLength: 1, maxLength: 6 }), { minLength: 1, maxLength: 6 }), (commands) => {
        const replica = new JournaledState<Record<string, unknown>>(initialState())
        let peer = restored(replica)
        const history: Array<{ bytes: string; journal: Journal }> = []
        for (const steps of commands) {
          const bytes = hex(encodeCanonical(replica.root))
          const r = runCommand(replica, steps)
          const p = runCommand(peer, steps)
          expect(p.ok).toBe(r.ok)
          if (!r.ok) expect(hex(encodeCanonical(replica.root))).toBe(bytes)
          else history.push({ bytes, journal: r.journal })
          expect(hashState(peer.root)).toBe(hashState(replica.root))
          expect(viewText(peer.view())).toBe(viewText(replica.view()))
          // Now and then the peer restarts from the replica's bytes.
          if (steps[0]!.n % 5 === 0) peer = restored(replica)
        }
        // The replica's rebase: undo newest first; every step gives back the exact earlier bytes.
        for (let i = history.length - 1; i >= 0; i--) {
          replica.undo(history[i]!.journal)
          expect(hex(encodeCanonical(replica.root))).toBe(history[i]!.bytes)
        }
      }),
      { seed: 4242, numRuns: 400 },
    )
    expectGlobalsAsBefore(before)
  })

  test("undo, then redo of the same commands, ends on the same bytes as the first run", () => {
    fc.assert(
      fc.property(fc.array(fc.array(step, { minLength: 1, maxLength: 6 }), { minLength: 1, maxLength: 5 }), (commands) => {
        const host = new JournaledState<Record<string, unknown>>(initialState())
        // A failed command was undone already by runCommand: only successful ones stay to undo.
        const journals = commands.map((steps) => runCommand(host, steps)).filter((r) => r.ok).map((r) => r.journal)
        const after = hex(encodeCanonical(host.root))
        for (let i = journals.length - 1; i >= 0; i--) host.undo(journals[i]!)
        for (const steps of commands) runCommand(host, steps)
        expect(hex(encodeCanonical(host.root))).toBe(after)
      }),
      { seed: 99, numRuns: 200 },
    )
  })
})
