/**
 * A Yjs field's stored state loads only if it holds at most MAX_FIELD_STRUCTS structs (2^22;
 * more could exhaust memory on load), but merges were bounded one update at a time
 * (MAX_UPDATE_STRUCTS, 2^18), not by what the field would hold after them. Sixteen updates of
 * 2^18 structs each, every one accepted, made a field whose snapshot no hub or replica could
 * load again: a document poisoned for good. An update that could take the field past the
 * bound is now refused `crdt-too-large`, counted as the field's structs now plus twice the
 * update's structs and deleted ranges (each may split one it lands in), so what is accepted
 * always loads. Run here with a small bound (`maxStructs`), on the routes it judges: an
 * untrusted submit, and a change made here (`local`). An entry the hub ordered was accepted
 * perhaps under a higher `maxStructs` (it is not in the fingerprint): it is taken, and only
 * MAX_FIELD_STRUCTS, the bound of what loads, judges it.
 */
import * as Y from "yjs"
import { MAX_FIELD_STRUCTS, crdtReason, yjsEngine } from "../adapters/yjs/index.js"

const BOUND = 2_000

/** An update of `n` one-character items that do not merge (each inserted before the last). */
const scattered = (doc: Y.Doc, n: number): Uint8Array => {
  let update: Uint8Array | undefined
  const keep = (u: Uint8Array) => (update = u)
  doc.on("update", keep)
  doc.transact(() => {
    const t = doc.getText("t")
    for (let i = 0; i < n; i++) t.insert(i % 2 === 0 ? 0 : t.length, String.fromCharCode(97 + (i % 26)))
  })
  doc.off("update", keep)
  return update!
}

test.each([
  ["untrusted", { trusted: false }],
  ["a change made here", { trusted: true, local: () => true }],
] as const)("a field takes updates up to its struct bound, refuses the one that could cross it, and every state it holds loads again (%s)", (_, judged) => {
  const engine = yjsEngine<Y.Text>("text", { maxStructs: BOUND })
  const field = engine.create()
  const writer = new Y.Doc()
  writer.clientID = 7
  const outcomes: string[] = []
  // Bounded: at most 40 updates of 100 structs (twice the bound).
  for (let i = 0; i < 40; i++) {
    const u = scattered(writer, 100)
    const r = field.validate(u, { clientId: "writer", ...judged })
    outcomes.push(r.ok ? "ok" : (crdtReason(r.rejection) ?? "no reason"))
    if (!r.ok) break
    field.apply([r.update])
    // Whatever the field holds now is a state the same engine loads.
    expect(() => engine.load(field.encode()).destroy()).not.toThrow()
  }
  expect(outcomes.at(-1)).toBe("crdt-too-large")
  expect(outcomes.filter((o) => o === "ok").length).toBeGreaterThanOrEqual(5)
  // The refused update is not applied; the field still serves and loads.
  expect(() => engine.load(field.encode()).destroy()).not.toThrow()
  field.destroy()
})

test("an entry the hub ordered past the field's own struct bound is taken, and the field still loads (a lower bound judges only what comes next)", () => {
  const engine = yjsEngine<Y.Text>("text", { maxStructs: BOUND })
  const field = engine.create()
  const writer = new Y.Doc()
  writer.clientID = 7
  let asked = 0
  for (let i = 0; i < 40; i++) {
    const r = field.validate(scattered(writer, 100), { clientId: "writer", trusted: true, local: () => (asked++, false) })
    expect(r.ok).toBe(true)
    if (r.ok) field.apply([r.update])
  }
  // Asked only once past the bound.
  expect(asked).toBeGreaterThan(0)
  expect(asked).toBeLessThan(40)
  const loaded = engine.load(field.encode())
  expect((loaded.handle as Y.Text).length).toBe(4000)
  // Past it now, a change made here is refused.
  const r = loaded.validate(scattered(writer, 1), { clientId: "writer", trusted: true, local: () => true })
  expect(r.ok ? "ok" : crdtReason(r.rejection)).toBe("crdt-too-large")
  loaded.destroy()
  field.destroy()
})

test("maxStructs is checked: a whole number from 1 to MAX_FIELD_STRUCTS", () => {
  for (const bad of [0, -1, 1.5, MAX_FIELD_STRUCTS + 1, Number.NaN]) {
    expect(() => yjsEngine("text", { maxStructs: bad })).toThrow(/maxStructs must be a whole number from 1 to 4194304/)
  }
  expect(() => yjsEngine("text", { maxStructs: MAX_FIELD_STRUCTS })).not.toThrow()
})
