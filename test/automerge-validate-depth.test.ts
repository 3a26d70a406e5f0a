/**
 * Automerge: nesting depth was not bounded where changes enter (adapters/automerge/validate.ts,
 * `Overlay.judge`, shared by CRDT fields and whole documents: a make op is checked for its
 * object's existence and type, never for how deep the new object sits).
 *
 * One change of N nested maps, made with Automerge's own API by any writer (2 bytes a level:
 * 5,000 levels are 10 KB, inside the 256 KiB / 262,144-op field limits and the hub's 1 MiB
 * document-change limit), passes the checks and is merged with `A.applyChanges`, whose patch
 * application is superlinear in depth on a non-empty document (measured: 1,000 levels 3.3 s,
 * 2,000 levels 17 s, 5,000 levels 96 s of blocked event loop, on the hub and on every replica);
 * from about 7,700 levels in one change Automerge's wasm traps (`RuntimeError: unreachable`)
 * and the module is dead for the whole process: every later Automerge call, for every field
 * and document of the hub, throws "Module terminated" until restart. Below that, a replica's
 * `JSON.stringify(handle.doc)` overflows from ~4,000 levels and `structuredClone` from ~2,000.
 *
 * The checks here run only `validate` / `check` + the engine's own op checks (no apply of the
 * deep change, which would take minutes or kill the module).
 */
import * as A from "@automerge/automerge"
import { automergeDoc } from "../adapters/automerge/index.js"
import { automergeDocEngine } from "../adapters/automerge-server/engine.js"
import { OpIndex, Overlay } from "../adapters/automerge/validate.js"

/** One change, on top of `doc`'s history, that puts `levels` nested maps under key "x". */
const nested = (doc: A.Doc<unknown>, levels: number, actor: string): Uint8Array => {
  const h = A.getBackend(A.clone(doc, { actor }))
  let obj = "_root"
  for (let i = 0; i < levels; i++) obj = h.putObject(obj, "x", {})
  h.commit("", 0)
  return h.getLastLocalChange()!
}

test("a CRDT field refuses one change of 5,000 nested maps (10 KB) from a peer", () => {
  const field = automergeDoc({ strokes: [] as number[][] }).engine.create()
  const change = nested(field.handle.doc, 5000, "ab".repeat(16))
  expect(change.length).toBeLessThan(16_000)
  const r = field.validate([change], { clientId: "mallory", trusted: false })
  expect(r.ok ? "accepted" : r.rejection.message).toMatch(/^crdt-invalid/)
  // A modest nesting is fine.
  const ok = field.validate([nested(field.handle.doc, 8, "cd".repeat(16))], { clientId: "honest", trusted: false })
  expect(ok.ok).toBe(true)
})

test("the depth counts through what the field already has (a chain grown change by change)", () => {
  const field = automergeDoc({ strokes: [] as number[][] }).engine.create()
  let doc = field.handle.doc as A.Doc<unknown>
  const actor = "ef".repeat(16)
  let refused = false
  // Changes of 100 levels each, each one continuing below the last (before: all 20 taken, a
  // 2,000-deep chain, and the merges alone take ~10 s here).
  for (let round = 0; round < 20 && !refused; round++) {
    const h = A.getBackend(A.clone(doc, { actor }))
    let obj = "_root", key = "x"
    for (let v = h.getWithType(obj, key); Array.isArray(v) && v[0] === "map"; v = h.getWithType(obj, key)) obj = v[1] as string
    for (let i = 0; i < 100; i++) obj = h.putObject(obj, key, {})
    h.commit("", 0)
    const change = h.getLastLocalChange()!
    const r = field.validate([change], { clientId: "mallory", trusted: false })
    if (!r.ok) {
      expect(r.rejection.message).toMatch(/^crdt-invalid/)
      refused = true
      break
    }
    field.apply([r.update])
    doc = field.handle.doc as A.Doc<unknown>
  }
  expect(refused).toBe(true)
})

test("the hub's whole-document engine refuses one change of 10,000 nested maps (20 KB) before applyChanges", async () => {
  const engine = automergeDocEngine()
  const seed = A.change(A.init<Record<string, unknown>>({ actor: "01".repeat(16) }), (d) => { d.title = "t" })
  const change = nested(seed, 10_000, "ab".repeat(16))
  expect(change.length).toBeLessThan(32_000)
  // The engine refuses it in check(), or in apply()'s op checks (the Overlay) that run before
  // A.applyChanges: either is enough. (Running apply itself on current code blocks for minutes
  // and then kills Automerge's wasm module for the rest of the process.)
  const checked = await engine.check(change)
  const verdict = checked.ok ? new Overlay(OpIndex.of(seed)).check(A.decodeChange(change)) : checked
  expect(verdict).toBeDefined()
  expect(A.from({ alive: true }).alive).toBe(true)
})

test("a change's map ops are weighed by their map's depth: many puts deep in the tree are refused, the same puts near the root are not", () => {
  const actor = "0a".repeat(16)
  // A document with a chain of 100 nested maps (within the depth bound).
  const base = A.load<unknown>(A.save(A.init({ actor: "0b".repeat(16) })))
  const h0 = A.getBackend(A.clone(base, { actor: "0c".repeat(16) }))
  let deep = "_root"
  for (let i = 0; i < 100; i++) deep = h0.putObject(deep, "x", {})
  h0.commit("", 0)
  const chain = A.applyChanges(A.clone(base), [h0.getLastLocalChange()!])[0]
  const puts = (at: (h: ReturnType<typeof A.getBackend>) => string): A.DecodedChange => {
    const h = A.getBackend(A.clone(chain, { actor }))
    const obj = at(h)
    for (let i = 0; i < 6_000; i++) h.put(obj, `k${i}`, i)
    h.commit("", 0)
    return A.decodeChange(h.getLastLocalChange()!)
  }
  const deepest = (h: ReturnType<typeof A.getBackend>): string => {
    let obj = "_root"
    for (let v = h.getWithType(obj, "x"); Array.isArray(v) && v[0] === "map"; v = h.getWithType(obj, "x")) obj = v[1] as string
    return obj
  }
  // 6,000 puts at depth 100 weigh 600,000 (over 2^19); at the root, 6,000.
  expect(new Overlay(OpIndex.of(chain)).check(puts(deepest))?.message).toMatch(/weigh more than/)
  expect(new Overlay(OpIndex.of(chain)).check(puts(() => "_root"))).toBeUndefined()
})
