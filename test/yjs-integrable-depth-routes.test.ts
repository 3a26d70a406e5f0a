/**
 * How deep shared types nest (MAX_TYPE_DEPTH, adapters/yjs/integrable.ts) is bounded on every
 * Yjs route, not only on the updates a client submits (notIntegrable, for the hub's check and
 * the peer sessions): also on entries the hub already ordered (a CRDT field's `trusted`
 * validate: a replica's incoming entries, a hub's log replay), on a field's stored or snapshot
 * state (`load`) and on a whole document's stored base (the hub's yjs engine). A hostile hub
 * sending 5,000 nested maps in an entry or a snapshot made the app's `toJSON()` of the field
 * overflow the stack for good; deleting the chain overflowed in Yjs's garbage collection.
 */
import * as Y from "yjs"
import { encodeCanonical } from "../core/canonical.js"
import { yjsEngine } from "../adapters/yjs/engine.js"
import { MAX_TYPE_DEPTH } from "../adapters/yjs/integrable.js"
import { yjsDocEngine } from "../adapters/yjs-server/engine.js"

/** `levels` nested maps under key "x" of the field's map "m", below the deepest map `base` has; V1 and the whole doc. */
const nest = (levels: number, base?: Y.Doc): { update: Uint8Array; doc: Y.Doc } => {
  const doc = new Y.Doc()
  if (base !== undefined) Y.applyUpdate(doc, Y.encodeStateAsUpdate(base))
  const before = Y.encodeStateVector(doc)
  doc.transact(() => {
    let m = doc.getMap<unknown>("m")
    while (m.get("x") instanceof Y.Map) m = m.get("x") as Y.Map<unknown>
    for (let i = 0; i < levels; i++) {
      const c = new Y.Map<unknown>()
      m.set("x", c)
      m = c
    }
  })
  return { update: Y.encodeStateAsUpdate(doc, before), doc }
}

const fieldState = (doc: Y.Doc): Uint8Array => encodeCanonical(["y1", Y.encodeStateAsUpdateV2(doc), []])
const trusted = { clientId: "hub", trusted: true }
const TOO_DEEP = new RegExp(`Shared types nest deeper than ${MAX_TYPE_DEPTH} levels`)

describe("entries the hub ordered (a field's trusted validate)", () => {
  test("5,000 nested maps are refused (crdt-invalid) and the field is unchanged", () => {
    const field = yjsEngine<Y.Map<unknown>>("map").create()
    field.handle.set("kept", 1)
    const before = field.hash()
    const { update } = nest(5000)
    const t0 = performance.now()
    const r = field.validate(update, trusted)
    const ms = performance.now() - t0
    expect(r.ok).toBe(false)
    if (!r.ok) expect(r.rejection.message).toMatch(new RegExp(`^crdt-invalid: ${TOO_DEEP.source}`))
    expect(ms).toBeLessThan(2_000)
    expect(field.hash()).toBe(before)
    expect(field.handle.toJSON()).toEqual({ kept: 1 })
  })

  test("up to the bound is accepted, one deeper refused, counting through what the field has", () => {
    const engine = yjsEngine<Y.Map<unknown>>("map")
    const at = (levels: number) => engine.create().validate(nest(levels).update, trusted).ok
    expect(at(MAX_TYPE_DEPTH)).toBe(true)
    expect(at(MAX_TYPE_DEPTH + 1)).toBe(false)
    // Half in the field, half in the entry.
    const half = nest(MAX_TYPE_DEPTH / 2)
    const field = engine.create()
    const v = field.validate(half.update, trusted)
    expect(v.ok).toBe(true)
    if (v.ok) field.apply([v.update])
    expect(field.validate(nest(MAX_TYPE_DEPTH / 2, half.doc).update, trusted).ok).toBe(true)
    const deeper = field.validate(nest(MAX_TYPE_DEPTH / 2 + 1, half.doc).update, trusted)
    expect(deeper.ok ? "accepted" : deeper.rejection.message).toMatch(TOO_DEEP)
  })

  test("a chain sent below a type the field lacks is refused (Yjs would hold it and integrate it, unchecked, once the type comes)", () => {
    const engine = yjsEngine<Y.Map<unknown>>("map")
    const top = nest(MAX_TYPE_DEPTH)
    const below = nest(MAX_TYPE_DEPTH, top.doc)
    const field = engine.create()
    const r = field.validate(below.update, trusted)
    expect(r.ok ? "accepted" : r.rejection.message).toMatch(/^crdt-missing-deps: /)
    // In order, the second half is too deep.
    const v = field.validate(top.update, trusted)
    expect(v.ok).toBe(true)
    if (v.ok) field.apply([v.update])
    const again = field.validate(below.update, trusted)
    expect(again.ok ? "accepted" : again.rejection.message).toMatch(TOO_DEEP)
  })

  test("text whose origin the field lacks is still taken as before (no type in it: nothing nests)", () => {
    const a = new Y.Doc()
    a.getMap("m").set("t", "x")
    const sv = Y.encodeStateVector(a)
    a.getMap("m").set("t", "y")
    const field = yjsEngine<Y.Map<unknown>>("map").create()
    expect(field.validate(Y.encodeStateAsUpdate(a, sv), trusted).ok).toBe(true)
  })
})

describe("a field's stored or snapshot state (load)", () => {
  test("a V2 state of 5,000 nested maps does not load: a sentence, no field", () => {
    const engine = yjsEngine<Y.Map<unknown>>("map")
    const bytes = fieldState(nest(5000).doc)
    const t0 = performance.now()
    expect(() => engine.load(bytes)).toThrow(TOO_DEEP)
    expect(performance.now() - t0).toBeLessThan(2_000)
  })

  test("up to the bound loads, one deeper does not", () => {
    const engine = yjsEngine<Y.Map<unknown>>("map")
    expect(() => engine.load(fieldState(nest(MAX_TYPE_DEPTH).doc))).not.toThrow()
    expect(() => engine.load(fieldState(nest(MAX_TYPE_DEPTH + 1).doc))).toThrow(TOO_DEEP)
  })

  test("a deep chain inside an array, inside text, inside XML, counts the same", () => {
    const engine = yjsEngine<Y.Array<unknown>>("array")
    const doc = new Y.Doc()
    doc.transact(() => {
      let a = doc.getArray<unknown>("a")
      for (let i = 0; i < MAX_TYPE_DEPTH; i++) {
        const t = new Y.Text()
        a.push([t])
        const el = new Y.XmlElement("p")
        t.insertEmbed(0, el)
        const inner = new Y.Array<unknown>()
        el.setAttribute("a", inner as never)
        a = inner
        i += 2
      }
      a.push([new Y.Map()])
    })
    expect(() => engine.load(fieldState(doc))).toThrow(TOO_DEEP)
  })
})

describe("a whole document's stored base (the hub's yjs engine)", () => {
  test("5,000 nested maps do not load; up to the bound does", () => {
    const engine = yjsDocEngine()
    expect(() => engine.load(Y.encodeStateAsUpdateV2(nest(5000).doc))).toThrow(TOO_DEEP)
    expect(() => engine.load(Y.encodeStateAsUpdateV2(nest(MAX_TYPE_DEPTH).doc))).not.toThrow()
  })
})
