/**
 * Machines: definition checks, how a command's outcome is decided (accepted, rejected,
 * failed, invalid, unknown), and the determinism of ctx.random.
 */
import fc from "fast-check"
import { Result, Schema } from "effect"
import { applyLogged } from "../core/apply.js"
import type { Entry } from "../core/entry.js"
import { JournaledState } from "../core/journal.js"
import { command, decodeArgs, defineMachine, makeContext, runApply, type CommandContext } from "../core/machine.js"
import { entryRandom } from "../core/random.js"

interface S {
  n: number
  list: number[]
  obj: Record<string, unknown>
  draws: number[]
  seen?: { seq: number; time: number; clientId: string }
}

const initial = (): S => ({ n: 0, list: [1, 2, 3], obj: { a: 1, nested: { deep: [1] } }, draws: [] })

const Args = {
  id: Schema.Struct({ id: Schema.String }),
  empty: Schema.Struct({}),
  reason: Schema.Struct({ reason: Schema.String }),
  count: Schema.Struct({ count: Schema.Number }),
  parsed: Schema.Struct({ n: Schema.NumberFromString, tags: Schema.Array(Schema.String) }),
}

/** Scribbles over every part of the state, then fails in the way `how` says. */
const scribble = (s: S): void => {
  s.n = 99
  s.list.push(4)
  s.list.splice(0, 1)
  s.list.length = 1
  s.obj.b = { fresh: true }
  delete s.obj.a
  ;(s.obj.nested as { deep: number[] }).deep.push(2)
  s.draws = [1, 2]
}

const M = defineMachine({
  name: "machine-test",
  version: 3,
  initial,
  commands: {
    set: { args: Args.id, apply: (s: S, a) => { s.obj[a.id] = true } },
    writeThenThrow: { args: Args.empty, apply: (s: S) => { scribble(s); throw new Error("kaboom after writes") } },
    throwString: { args: Args.empty, apply: (s: S) => { s.n = 1; throw "a plain string" } },
    throwTypeError: { args: Args.empty, apply: (s: S) => { s.n = 1; (undefined as unknown as { x: number }).x } },
    writeThenReject: { args: Args.reason, apply: (s: S, a, ctx) => { scribble(s); ctx.reject(a.reason) } },
    rejectNonString: { args: Args.empty, apply: (_s: S, _a, ctx) => { ctx.reject(42 as unknown as string) } },
    rejectWrapped: { args: Args.empty, apply: (_s: S, _a, ctx) => {
      try {
        ctx.reject("inner")
      } catch {
        throw new Error("rethrown as an error")
      }
    } },
    replace: { args: Args.count, apply: (_s: S, a) => ({ ...initial(), n: a.count }) },
    draw: { args: Args.count, apply: (s: S, a, ctx) => { for (let i = 0; i < a.count; i++) s.draws.push(ctx.random()) } },
    who: { args: Args.empty, apply: (s: S, _a, ctx) => { s.seen = { seq: ctx.seq, time: ctx.time, clientId: ctx.clientId } } },
    parsed: { args: Args.parsed, apply: (s: S, a) => { s.n = a.n; s.list = a.tags.map((t) => t.length) } },
    writeDate: { args: Args.empty, apply: (s: S, _a, ctx) => { scribble(s); s.obj.when = new Date(ctx.time) } },
    returnMap: { args: Args.empty, apply: (s: S) => { scribble(s); return { ...s, obj: { m: new Map() } } } },
    catchRefusal: { args: Args.empty, apply: (s: S, _a, ctx) => {
      try {
        s.obj.when = new Date(ctx.time)
      } catch {
        s.obj.when = ctx.time // the refused write left nothing behind; store a number instead
      }
    } },
  },
})

let seqCounter = 0
const entry = (name: string, args: unknown, seq = ++seqCounter): Entry => ({ seq, time: 1_700_000_000_000 + seq, clientId: "client-1", clientSeq: seq, name, args })

/** Applies a logged entry to a fresh state; returns the rejection and the state after. */
const run = (name: string, args: unknown, state: S = initial()) => {
  const host = new JournaledState<S>(state)
  const rejection = applyLogged(host, "doc-1", M, entry(name, args))
  return { rejection, state: host.root, host }
}

describe("defineMachine", () => {
  const base = { initial: () => ({}), commands: {} }

  test.each([
    ["empty", ""],
    ["a space", "to do"],
    ["a slash", "a/b"],
    ["non-ASCII", "caf\u00e9"],
    ["65 characters", "x".repeat(65)],
    ["a newline", "todo\n"],
  ])("refuses a name with %s", (_what, name) => {
    expect(() => defineMachine({ ...base, name, version: 1 })).toThrow(TypeError)
    expect(() => defineMachine({ ...base, name, version: 1 })).toThrow(/name/)
  })

  test.each([["zero", 0], ["negative", -1], ["fractional", 1.5], ["NaN", NaN], ["infinite", Infinity]])("refuses a %s version", (_what, version) => {
    expect(() => defineMachine({ ...base, name: "ok", version })).toThrow(TypeError)
    expect(() => defineMachine({ ...base, name: "ok", version })).toThrow(/version/)
  })

  test("accepts letters, digits, '_', '.', '-' up to 64 characters", () => {
    for (const name of ["a", "todo", "Todo_v2.list-x", "0", "x".repeat(64)]) {
      const m = defineMachine({ ...base, name, version: 1 })
      expect(m.name).toBe(name)
    }
  })

  test("compiles every command and keeps the definition", () => {
    expect([...M.compiled.keys()].sort()).toEqual(Object.keys(M.commands).sort())
    expect(M.name).toBe("machine-test")
    expect(M.version).toBe(3)
    expect(M.initial()).toEqual(initial())
  })

  test("command() declares a command usable in a machine", () => {
    const add = command<{ total: number }, { by: number }, { readonly by: number }>(Schema.Struct({ by: Schema.Number }), (s, a) => { s.total += a.by })
    const C = defineMachine({ name: "c", version: 1, initial: () => ({ total: 1 }), commands: { add } })
    const host = new JournaledState(C.initial())
    expect(applyLogged(host, "d", C, { seq: 1, time: 0, clientId: "x", clientSeq: 1, name: "add", args: { by: 41 } })).toBeUndefined()
    expect(host.root).toEqual({ total: 42 })
  })
})

describe("command outcomes", () => {
  test("an accepted command changes the state", () => {
    const { rejection, state } = run("set", { id: "k" })
    expect(rejection).toBeUndefined()
    expect(state.obj.k).toBe(true)
  })

  test("a command that throws after writing is command-failed and leaves the state exactly as before", () => {
    const before = structuredClone(initial())
    const { rejection, state } = run("writeThenThrow", {})
    expect(rejection?.code).toBe("command-failed")
    expect(rejection?.message).toContain("writeThenThrow")
    expect(rejection?.message).toContain("kaboom after writes")
    expect(state).toStrictEqual(before)
  })

  test("a failed or rejected command leaves the key order commands see as it was", () => {
    // Rejected commands never reach other replicas: if undo moved keys around as a later command
    // sees them, the authority would iterate differently from every replica, and key-order-dependent
    // commands (e.g. "remove the first item") would diverge. Commands see canonical (sorted) order.
    const fresh = new JournaledState<S>(initial())
    for (const [name, args] of [["writeThenThrow", {}], ["writeThenReject", { reason: "no" }]] as const) {
      const { host } = run(name, args)
      expect(Object.keys(host.draft().obj)).toEqual(Object.keys(fresh.draft().obj))
    }
  })

  test("throwing a non-Error or a runtime TypeError is command-failed too", () => {
    const a = run("throwString", {})
    expect(a.rejection?.code).toBe("command-failed")
    expect(a.rejection?.message).toContain("a plain string")
    expect(a.state).toStrictEqual(initial())
    const b = run("throwTypeError", {})
    expect(b.rejection?.code).toBe("command-failed")
    expect(b.state).toStrictEqual(initial())
  })

  test("ctx.reject(reason) is code 'rejected' with the reason as message, and its writes are undone", () => {
    fc.assert(
      fc.property(fc.string(), (reason) => {
        const { rejection, state } = run("writeThenReject", { reason })
        expect(rejection).toEqual({ code: "rejected", message: reason })
        expect(state).toStrictEqual(initial())
      }),
      { seed: 42, numRuns: 100 },
    )
  })

  test("a reason that is not a string is turned into one", () => {
    expect(run("rejectNonString", {}).rejection).toEqual({ code: "rejected", message: "42" })
  })

  test("a reject caught and rethrown as an Error is command-failed", () => {
    const { rejection } = run("rejectWrapped", {})
    expect(rejection?.code).toBe("command-failed")
    expect(rejection?.message).toContain("rethrown as an error")
  })

  test("returning a new state replaces the whole state", () => {
    const { rejection, state } = run("replace", { count: 7 })
    expect(rejection).toBeUndefined()
    expect(state).toEqual({ ...initial(), n: 7 })
  })

  test("runApply leaves undo to the caller: on rejection the writes are in the journal", () => {
    const host = new JournaledState<S>(initial())
    const cmd = M.compiled.get("writeThenReject")!
    const journal = host.begin()
    const rejection = runApply(host, cmd, "writeThenReject", { reason: "no" }, makeContext("doc", 1, 0, "c"))
    host.end()
    expect(rejection).toEqual({ code: "rejected", message: "no" })
    expect(journal.length).toBeGreaterThan(0)
    host.undo(journal)
    expect(host.root).toStrictEqual(initial())
  })

  test("writing non-plain data is state-unencodable (not command-failed): what, where, the command; all writes undone", () => {
    for (const name of ["writeDate", "returnMap"]) {
      const { rejection, state } = run(name, {})
      expect(rejection?.code).toBe("state-unencodable")
      expect(rejection?.message).toContain(`"${name}"`)
      expect(rejection?.message).toMatch(name === "writeDate" ? /a Date at state\.obj\.when/ : /a Map at state\.obj\.m/)
      expect(state).toStrictEqual(initial())
    }
  })

  test("a command that catches the refusal goes on: the refused write left nothing behind", () => {
    const { rejection, state } = run("catchRefusal", {})
    expect(rejection).toBeUndefined()
    expect(typeof state.obj.when).toBe("number")
  })

  test("arguments are decoded from their wire form before apply", () => {
    const { rejection, state } = run("parsed", { n: "12", tags: ["ab", "c"] })
    expect(rejection).toBeUndefined()
    expect(state.n).toBe(12)
    expect(state.list).toEqual([2, 1])
  })
})

describe("invalid arguments", () => {
  const cases: Array<[string, unknown, string]> = [
    ["set", { id: 5 }, "id"],
    ["set", {}, "id"],
    ["set", null, ""],
    ["set", "nope", ""],
    ["set", [1], ""],
    ["writeThenReject", { reason: ["x"] }, "reason"],
    ["draw", { count: "3" }, "count"],
    ["parsed", { n: 5, tags: [] }, "n"],
    ["parsed", { n: "5", tags: ["a", 2] }, "tags"],
  ]

  test.each(cases)("%s(%j) is invalid-args naming the command and carrying the schema's message", (name, args, field) => {
    const decoded = decodeArgs(M, name, args)
    expect(decoded.ok).toBe(false)
    if (decoded.ok) return
    const { code, message } = decoded.rejection
    expect(code).toBe("invalid-args")
    expect(message).toContain(`"${name}"`)
    expect(message).not.toMatch(/\n/)
    if (field !== "") expect(message).toContain(field)
    // Every line of the schema's own message is in the text.
    const schema = (M.commands as Record<string, { args: Schema.Codec<unknown, unknown> }>)[name]!.args
    const direct = Schema.decodeUnknownResult(schema)(args)
    expect(Result.isFailure(direct)).toBe(true)
    if (Result.isFailure(direct)) {
      for (const line of direct.failure.message.split("\n")) expect(message).toContain(line.trim())
    }
    // Applied as a logged entry, it changes nothing.
    const r = run(name, args)
    expect(r.rejection?.code).toBe("invalid-args")
    expect(r.state).toStrictEqual(initial())
  })
})

describe("unknown commands", () => {
  test.each(["nope", "", "constructor", "toString", "__proto__", "hasOwnProperty", "valueOf"])("%j is unknown-command", (name) => {
    const decoded = decodeArgs(M, name, {})
    expect(decoded.ok).toBe(false)
    if (decoded.ok) return
    expect(decoded.rejection.code).toBe("unknown-command")
    expect(decoded.rejection.message).toContain(`"${name}"`)
    expect(decoded.rejection.message).toContain("machine-test")
    const r = run(name, {})
    expect(r.rejection?.code).toBe("unknown-command")
    expect(r.state).toStrictEqual(initial())
  })
})

describe("the command context", () => {
  test("carries seq, time and clientId", () => {
    const host = new JournaledState<S>(initial())
    applyLogged(host, "d", M, { seq: 17, time: 12345, clientId: "who-am-i", clientSeq: 3, name: "who", args: {} })
    expect(host.root.seen).toEqual({ seq: 17, time: 12345, clientId: "who-am-i" })
  })

  const draws = (ctx: CommandContext, n: number): number[] => Array.from({ length: n }, () => ctx.random())

  test("ctx.random: same docId and seq give the same sequence, whatever the time and client", () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 20 }), fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }), fc.nat(), fc.nat(), (docId, seq, t1, t2) => {
        const a = draws(makeContext(docId, seq, t1, "alice"), 16)
        const b = draws(makeContext(docId, seq, t2, "bob"), 16)
        expect(b).toEqual(a)
        expect(a.every((x) => x >= 0 && x < 1)).toBe(true)
      }),
      { seed: 42, numRuns: 300 },
    )
  })

  test("ctx.random: a different seq or a different docId gives a different sequence", () => {
    fc.assert(
      fc.property(
        fc.string({ maxLength: 12 }),
        fc.string({ maxLength: 12 }),
        fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }),
        fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }),
        (doc1, doc2, seq1, seq2) => {
          fc.pre(doc1 !== doc2 || seq1 !== seq2)
          expect(draws(makeContext(doc1, seq1, 0, "c"), 8)).not.toEqual(draws(makeContext(doc2, seq2, 0, "c"), 8))
        },
      ),
      { seed: 42, numRuns: 500 },
    )
    // Seqs that share their low 32 bits, and neighbouring seqs.
    expect(draws(makeContext("d", 5, 0, "c"), 8)).not.toEqual(draws(makeContext("d", 5 + 2 ** 32, 0, "c"), 8))
    const firsts = new Set<number>()
    for (let seq = 1; seq <= 2000; seq++) firsts.add(makeContext("doc", seq, 0, "c").random())
    expect(firsts.size).toBe(2000)
  })

  test("ctx.random is the entry's generator: replaying the entry draws the same numbers", () => {
    const a = new JournaledState<S>(initial())
    const b = new JournaledState<S>(initial())
    const e = { seq: 9, time: 1, clientId: "x", clientSeq: 1, name: "draw", args: { count: 5 } }
    applyLogged(a, "doc-r", M, e)
    applyLogged(b, "doc-r", M, { ...e, time: 999, clientId: "y" })
    expect(a.root.draws).toHaveLength(5)
    expect(b.root.draws).toEqual(a.root.draws)
    const rng = entryRandom("doc-r", 9)
    expect(a.root.draws).toEqual([rng(), rng(), rng(), rng(), rng()])
    const c = new JournaledState<S>(initial())
    applyLogged(c, "doc-r", M, { ...e, seq: 10 })
    expect(c.root.draws).not.toEqual(a.root.draws)
  })

  test("ctx.random's numbers look uniform", () => {
    const ctx = makeContext("uniform", 1, 0, "c")
    const buckets = new Array<number>(10).fill(0)
    for (let i = 0; i < 20000; i++) buckets[Math.floor(ctx.random() * 10)]!++
    for (const b of buckets) {
      expect(b).toBeGreaterThan(1800)
      expect(b).toBeLessThan(2200)
    }
  })
})
