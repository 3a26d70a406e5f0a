/**
 * Version history in the machine definition: per-version machines and fingerprints,
 * upcasts (to one, several, none), partial downcasts, state migrations; properties: a
 * downcast after an upcast gives the command back where both are declared, migrations are
 * deterministic and return fresh plain trees, upcast outputs decode with the new schemas.
 */
import fc from "fast-check"
import * as Schema from "effect/Schema"
import { defineMachine, makeContext, runApply } from "../core/machine.js"
import { JournaledState } from "../core/journal.js"
import { hashState } from "../core/hash.js"
import { encodeCanonical } from "../core/canonical.js"
import { evolve, historyOf, encodeCmds, type Cmd } from "../core/schema/versions.js"
import { TodoV1, TodoV2, TodoV3, TodoV2NoDown, type S1 } from "./support/versioned-machines.js"

const str = fc.string({ maxLength: 12 })
const v1Command: fc.Arbitrary<Cmd> = fc.oneof(
  fc.record({ name: fc.constant("add"), args: fc.record({ id: str, title: str }) }),
  fc.record({ name: fc.constant("toggle"), args: fc.record({ id: str }) }),
  fc.record({ name: fc.constant("rename"), args: fc.record({ id: str, title: str }) }),
  fc.record({ name: fc.constant("addDone"), args: fc.record({ id: str, title: str }) }),
)
const v2Command: fc.Arbitrary<Cmd> = fc.oneof(
  fc.record({ name: fc.constant("add"), args: fc.record({ id: str, title: str, priority: fc.integer({ min: -5, max: 5 }) }) }),
  fc.record({ name: fc.constant("toggle"), args: fc.record({ id: str }) }),
  fc.record({ name: fc.constant("retitle"), args: fc.record({ id: str, title: str }) }),
  fc.record({ name: fc.constant("setPriority"), args: fc.record({ id: str, priority: fc.integer({ min: -5, max: 5 }) }) }),
)
const state1: fc.Arbitrary<S1> = fc.dictionary(str, fc.record({ title: str, done: fc.boolean() }), { maxKeys: 8 }).map((items) => ({ items: { ...items } }))

const h = historyOf(TodoV3)!
const ctx = { seq: 7, time: 1000, random: () => 0.5 }

describe("version history", () => {
  test("each version is a complete machine whose fingerprint is the one a build of that version alone computes", () => {
    expect(h.versions).toEqual([1, 2, 3])
    expect(h.at(1).fingerprint).toBe(TodoV1.fingerprint)
    expect(h.at(2).fingerprint).toBe(TodoV2.fingerprint)
    expect(h.at(3).fingerprint).toBe(TodoV3.fingerprint)
    expect(new Set([h.at(1).fingerprint, h.at(2).fingerprint, h.at(3).fingerprint]).size).toBe(3)
    expect(h.at(3)).toBe(TodoV3)
    // Evolving v2 into v3 leaves v2's own history as it was.
    expect(historyOf(TodoV2)!.versions).toEqual([1, 2])
    // The built-in commands are not part of what is fingerprinted, and not declarable.
    expect(TodoV3.compiled.has("$batch")).toBe(true)
    expect(Object.keys(TodoV3.commands)).not.toContain("$batch")
  })

  test("evolve refuses a removed or changed command without an upcast, a skipped version and $ names", () => {
    const args = Schema.Struct({ id: Schema.String, n: Schema.Number })
    expect(() => evolve(TodoV1, { version: 2, migrateState: (s) => s, commands: { add: { args, apply: () => {} } } })).toThrow(/command "add" of v1 was removed or changed; declare its upcast/)
    expect(() => evolve(TodoV1, { version: 3, migrateState: (s: S1) => s, commands: TodoV1.commands })).toThrow(/evolves to v2, not v3/)
    expect(() => evolve(TodoV1, {
      version: 2, migrateState: (s: S1) => s,
      commands: { ...TodoV1.commands, $x: { args, apply: () => {} } },
    })).toThrow(/reserved/)
    // Unchanged commands need nothing: up and down are the identity.
    const same = evolve(TodoV1, { version: 2, migrateState: (s: S1) => s, commands: TodoV1.commands })
    expect(historyOf(same)!.convert([{ name: "toggle", args: { id: "a" } }], 1, 2)).toEqual([{ name: "toggle", args: { id: "a" } }])
    expect(historyOf(same)!.convert([{ name: "toggle", args: { id: "a" } }], 2, 1)).toEqual([{ name: "toggle", args: { id: "a" } }])
  })

  test("upcasts go to one, several or no commands; downcasts may be impossible or empty", () => {
    expect(h.convert([{ name: "addDone", args: { id: "a", title: "A" } }], 1, 2)).toEqual([
      { name: "add", args: { id: "a", title: "A", priority: 0 } }, { name: "toggle", args: { id: "a" } },
    ])
    expect(h.convert([{ name: "rename", args: { id: "a", title: "B" } }], 1, 3)).toEqual([{ name: "retitle", args: { id: "a", title: "B" } }])
    expect(h.convert([{ name: "setPriority", args: { id: "a", priority: 0 } }], 2, 1)).toEqual([])
    expect(h.convert([{ name: "setPriority", args: { id: "a", priority: 2 } }], 2, 1)).toBeUndefined()
    expect(h.convert([{ name: "archive", args: { id: "a" } }], 3, 1)).toEqual([])
    expect(historyOf(TodoV2NoDown)!.convert([{ name: "add", args: { id: "a", title: "A", priority: 0 } }], 2, 1)).toBeUndefined()
    expect(historyOf(TodoV2NoDown)!.convert([{ name: "toggle", args: { id: "a" } }], 2, 1)).toEqual([{ name: "toggle", args: { id: "a" } }])
  })

  test("property: a downcast after an upcast gives the original command back, where both are declared", () => {
    fc.assert(fc.property(v1Command, (c) => {
      const up = h.convert([c], 1, 2)!
      // Upcast output is valid v2 (decodes with v2's schemas).
      expect(() => encodeCmds(h.at(2), up)).not.toThrow()
      const down = h.convert(up, 2, 1)
      if (c.name === "addDone") return // an upcast to several has no single way back: its downcast is add + toggle
      expect(down).toEqual([c])
    }), { numRuns: 500 })
    fc.assert(fc.property(v2Command, (c) => {
      const up = h.convert([c], 2, 3)!
      expect(h.convert(up, 3, 2)).toEqual([c])
    }), { numRuns: 500 })
  })

  test("property: downcast outputs decode with the older version's schemas", () => {
    fc.assert(fc.property(v2Command, (c) => {
      const down = h.convert([c], 2, 1)
      if (down !== undefined) expect(() => encodeCmds(h.at(1), down)).not.toThrow()
    }), { numRuns: 500 })
  })

  test("property: migrateState is deterministic and returns a fresh plain tree", () => {
    fc.assert(fc.property(state1, (s) => {
      const before = encodeCanonical(s)
      const a = h.migrateState(s, 1, 3, ctx) as { items: Record<string, unknown> }
      const b = h.migrateState(s, 1, 3, ctx)
      expect(hashState(a)).toBe(hashState(b))
      expect(encodeCanonical(s)).toEqual(before) // the input is not changed
      for (const k of Object.keys(s.items)) expect(a.items[k]).not.toBe(s.items[k])
    }), { numRuns: 300 })
  })

  test("$batch and $as apply several commands as one, and a rejection undoes all of them", () => {
    const m = h.at(2)
    const host = new JournaledState<any>(m.initial())
    const run = (name: string, args: unknown) => {
      const d = m.compiled.get(name)!.decode(args)
      if (d._tag !== "Success") throw new Error("decode")
      const j = host.begin()
      const r = runApply(host, m.compiled.get(name)!, name, d.success, makeContext("d", 1, 1, "c"))
      host.end()
      if (r !== undefined) host.undo(j)
      return r
    }
    expect(run("$as", { v: 1, name: "addDone", args: { id: "a", title: "A" } })).toBeUndefined()
    expect(host.root.items.a).toEqual({ title: "A", done: true, priority: 0 })
    const rejected = run("$batch", [["toggle", { id: "a" }], ["toggle", { id: "missing" }]])
    expect(rejected?.code).toBe("rejected")
    expect(host.root.items.a.done).toBe(true)
    expect(m.compiled.get("$as")!.decode({ v: 3, name: "archive", args: { id: "a" } })._tag).toBe("Failure")
  })

  test("a one-version machine has no history and is unchanged", () => {
    const M = defineMachine({ name: "plain", version: 1, initial: () => ({ n: 0 }), commands: { inc: { args: Schema.Struct({}), apply: (s) => { s.n++ } } } })
    expect(historyOf(M)).toBeUndefined()
    expect(M.compiled.has("$batch")).toBe(false)
  })
})
